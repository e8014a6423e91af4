"""The runbook catalogue: coverage of every alert, validity, lookup, links, rendering, packaging."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
import yaml

from monitor.alertnames import EMITTED_ELSEWHERE, AlertName
from monitor.config import Config
from monitor.diagnosis import RULES, emitted_alert_names
from monitor.runbooks import (
    BUNDLED_DIR,
    REQUIRED_SECTIONS,
    Catalogue,
    Runbook,
    RunbookError,
    find_runbooks_dir,
    load_catalogue,
    parse_outline,
    parse_runbook,
    render_html,
    render_text,
    runbook_id,
    runbook_url,
)
from tests.support.cli import run_opsmon

REPO = Path(__file__).resolve().parent.parent
RUNBOOK_FILES = sorted(p for p in (REPO / "runbooks").glob("*.md") if p.name != "README.md")
ROLLBACK_COMMAND = "CI_COMMIT_SHA=previous_hash docker compose -f docker-compose.prod.yml up -d"
# The shape of an alert name in source code: CamelCase ending the way alert names end.
_ALERT_SHAPED = re.compile(
    r"^[A-Z][A-Za-z]+(Failing|Missing|Down|Unhealthy|Looping|Killed|Unavailable|Ready"
    r"|Responses|Expiring|Saturated|Performed|Failed)$"
)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    """The repository's runbooks."""
    return Catalogue.load(REPO / "runbooks")


