"""The gate's outcome as plain records, its exit codes, and its three renderings: lines for a
person, a JSON document for machines, and GitHub Actions annotations plus a Markdown step
summary. Pure functions: the command prints what they return."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from monitor.gate.verdict import Change, CheckSeen


class Verdict(StrEnum):
    """How the gate ended for one service."""

    PROMOTED = "promoted"  # healthy for --healthy-for: the new version stays (and is LKG)
    ROLLED_BACK = "rolled_back"  # failed; rolled back, and the last known good is healthy
    ROLLBACK_FAILED = "rollback_failed"  # failed; the rollback did not work (frozen now)
    ROLLBACK_REFUSED = "rollback_refused"  # failed; a guard refused (dependency down, ...)
    NOT_ROLLED_BACK = "not_rolled_back"  # failed; --no-rollback
    TIMED_OUT = "timed_out"  # no verdict within --timeout


EXIT_PROMOTED, EXIT_ROLLED_BACK, EXIT_NEEDS_HUMAN, EXIT_TIMED_OUT, EXIT_USAGE = 0, 1, 2, 3, 4

EXIT_CODES: dict[Verdict, int] = {
    Verdict.PROMOTED: EXIT_PROMOTED,
    Verdict.ROLLED_BACK: EXIT_ROLLED_BACK,
    Verdict.ROLLBACK_FAILED: EXIT_NEEDS_HUMAN,
    Verdict.ROLLBACK_REFUSED: EXIT_NEEDS_HUMAN,
    Verdict.NOT_ROLLED_BACK: EXIT_NEEDS_HUMAN,
    Verdict.TIMED_OUT: EXIT_TIMED_OUT,
}
# Several services: the one that most needs attention decides the exit code.
_URGENCY = {EXIT_PROMOTED: 0, EXIT_ROLLED_BACK: 1, EXIT_TIMED_OUT: 2, EXIT_NEEDS_HUMAN: 3}

HEADLINES: dict[Verdict, str] = {
    Verdict.PROMOTED: "promoted",
    Verdict.ROLLED_BACK: "rolled back; the last known good is healthy",
    Verdict.ROLLBACK_FAILED: "rollback failed; needs a human",
    Verdict.ROLLBACK_REFUSED: "not rolled back; needs a human",
    Verdict.NOT_ROLLED_BACK: "failed; not rolled back (--no-rollback); needs a human",
    Verdict.TIMED_OUT: "timed out without a verdict",
}


@dataclass(frozen=True)
class RollbackDone:
    """The rollback the gate carried out, or whose outcome it waited for."""

    id: str
    status: str
    target_image: str
    outcome: str
    owner: str = ""  # who carried it out (this gate, another gate, the daemon)


@dataclass
class ServiceReport:
    """Everything the gate learnt about one service."""

    service: str
    verdict: Verdict
    summary: str  # the verdict in one sentence
    started_at: datetime
    finished_at: datetime
    image: str = ""
    image_id: str = ""
    container: str = ""
    last_known_good: str = ""
    checks: Sequence[CheckSeen] = ()
    evidence: Sequence[str] = ()
    reason: str = ""  # why it was (not) rolled back
    diagnosis: str = ""  # the alert name of the cause, when one is known
    runbook_url: str = ""
    rollback: RollbackDone | None = None
    followed: str = ""  # the owner whose outcome this gate reports instead of acting
    changes: list[Change] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """This service's exit code."""
        return EXIT_CODES[self.verdict]

    @property
    def seconds(self) -> float:
        """From the gate's start to the verdict."""
        return (self.finished_at - self.started_at).total_seconds()


def exit_code(reports: Iterable[ServiceReport]) -> int:
    """The command's exit code: the most urgent service's (2 > 3 > 1 > 0)."""
    codes = [r.exit_code for r in reports]
    return max(codes, key=_URGENCY.__getitem__) if codes else EXIT_USAGE


def _time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def progress_line(service: str, change: Change) -> str:
    """One timestamped line for a person."""
    return f"{_time(change.at)} {service}: {change.text}"


