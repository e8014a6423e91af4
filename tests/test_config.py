"""Loading the config: interpolation, defaults, and errors that name file, line and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monitor.config import ConfigError, LoadedConfig, load_config

BASE = """\
listen: 127.0.0.1:9110
defaults: {interval: 30s, timeout: 5s, failure_threshold: 3, success_threshold: 2}
checks:
  - name: database
    type: http
    url: http://db:8080/
  - name: backend-health
    type: http
    url: http://backend:4000/api/health
    depends_on: [database]
    interval: 15s
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "opsmon.yml"
    path.write_text(textwrap.dedent(text))
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> LoadedConfig:
    return load_config(write(tmp_path, text), env or {})


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env)
    return [str(p) for p in caught.value.problems]


def test_defaults_merge_and_durations(tmp_path: Path) -> None:
    """Defaults fill what a check leaves out; a check's own value wins; durations become seconds."""
    config = load(tmp_path, BASE).config
    database, backend = config.checks
    assert (database.interval, database.timeout, database.failure_threshold) == (30, 5, 3)
    assert backend.interval == 15


def test_interpolation_with_defaults_and_escape(tmp_path: Path) -> None:
    """${VAR}, ${VAR:-default} and $$ expand; values from the environment become secrets."""
    text = """\
    checks:
      - name: api
        type: http
        url: ${API_URL:-http://fallback:1}/health
        headers: {Authorization: "Bearer ${TOKEN}", X-Price: "$$5"}
    """
    loaded = load(tmp_path, text, {"TOKEN": "canary-token-123"})
    spec = loaded.config.checks[0]
    assert spec.url == "http://fallback:1/health"
    assert spec.headers == {"Authorization": "Bearer canary-token-123", "X-Price": "$5"}
    assert "canary-token-123" in loaded.secrets


def test_missing_variable_names_it(tmp_path: Path) -> None:
    """An unset variable is an error naming the variable, the file, line and key."""
    text = "checks:\n  - name: api\n    type: http\n    url: ${BACKEND_URL}/x\n"
    found = problems(tmp_path, text, {"OTHER": "secret-value-1"})
    assert found == [
        f"{tmp_path}/opsmon.yml:4: checks[0].url: environment variable BACKEND_URL is not set"
    ]


@pytest.mark.parametrize(
    ("snippet", "line", "key", "message"),
    [
        ("    interval: 0s\n", 5, "checks[0].interval", "must be > 0"),
        ("    interval: soon\n", 5, "checks[0].interval", "invalid duration 'soon'"),
        ("    failure_threshold: zero\n", 5, "checks[0].failure_threshold", "valid integer"),
        (
            "    timeout: 1m\n    interval: 30s\n",
            5,
            "checks[0].timeout",
            "must not be longer than the interval (30s)",
        ),
        ("    retries: 3\n", 5, "checks[0].retries", "unknown key"),
        ("    conditions: ['[STATUS] ~ 200']\n", 5, "checks[0].conditions.0", "no operator"),
        ("    depends_on: [nowhere]\n", 5, "checks[0].depends_on[0]", "unknown check 'nowhere'"),
    ],
)
def test_check_errors_locate_file_line_key(
    tmp_path: Path, snippet: str, line: int, key: str, message: str
) -> None:
    """Each kind of invalid check value is reported as file:line: key: message."""
    text = "checks:\n  - name: api\n    type: http\n    url: http://api:1/\n" + snippet
    found = problems(tmp_path, text)
    assert len(found) == 1, found
    assert found[0].startswith(f"{tmp_path}/opsmon.yml:{line}: {key.replace('.0', '[0]')}: ")
    assert message in found[0]


