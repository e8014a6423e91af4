"""The gate's outcome: exit codes, text, JSON, GitHub annotations and step summary."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from monitor.gate.report import (
    EXIT_CODES,
    RollbackDone,
    ServiceReport,
    Verdict,
    exit_code,
    github_annotations,
    render_text,
    step_summary,
    to_document,
)
from monitor.gate.verdict import CheckSeen

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def report(service: str, verdict: Verdict, **fields: object) -> ServiceReport:
    """A finished service report, 12.5 s long."""
    made = ServiceReport(
        service, verdict, f"{service}: {verdict.value}", T0, T0 + timedelta(seconds=12.5)
    )
    for name, value in fields.items():
        setattr(made, name, value)
    return made


@pytest.mark.parametrize(
    ("verdict", "code"),
    [
        (Verdict.PROMOTED, 0),
        (Verdict.ROLLED_BACK, 1),
        (Verdict.ROLLBACK_FAILED, 2),
        (Verdict.ROLLBACK_REFUSED, 2),
        (Verdict.NOT_ROLLED_BACK, 2),
        (Verdict.TIMED_OUT, 3),
    ],
)
def test_exit_code_per_verdict(verdict: Verdict, code: int) -> None:
    """The documented exit code of every verdict."""
    assert EXIT_CODES[verdict] == code
    assert exit_code([report("backend", verdict)]) == code


def test_most_urgent_service_decides_the_exit_code() -> None:
    """Needs a human (2) beats timed out (3) beats rolled back (1) beats promoted (0)."""
    promoted, rolled = report("a", Verdict.PROMOTED), report("b", Verdict.ROLLED_BACK)
    timed, refused = report("c", Verdict.TIMED_OUT), report("d", Verdict.ROLLBACK_REFUSED)
    assert exit_code([promoted, rolled]) == 1
    assert exit_code([promoted, rolled, timed]) == 3
    assert exit_code([timed, refused, promoted]) == 2


def test_text_names_verdict_images_evidence_and_rollback() -> None:
    """The closing lines carry what an engineer needs to act."""
    text = render_text(
        [
            report(
                "backend",
                Verdict.ROLLED_BACK,
                image="app/backend:8a1b4d7",
                image_id="sha256:" + "ab" * 32,
                last_known_good="app/backend:3f9c2e1",
                evidence=["backend-health: [STATUS] (500) == 200"],
                runbook_url="http://opsmon/runbooks/health-check-failing",
            )
        ]
    )
    assert "backend: ROLLED_BACK (rolled back; the last known good is healthy) after 12.5s" in text
    assert "image: app/backend:8a1b4d7 (abababababab)" in text
    assert "evidence: backend-health: [STATUS] (500) == 200" in text
    assert text.endswith("exit 1")


def test_json_document_is_complete_and_serialisable() -> None:
    """`--json` gives the exit code and per service verdict, checks, rollback, timings."""
    done = RollbackDone("r1", "succeeded", "app:v1", "rolled back in 3.0s", "this gate")
    document = to_document(
        [
            report(
                "backend",
                Verdict.ROLLED_BACK,
                checks=[CheckSeen("backend-health", "unhealthy", "[STATUS] (500) == 200")],
                rollback=done,
            )
        ]
    )
    assert json.loads(json.dumps(document)) == document
    [service] = document["services"]
    assert document["exit_code"] == 1 and service["exit_code"] == 1
    assert service["checks"] == [
        {"name": "backend-health", "health": "unhealthy", "reason": "[STATUS] (500) == 200"}
    ]
    assert service["rollback"]["status"] == "succeeded" and service["seconds"] == 12.5


def test_annotations_are_notice_for_promoted_and_error_otherwise() -> None:
    """GitHub's workflow commands, with their escaping of `%`, newlines, `:` and `,`."""
    lines = github_annotations(
        [
            report("frontend", Verdict.PROMOTED),
            report("backend", Verdict.ROLLBACK_REFUSED, evidence=["db: 100% down, really"]),
        ]
    )
    assert lines[0].startswith("::notice title=opsmon gate%3A frontend promoted::")
    assert lines[1].startswith(
        "::error title=opsmon gate%3A backend not rolled back; needs a human::"
    )
    assert "%0Adb: 100%25 down, really" in lines[1]
    assert "\n" not in "".join(lines)


def test_step_summary_is_markdown_with_a_row_per_service() -> None:
    """Verdict, images, checks, diagnosis and the runbook link, with table cells escaped."""
    text = step_summary(
        [
            report(
                "backend",
                Verdict.ROLLBACK_REFUSED,
                image="app/backend:8a1b4d7",
                last_known_good="app/backend:3f9c2e1",
                checks=[CheckSeen("backend-health", "unhealthy", "a | b")],
                diagnosis="DatabaseConnectionFailing",
                reason="no rollback: a rollback cannot help",
                runbook_url="http://opsmon/runbooks/database-connection-failing",
            )
        ]
    )
    assert text.startswith("## ❌ opsmon deploy gate: exit 2\n")
    assert (
        "| backend | **rollback_refused** | `app/backend:8a1b4d7` | `app/backend:3f9c2e1` | 12.5 |"
        in text
    )
    assert "| backend-health | unhealthy | a \\| b |" in text
    assert "Diagnosis: **DatabaseConnectionFailing**" in text
    assert "[DatabaseConnectionFailing](http://opsmon/runbooks/database-connection-failing)" in text