def render_text(reports: Sequence[ServiceReport]) -> str:
    """The closing lines for a person: per service the verdict, why, and what was done."""
    lines: list[str] = []
    for report in reports:
        lines.append(
            f"{report.service}: {report.verdict.value.upper()} ({HEADLINES[report.verdict]}) "
            f"after {report.seconds:.1f}s, exit {report.exit_code}"
        )
        lines.append(f"  {report.summary}")
        if report.image:
            lines.append(f"  image: {report.image} ({_short(report.image_id)})")
        if report.last_known_good:
            lines.append(f"  last known good: {report.last_known_good}")
        lines += [f"  evidence: {line}" for line in report.evidence]
        if report.reason:
            lines.append(f"  rollback: {report.reason}")
        if report.rollback is not None and report.rollback.outcome:
            lines.append(f"  {report.rollback.outcome}")
        if report.followed:
            lines.append(f"  (carried out by {report.followed}; this gate waited for it)")
        if report.runbook_url:
            lines.append(f"  runbook: {report.runbook_url}")
    lines.append(f"exit {exit_code(reports)}")
    return "\n".join(lines)


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def to_document(reports: Sequence[ServiceReport]) -> dict[str, Any]:
    """The JSON document of `--json`."""
    code = exit_code(reports)
    return {
        "exit_code": code,
        "services": [
            {
                "service": r.service,
                "verdict": r.verdict.value,
                "exit_code": r.exit_code,
                "summary": r.summary,
                "image": r.image or None,
                "image_id": r.image_id or None,
                "container": r.container or None,
                "last_known_good": r.last_known_good or None,
                "checks": [
                    {"name": c.name, "health": c.health, "reason": c.reason or None}
                    for c in r.checks
                ],
                "evidence": list(r.evidence),
                "rollback_reason": r.reason or None,
                "diagnosis": r.diagnosis or None,
                "runbook_url": r.runbook_url or None,
                "rollback": None
                if r.rollback is None
                else {
                    "id": r.rollback.id,
                    "status": r.rollback.status,
                    "target_image": r.rollback.target_image,
                    "outcome": r.rollback.outcome,
                    "owner": r.rollback.owner or None,
                },
                "followed": r.followed or None,
                "started_at": r.started_at.isoformat(),
                "finished_at": r.finished_at.isoformat(),
                "seconds": round(r.seconds, 3),
                "changes": [{"at": c.at.isoformat(), "text": c.text} for c in r.changes],
            }
            for r in reports
        ],
    }


# --- GitHub Actions -----------------------------------------------------------------------


def _escape_data(text: str) -> str:
    """A workflow command's message (GitHub's escaping: %, CR, LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    """A workflow command's property value (also `:` and `,`)."""
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(reports: Sequence[ServiceReport]) -> list[str]:
    """`::notice::` for a promoted service, `::error::` for every other verdict."""
    lines = []
    for r in reports:
        kind = "notice" if r.verdict is Verdict.PROMOTED else "error"
        title = f"opsmon gate: {r.service} {HEADLINES[r.verdict]}"
        body = [r.summary, *r.evidence]
        if r.reason:
            body.append(f"rollback: {r.reason}")
        if r.runbook_url:
            body.append(f"runbook: {r.runbook_url}")
        lines.append(
            f"::{kind} title={_escape_property(title)}::{_escape_data(chr(10).join(body))}"
        )
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>") if text else "-"


def step_summary(reports: Sequence[ServiceReport]) -> str:
    """The Markdown appended to $GITHUB_STEP_SUMMARY: verdict, images, checks, diagnosis,
    runbook link."""
    code = exit_code(reports)
    icon = {0: "✅", 1: "↩️", 2: "❌", 3: "⏱️"}.get(code, "❌")
    lines = [
        f"## {icon} opsmon deploy gate: exit {code}",
        "",
        "| service | verdict | image | last known good | seconds |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in reports:
        image = f"`{r.image}`" if r.image else "-"
        lkg = f"`{r.last_known_good}`" if r.last_known_good else "-"
        lines.append(
            f"| {_cell(r.service)} | **{r.verdict.value}** | {image} | {lkg} | {r.seconds:.1f} |"
        )
    for r in reports:
        lines += ["", f"### {r.service}: {HEADLINES[r.verdict]}", "", _cell(r.summary), ""]
        if r.checks:
            lines += ["| check | health | reason |", "| --- | --- | --- |"]
            lines += [f"| {_cell(c.name)} | {c.health} | {_cell(c.reason)} |" for c in r.checks]
            lines.append("")
        if r.evidence:
            lines += ["Evidence:", "", *(f"- {line}" for line in r.evidence), ""]
        if r.diagnosis:
            lines.append(f"Diagnosis: **{r.diagnosis}**")
        if r.reason:
            lines.append(f"Rollback: {r.reason}")
        if r.rollback is not None and r.rollback.outcome:
            lines.append(f"Outcome: {r.rollback.outcome}")
        if r.followed:
            lines.append(f"Carried out by {r.followed}; this gate waited for it.")
        if r.runbook_url:
            lines.append(f"Runbook: [{r.diagnosis or 'runbook'}]({r.runbook_url})")
    return "\n".join(lines).rstrip() + "\n"