@pytest.mark.parametrize(
    ("check", "condition", "message"),
    [
        ("type: http\n    url: http://api:1/", "[STAUS] == 200", "did you mean [STATUS]?"),
        ("type: http\n    url: http://api:1/", "len([BODY].a == 1", "unbalanced parentheses"),
        ("type: http\n    url: http://api:1/", "[STATUS] < 1s", "not a time; 1s is a duration"),
        ("type: postgres\n    dsn: postgresql://db/app", "[IP] == 127.0.0.1", "not a placeholder"),
        ("type: http\n    url: http://api:1/", "[STATUS]", "alone is not true or false"),
        ("type: http\n    url: http://api:1/", "[CERTIFICATE_EXPIRATION] > 48h", "needs https"),
        ("type: container\n    container: web", "[RESTARTS] < soon", "'soon' is not a number"),
    ],
)
def test_conditions_that_cannot_work_are_located(
    tmp_path: Path, check: str, condition: str, message: str
) -> None:
    """A condition that would fail on every run is a file:line: key: message config error."""
    first = "[OOM_KILLED] == false" if "container" in check else "[CONNECTED]"
    text = (
        f"checks:\n  - name: api\n    {check}\n    conditions:\n"
        f"      - {first!r}\n      - {condition!r}\n"
    )
    found = problems(tmp_path, text)
    assert len(found) == 1, found
    # The https rule is the check's (its url with its conditions): it points at the check.
    where = "2: checks[0]" if "needs https" in message else "7: checks[0].conditions[1]"
    assert found[0].startswith(f"{tmp_path}/opsmon.yml:{where}: "), found
    assert message in found[0]


def test_invalid_url(tmp_path: Path) -> None:
    """A URL that is not http(s) with a host points at the url key."""
    found = problems(tmp_path, "checks:\n  - name: api\n    type: http\n    url: localhost:4000\n")
    assert found == [
        f"{tmp_path}/opsmon.yml:4: checks[0].url: must be an http:// or https:// URL with a host"
    ]


def test_duplicate_names(tmp_path: Path) -> None:
    """Two checks with one name are an error at the second one."""
    text = BASE + "  - name: database\n    type: http\n    url: http://db2:1/\n"
    assert problems(tmp_path, text) == [
        f"{tmp_path}/opsmon.yml:12: checks[2].name: "
        "duplicate check name 'database' (also checks[0])"
    ]


def test_dependency_cycle(tmp_path: Path) -> None:
    """depends_on forming a cycle names the cycle."""
    text = BASE.replace(
        "    url: http://db:8080/\n", "    url: http://db:8080/\n    depends_on: [backend-health]\n"
    )
    found = problems(tmp_path, text)
    assert len(found) == 1
    assert "dependency cycle: database -> backend-health -> database" in found[0]


def test_unknown_type_and_top_level_key(tmp_path: Path) -> None:
    """An unknown check type lists the known ones; an unknown top-level key is named."""
    text = "listen: 127.0.0.1:1\nlistne: 1\nchecks:\n  - name: a\n    type: ping\n"
    found = problems(tmp_path, text)
    assert (
        f"{tmp_path}/opsmon.yml:5: checks[0].type: unknown check type 'ping' (known: " in found[0]
    )
    assert f"{tmp_path}/opsmon.yml:2: listne: unknown key" in found


def test_bad_name(tmp_path: Path) -> None:
    """Check names are limited to [a-z0-9-]."""
    found = problems(
        tmp_path, "checks:\n  - name: Backend_Health\n    type: http\n    url: http://a:1/\n"
    )
    assert found[0].startswith(f"{tmp_path}/opsmon.yml:2: checks[0].name: must match")


def test_malformed_yaml(tmp_path: Path) -> None:
    """Broken YAML is reported with its line, not a traceback."""
    found = problems(tmp_path, "checks:\n  - name: a\n    type: [http\n")
    assert len(found) == 1 and found[0].startswith(f"{tmp_path}/opsmon.yml:4: invalid YAML")


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    """A key given twice in one mapping is an error, not a silent override."""
    found = problems(tmp_path, "listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n")
    assert found == [f"{tmp_path}/opsmon.yml:2: listen: duplicate key"]


def test_unreadable_file(tmp_path: Path) -> None:
    """A missing file says so."""
    with pytest.raises(ConfigError, match="cannot read: No such file"):
        load_config(tmp_path / "absent.yml", {})