def _prometheus_rules() -> list[dict[str, object]]:
    rules: list[dict[str, object]] = []
    for path in sorted(REPO.glob("config/**/*.y*ml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("groups"), list):
            for group in data["groups"]:
                rules.extend(r for r in group.get("rules", []) if "alert" in r)
    return rules


def _alert_shaped_literals() -> dict[str, set[str]]:
    """Alert-shaped string values in monitor/ (keys read from other data, such as Docker's
    `State.OOMKilled`, are not alert names and are left out)."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / "monitor").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        keys = {id(node.slice) for node in ast.walk(tree) if isinstance(node, ast.Subscript)}
        keys |= {
            id(node.args[0])
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("get", "pop", "setdefault")
            and node.args
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and _ALERT_SHAPED.match(node.value)
                and id(node) not in keys
            ):
                found.setdefault(node.value, set()).add(str(path.relative_to(REPO)))
    return found


def test_every_alert_name_the_code_can_emit_has_a_runbook(catalogue: Catalogue) -> None:
    """Each name from the registry, the diagnosis rules, the other emitters, the Prometheus
    rules and any alert-shaped string in the source has a runbook."""
    names = {str(n) for n in AlertName} | {str(n) for n in emitted_alert_names()}
    names |= {str(n) for n in EMITTED_ELSEWHERE}
    names |= {str(rule["alert"]) for rule in _prometheus_rules()}
    names |= set(_alert_shaped_literals())
    missing = sorted(n for n in names if catalogue.for_alert(n) is None)
    assert not missing, f"alerts without a runbook: {missing}"
    assert len(names) >= 16


def test_alert_shaped_strings_in_the_source_are_registered() -> None:
    """A new alert name typed somewhere in monitor/ must be added to the AlertName registry."""
    unregistered = {
        name: files
        for name, files in _alert_shaped_literals().items()
        if name not in set(AlertName)
    }
    assert not unregistered


def test_prometheus_rules_link_the_matching_runbook(catalogue: Catalogue) -> None:
    """Each shipped Prometheus alert links the runbook of its name, with the same severity."""
    rules = _prometheus_rules()
    for rule in rules:
        name = str(rule["alert"])
        runbook = catalogue.for_alert(name)
        assert runbook is not None, name
        annotations = rule.get("annotations")
        assert isinstance(annotations, dict)
        assert str(annotations["runbook_url"]).endswith(f"/runbooks/{runbook.id}"), name
        labels = rule.get("labels")
        assert isinstance(labels, dict) and labels["severity"] == runbook.severity.value, name


@pytest.mark.parametrize("path", RUNBOOK_FILES, ids=lambda p: p.stem)
def test_runbook_is_valid(path: Path) -> None:
    """Each runbook has valid front matter, the four sections and a first command."""
    runbook = parse_runbook(path.read_text(encoding="utf-8"), path)
    assert runbook.id == path.stem
    for section in (*REQUIRED_SECTIONS, "Escalation"):
        assert runbook.sections.get(section), f"{path.name}: {section} is empty"
    assert len(runbook.first_command.splitlines()) == 1, "the first step is one command"
    assert runbook.title and runbook.alerts


def test_catalogue_loads_every_file_without_problems(catalogue: Catalogue) -> None:
    """The shipped folder holds only valid runbooks, one per file, README excluded."""
    assert catalogue.problems == ()
    assert sorted(r.id for r in catalogue) == [p.stem for p in RUNBOOK_FILES]


def test_runbooks_for_rollback_capable_alerts_give_the_reference_rollback(
    catalogue: Catalogue,
) -> None:
    """Where a bad release can be the cause, the runbook gives the reference rollback command."""
    for rule in RULES:
        if rule.rollback_can_help:
            runbook = catalogue.for_alert(rule.alert)
            assert runbook is not None and ROLLBACK_COMMAND in runbook.body, rule.alert


def test_runbooks_list_environment_names_never_values(catalogue: Catalogue) -> None:
    """Every command that lists a container's environment cuts it down to the names."""
    shown = re.compile(r"\benv\s*\||\.Config\.Env|printenv")
    for runbook in catalogue:
        for line in runbook.body.splitlines():
            if shown.search(line):
                assert "cut -d= -f1" in line or "=$/" in line, f"{runbook.id}: {line}"


def test_runbooks_use_the_reference_stack_commands(catalogue: Catalogue) -> None:
    """The commands on-call needs for the reference stack appear in the runbooks (logs with
    --tail: a diagnosis command must return)."""
    text = "\n".join(r.body for r in catalogue)
    for command in (
        "docker compose logs --tail=200 backend",
        "docker compose ps",
        "pg_isready -h db -U postgres",
        "curl -s http://backend:4000/api/health",
        "env | cut -d= -f1",
        ROLLBACK_COMMAND,
    ):
        assert command in text, command


def test_runbook_ids_follow_alert_names(catalogue: Catalogue) -> None:
    """The id derived from an alert name is its runbook's id (links work without the files)."""
    for name in AlertName:
        runbook = catalogue.for_alert(name)
        assert runbook is not None
        assert runbook_id(name) == runbook.id
        assert runbook_id(name, catalogue) == runbook.id


GOOD = """---
id: sample
alerts: [SampleFailing]
severity: critical
title: Sample
---

## Meaning

Text.

## Impact

Text.

## Diagnosis

```bash
echo first
```

## Mitigation

Text.
"""

BROKEN = [
    ("no front matter", GOOD.split("---", 2)[2], "must start with YAML front matter"),
    ("unclosed front matter", GOOD.replace("title: Sample\n---", "title: Sample"), "not closed"),
    ("bad yaml", GOOD.replace("alerts: [SampleFailing]", "alerts: [oops"), "not valid YAML"),
    ("missing key", GOOD.replace("title: Sample\n", ""), "front matter misses title"),
    ("unknown key", GOOD.replace("title: Sample", "title: Sample\nowner: me"), "unknown keys"),
    ("id differs", GOOD.replace("id: sample", "id: other"), "differs from the file name"),
    ("bad severity", GOOD.replace("critical", "urgent"), "severity must be one of"),
    ("bad alerts", GOOD.replace("[SampleFailing]", "[sample failing]"), "CamelCase"),
    ("missing section", GOOD.replace("## Impact\n\nText.\n", ""), "'## Impact' is missing"),
    ("empty section", GOOD.replace("## Impact\n\nText.\n", "## Impact\n"), "'## Impact' is empty"),
    (
        "no command",
        GOOD.replace("```bash\necho first\n```", "Look around."),
        "no fenced code block",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [(t, m) for _, t, m in BROKEN], ids=[n for n, *_ in BROKEN]
)
def test_broken_runbook_is_rejected_with_the_reason(text: str, message: str) -> None:
    """A malformed runbook is refused with its file name and what is wrong."""
    with pytest.raises(RunbookError, match=re.escape(message)) as caught:
        parse_runbook(text, Path("sample.md"))
    assert str(caught.value).startswith("sample.md: ")


def _outline_view(runbook: Runbook) -> tuple[object, ...]:
    commands = tuple(step.command for step in runbook.steps)
    return (
        runbook.id,
        runbook.title,
        runbook.severity,
        runbook.alerts,
        runbook.body,
        dict(runbook.sections),
        commands,
    )


TRICKY = [
    ("closing hashes", GOOD.replace("## Impact\n", "## Impact ##\n")),
    ("heading in a fence", GOOD.replace("echo first\n", "echo first\n## Impact\n")),
    ("tilde fence", GOOD.replace("```bash\necho first\n```", "~~~\necho first\n~~~")),
    ("longer fence", GOOD.replace("```bash\necho first\n```", "````\n```\necho\n````")),
    ("indented fence", GOOD.replace("```bash\necho first\n```", "  ```\n  echo first\n  ```")),
    ("h3 is no section", GOOD.replace("## Impact\n\nText.\n", "### Impact\n\nText.\n")),
    ("twice", GOOD + "\n## Impact\n\nMore.\n"),
]


@pytest.mark.parametrize(
    "path", RUNBOOK_FILES + sorted(BUNDLED_DIR.glob("*-*.md")), ids=lambda p: p.name
)
def test_the_outline_reads_every_shipped_runbook_as_markdown_does(path: Path) -> None:
    """`runbooks list` (no Markdown parser) sees the same runbook as the daemon does."""
    text = path.read_text(encoding="utf-8")
    assert _outline_view(parse_outline(text, path)) == _outline_view(parse_runbook(text, path))


@pytest.mark.parametrize(
    "text",
    [GOOD] + [t for _, t, _ in BROKEN] + [t for _, t in TRICKY],
    ids=["good"] + [n for n, *_ in BROKEN] + [n for n, _ in TRICKY],
)
def test_the_outline_accepts_and_refuses_what_markdown_does(text: str) -> None:
    """The outline parser finds the same sections, commands and problems as markdown_it."""
    path = Path("sample.md")
    try:
        expected: object = _outline_view(parse_runbook(text, path))
    except RunbookError as exc:
        expected = str(exc)
    try:
        found: object = _outline_view(parse_outline(text, path))
    except RunbookError as exc:
        found = str(exc)
    assert found == expected


def test_catalogue_skips_invalid_files_and_reports_them(tmp_path: Path) -> None:
    """One bad file does not hide the good ones; duplicates of an alert are reported."""
    (tmp_path / "sample.md").write_text(GOOD)
    (tmp_path / "twin.md").write_text(GOOD.replace("id: sample", "id: twin"))
    (tmp_path / "broken.md").write_text("no front matter")
    (tmp_path / "README.md").write_text("# index, not a runbook")
    catalogue = Catalogue.load(tmp_path)
    assert [r.id for r in catalogue] == ["sample", "twin"]
    assert catalogue.for_alert("SampleFailing") is not None
    assert any(p.startswith("broken.md:") for p in catalogue.problems)
    assert any("SampleFailing already belongs to sample" in p for p in catalogue.problems)


def test_runbooks_dir_override_and_clear_error(tmp_path: Path) -> None:
    """OPSMON_RUNBOOKS_DIR wins; a folder that does not exist is a clear error; the default in
    a clone is the repository's runbooks/."""
    (tmp_path / "sample.md").write_text(GOOD)
    assert [r.id for r in load_catalogue(str(tmp_path))] == ["sample"]
    with pytest.raises(RunbookError, match=r"OPSMON_RUNBOOKS_DIR=.*is not a folder"):
        find_runbooks_dir(tmp_path / "nope")
    assert find_runbooks_dir() == REPO / "runbooks"


def test_runbook_url_uses_template_else_public_url(catalogue: Catalogue) -> None:
    """The link is runbook_url_template with {id} when set, else public_url + /runbooks/id."""
    plain = Config(public_url="https://ops.example.com/")
    assert (
        runbook_url(plain, "DatabaseConnectionFailing", catalogue)
        == "https://ops.example.com/runbooks/database-connection-failing"
    )
    templated = Config(
        runbook_url_template="https://github.com/acme/ops/blob/main/runbooks/{id}.md"
    )
    assert (
        runbook_url(templated, "TLSCertificateExpiring")
        == "https://github.com/acme/ops/blob/main/runbooks/tls-certificate-expiring.md"
    )


def test_template_without_id_is_a_config_error(tmp_path: Path) -> None:
    """`config validate` rejects a runbook_url_template that has no {id}, naming line and key."""
    config = tmp_path / "opsmon.yml"
    config.write_text("public_url: http://localhost:9110\nrunbook_url_template: https://x/\n")
    done = run_opsmon("config", "validate", "--config", str(config))
    assert done.returncode == 2
    assert f"{config}:2: runbook_url_template: must contain {{id}}" in done.stdout


def test_html_escapes_everything_the_file_holds(tmp_path: Path) -> None:
    """Raw HTML, script links and markup in titles are shown as text, never executed."""
    hostile = GOOD.replace("title: Sample", "title: '<script>alert(1)</script>'").replace(
        "Text.", "<img src=x onerror=alert(1)> [click](javascript:alert(1)) `sample`", 1
    )
    path = tmp_path / "sample.md"
    path.write_text(hostile)
    runbook = parse_runbook(hostile, path)
    page = render_html(runbook, Catalogue.of([runbook]))
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="javascript:' not in page
    assert '<pre><code class="language-bash">echo first\n</code></pre>' in page


def test_html_links_runbooks_that_mention_each_other(catalogue: Catalogue) -> None:
    """A runbook id in backticks becomes a link to that runbook's page."""
    runbook = catalogue.get("health-check-failing")
    assert runbook is not None
    page = render_html(runbook, catalogue)
    assert (
        '<a href="database-connection-failing"><code>database-connection-failing</code></a>' in page
    )


def test_cli_lists_and_shows_runbooks(tmp_path: Path) -> None:
    """`opsmon runbooks list` lists every id; `show` prints one as text, by id or alert name
    (as shipped where no config is found)."""
    no_config = {"OPSMON_CONFIG": ""}
    listed = run_opsmon("runbooks", "list")
    assert listed.returncode == 0, listed.stderr
    for path in RUNBOOK_FILES:
        assert path.stem in listed.stdout
    shown = run_opsmon("runbooks", "show", "DatabaseConnectionFailing", cwd=tmp_path, env=no_config)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("Database connection fails (database-connection-failing)")
    assert "    docker compose exec db pg_isready -h db -U postgres" in shown.stdout
    assert "```" not in shown.stdout
    unknown = run_opsmon("runbooks", "show", "nope", cwd=tmp_path, env=no_config)
    assert unknown.returncode == 1
    assert "no runbook named nope (known: alert-delivery-failing," in unknown.stderr


def test_cli_reads_runbooks_from_opsmon_runbooks_dir(tmp_path: Path) -> None:
    """OPSMON_RUNBOOKS_DIR points the CLI at a team's own runbooks."""
    (tmp_path / "sample.md").write_text(GOOD)
    done = run_opsmon(
        "runbooks",
        "show",
        "sample",
        cwd=tmp_path,
        env={"OPSMON_RUNBOOKS_DIR": str(tmp_path), "OPSMON_CONFIG": ""},
    )
    assert done.returncode == 0, done.stderr
    assert render_text(parse_runbook(GOOD, tmp_path / "sample.md")) == done.stdout


@pytest.mark.slow
def test_non_editable_install_ships_the_runbooks(tmp_path: Path) -> None:
    """`pip install .` (not editable) installs the runbooks inside the package, and the
    installed opsmon finds and serves them from there."""
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(REPO / "pyproject.toml", source)
    readme = REPO / "README.md"
    (source / "README.md").write_text(readme.read_text() if readme.exists() else "# opsmon\n")
    shutil.copytree(REPO / "runbooks", source / "runbooks")
    shutil.copytree(
        REPO / "monitor",
        source / "monitor",
        symlinks=True,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The dependencies come from the test environment; opsmon itself only from the new venv
    # (a plain path line, so the test venv's editable-install hook is not loaded).
    Path(site, "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    shutil.rmtree(source)
    probe = textwrap.dedent(
        """
        import monitor.runbooks as r
        d = r.find_runbooks_dir()
        print(r.__file__)
        print(d)
        print(len(r.load_catalogue()))
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OPSMON_RUNBOOKS_DIR", "PYTHONPATH")}
    done = subprocess.run(
        [str(python), "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    module, folder, count = done.stdout.split()
    assert module.startswith(site) and folder.startswith(site), done.stdout
    assert Path(folder).name == "bundled_runbooks" and not Path(folder).is_symlink()
    assert int(count) == len(RUNBOOK_FILES)
    shown = subprocess.run(
        [str(python), "-m", "monitor", "runbooks", "show", "container-oom-killed"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("Container was OOM-killed (container-oom-killed)")
