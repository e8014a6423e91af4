"""What the gate reads from `docker inspect` and log lines."""

from __future__ import annotations

from typing import Any

from monitor.gate.evidence import (
    candidates,
    container_seen,
    env_hint,
    last_line,
    named_in_logs,
    wants_logs,
    will_restart,
)

ZOD = """Invalid environment variables:
{
  _errors: [],
  ANTHROPIC_API_KEY: { _errors: [ 'Required' ] },
  DATABASE_URL: { _errors: [ 'Invalid url' ] }
}
"""


def inspect(**state: Any) -> dict[str, Any]:
    """`docker inspect` of an exited container (restart policy `no`)."""
    return {
        "Id": "c1",
        "Name": "/app_backend_1",
        "Image": "sha256:" + "ab" * 32,
        "RestartCount": state.pop("RestartCount", 0),
        "Config": {"Image": "app/backend:v2", "Env": state.pop("Env", []), "Labels": {}},
        "HostConfig": {"RestartPolicy": state.pop("RestartPolicy", {"Name": "no"})},
        "State": {
            "Status": "exited",
            "Running": False,
            "ExitCode": 1,
            "OOMKilled": False,
            "StartedAt": "2026-11-28T12:00:00.000000000Z",
            "FinishedAt": "2026-11-28T12:00:00.300000000Z",
            **state,
        },
    }


def test_zod_output_names_the_missing_variable_only() -> None:
    """zod's format() lists every bad variable; only the unset one is named (never values)."""
    assert named_in_logs(ZOD, {"DATABASE_URL": "postgres://x"}) == ["ANTHROPIC_API_KEY"]


def test_zod_output_as_json_names_the_missing_variable() -> None:
    """The reference backend prints zod's format() with JSON.stringify (quoted keys)."""
    text = (
        'Invalid environment variables:\n{\n  "_errors": [],\n  "FEATURE_STORE_URL": {\n'
        '    "_errors": [\n      "Required"\n    ]\n  }\n}\n[Startup] Invalid environment variables'
    )
    assert named_in_logs(text, {}) == ["FEATURE_STORE_URL"]


def test_common_phrasings_name_variables() -> None:
    """`X is not set`, `Missing required environment variable: X`, `X: Required`."""
    text = "API_KEY is not set\nMissing required environment variable: SMTP_HOST\nTOKEN: Required"
    assert named_in_logs(text, {}) == ["TOKEN", "SMTP_HOST", "API_KEY"]


def test_set_variables_are_no_evidence() -> None:
    """A name in a log line whose variable has a value is not reported."""
    assert named_in_logs("API_KEY is not set", {"API_KEY": "k"}) == []


def test_env_hint_without_names_says_invalid() -> None:
    """Only the framework's headline: the environment is invalid."""
    assert env_hint("Invalid environment variables", []) == (
        "its log says the environment variables are invalid"
    )


def test_exit_at_start_names_the_missing_variable() -> None:
    """An exited container whose log names an unset variable lacks it."""
    seen = container_seen(inspect(), [], "API_KEY is not set\n")
    assert seen.missing_env == ("API_KEY",)
    assert seen.exit_reason == "exited with code 1 after 300ms"
    assert seen.last_log_line == "API_KEY is not set"


def test_a_restarted_container_still_lacks_what_its_last_run_named() -> None:
    """Caught between two restarts, running: the log of the run that ended still counts."""
    seen = container_seen(
        inspect(Status="running", Running=True, RestartCount=2), [], "API_KEY is not set\n"
    )
    assert seen.missing_env == ("API_KEY",)
    running = container_seen(inspect(Status="running", Running=True), [], "API_KEY is not set\n")
    assert running.missing_env == ()


def test_required_env_comes_from_the_config() -> None:
    """`required_env` of the service's container check, checked against the container."""
    seen = container_seen(inspect(Env=["A=1", "B="]), ["A", "B", "C"])
    assert seen.missing_env == ("B", "C")


def test_last_log_line_masks_environment_values() -> None:
    """A secret the process printed is masked before it reaches the pipeline."""
    assert last_line("boom: token s3cr3t-value\n\n", ["s3cr3t-value"]) == "boom: token ***"


def test_restart_policies() -> None:
    """always/unless-stopped restart; on-failure only after a failure and within its count."""
    assert will_restart(inspect(RestartPolicy={"Name": "always"}))
    assert will_restart(inspect(RestartPolicy={"Name": "unless-stopped"}))
    assert not will_restart(inspect())
    assert will_restart(inspect(RestartPolicy={"Name": "on-failure", "MaximumRetryCount": 0}))
    assert not will_restart(
        inspect(RestartCount=3, RestartPolicy={"Name": "on-failure", "MaximumRetryCount": 3})
    )
    assert not will_restart(inspect(ExitCode=0, RestartPolicy={"Name": "on-failure"}))


def test_logs_are_read_only_for_early_exits_and_restarts() -> None:
    """A running container that never restarted needs no log reading."""
    assert wants_logs(inspect())
    assert not wants_logs(inspect(Status="running", Running=True))
    assert wants_logs(inspect(Status="running", Running=True, RestartCount=2))


def test_candidates_from_the_container_list() -> None:
    """`GET /containers/json` summaries as candidates."""
    [one] = candidates(
        [{"Id": "c1", "Image": "app:v2", "ImageID": "sha256:1", "State": "running", "Created": 5}]
    )
    assert (one.id, one.image, one.image_id, one.state, one.created) == (
        "c1",
        "app:v2",
        "sha256:1",
        "running",
        5.0,
    )