def test_several_problems_reported_at_once(tmp_path: Path) -> None:
    """All problems are listed, so one run of `config validate` shows everything to fix."""
    text = (
        "checks:\n  - name: a\n    type: http\n    url: nope\n    interval: -1s\n"
        "  - name: b\n    type: http\n"
    )
    found = problems(tmp_path, text)
    assert len(found) == 3, found


def test_reference_configs_are_valid() -> None:
    """The shipped reference and demo configs validate."""
    root = Path(__file__).resolve().parent.parent
    env = {"DATABASE_URL": "postgresql://app:pw-123456@db:5432/app"}
    assert load_config(root / "config" / "opsmon.yml", env).config.checks
    assert load_config(root / "config" / "demo.yml", env).config.checks


def test_environment_value_with_a_control_character_names_key_and_variable(
    tmp_path: Path,
) -> None:
    """A CRLF `.env` value is refused naming the key and the variable, never the value."""
    text = BASE.replace(
        "    url: http://db:8080/\n",
        '    url: http://db:8080/\n    headers: {Authorization: "Bearer ${TOKEN}"}\n',
    )
    found = problems(tmp_path, text, {"TOKEN": "canary-token-9\r"})
    assert found == [
        f"{tmp_path}/opsmon.yml:7: checks[0].headers.Authorization: environment variable TOKEN"
        " contains a carriage return (\\r); is the .env file saved with CRLF line endings?"
    ]


def test_literal_control_characters_are_refused(tmp_path: Path) -> None:
    """A URL or header may not hold a line break or tab; no value may hold CR or NUL."""
    text = BASE.replace("http://db:8080/", '"http://db:8080/\\tx"').replace(
        "    interval: 15s\n", '    interval: 15s\n    service: "back\\0end"\n'
    )
    assert problems(tmp_path, text) == [
        f"{tmp_path}/opsmon.yml:6: checks[0].url: contains a control character"
        " ('\\t' at position 15)",
        f"{tmp_path}/opsmon.yml:12: checks[1].service: contains a control character"
        " ('\\x00' at position 4)",
    ]


def test_secrets_are_chosen_by_key_not_by_origin(tmp_path: Path) -> None:
    """Secret fields (headers, a DSN's password, channel URLs) are secrets; an address read
    from the environment is not."""
    text = """\
    listen: ${ADDRESS}
    checks:
      - {name: db, type: postgres, dsn: "postgresql://app:${DB_PASSWORD}@db:5432/app"}
    alerting:
      channels:
        - {name: hooks, type: webhook, url: "https://hooks.example/T0/${HOOK_TOKEN}"}
    """
    env = {"ADDRESS": "127.0.0.1:9110", "DB_PASSWORD": "pw-canary-1", "HOOK_TOKEN": "hook-canary"}
    loaded = load(tmp_path, text, env)
    assert loaded.config.listen == "127.0.0.1:9110"
    assert "127.0.0.1:9110" not in loaded.secrets
    assert {"pw-canary-1", "https://hooks.example/T0/hook-canary", "hook-canary"} <= set(
        loaded.secrets
    )
    assert not any("db:5432" in secret for secret in loaded.secrets)


def test_dependency_chains_are_checked_without_recursion(tmp_path: Path) -> None:
    """A long chain is measured and refused past 32 checks; a long cycle is named briefly."""
    lines = ["checks:"]
    for index in range(40):
        lines += [f"  - name: c{index}", "    type: http", "    url: http://x/"]
        if index < 39:
            lines.append(f"    depends_on: [c{index + 1}]")
    found = problems(tmp_path, "\n".join(lines) + "\n")
    assert found == [
        f"{tmp_path}/opsmon.yml:5: checks[0].depends_on: dependency chain of 40 checks"
        " (c0 -> c1 -> c2 -> ... -> c39) is longer than 32"
    ]
    longest_allowed = "\n".join(lines[: 4 * 32]) + "\n"  # c0 -> ... -> c31: 32 checks
    assert len(load(tmp_path, longest_allowed).config.checks) == 32
