"""What an alert is called and says: the diagnosis of the failing check (root cause, affected
checks, evidence, the runbook's first step). Every name comes from the AlertName registry, so
each has a runbook; links are built by `monitor.runbooks.runbook_url`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.alertnames import AlertName, Severity
from monitor.core.health import Health
from monitor.core.result import CheckResult
from monitor.core.spec import CheckSpec
from monitor.diagnosis import CheckView, Problem, Snapshot, diagnose
from monitor.runbooks import Catalogue, default_catalogue


@dataclass(frozen=True)
class AlertContent:
    """Name, severity, one-sentence summary and the evidence of an alert."""

    alertname: str
    severity: str
    summary: str
    description: str
    root: str = ""  # the check diagnosis names as the root cause (empty: not diagnosed)


def _problem_of(check: str, problems: list[Problem]) -> Problem | None:
    """The problem `check` is the root of, else the one it is a symptom in."""
    for problem in problems:
        if problem.root == check:
            return problem
    for problem in problems:
        if check in problem.affected:
            return problem
    return None


def describe_failure(
    spec: CheckSpec,
    result: CheckResult,
    snapshot: Snapshot | None = None,
    catalogue: Catalogue | None = None,
    problems: list[Problem] | None = None,
) -> AlertContent:
    """The alert for check `spec` failing with `result`, diagnosed against every check in
    `snapshot` (the daemon's current states) or, without one, against this check alone.
    Without a catalogue the default runbooks give the first step. `problems`: the snapshot
    already diagnosed (one diagnosis for many alerts of the same moment)."""
    if snapshot is None or spec.name not in snapshot.checks:
        snapshot = Snapshot([CheckView.of(spec, Health.UNHEALTHY, result)])
        problems = None
    if catalogue is None:
        catalogue = default_catalogue()
    if problems is None:
        problems = diagnose(snapshot, catalogue)
    problem = _problem_of(spec.name, problems)
    if problem is None:  # the rules end with a catch-all; this is a safety net
        return AlertContent(
            AlertName.HEALTH_CHECK_FAILING.value,
            Severity.CRITICAL.value,
            f"The check {spec.name} is failing.",
            result.reason or f"{spec.type} check failed ({result.kind})",
        )
    lines = list(problem.evidence) or [result.reason]
    if problem.affected:
        lines.append("Affected: " + ", ".join(problem.affected))
    if problem.next_step is not None:
        lines.append(f"First step: {problem.next_step.command}")
    summary = problem.summary[:1].upper() + problem.summary[1:]
    return AlertContent(
        problem.alert.value, problem.severity.value, summary, "\n".join(lines), problem.root
    )


def state_store_failing(path: str, since: datetime, error: str) -> AlertContent:
    """opsmon's own alert: its SQLite state cannot be written; it runs from memory."""
    return AlertContent(
        AlertName.STATE_STORE_FAILING.value,
        Severity.CRITICAL.value,
        f"opsmon cannot write its state ({path}); it keeps alerting from memory.",
        f"Writing {path} fails since {since.strftime('%Y-%m-%d %H:%M:%S UTC')}: {error}. "
        "Checks and notifications continue from memory and are written back when the disk "
        "recovers; a restart before then forgets what happened since.",
    )


def delivery_failing(channel: str, since: datetime, error: str) -> AlertContent:
    """opsmon's own alert: a channel has not accepted notifications for a while."""
    return AlertContent(
        AlertName.ALERT_DELIVERY_FAILING.value,
        Severity.WARNING.value,
        f"Alerts cannot be delivered to channel {channel}.",
        f"Every delivery to {channel} failed since {since.strftime('%Y-%m-%d %H:%M:%S UTC')}; "
        f"last error: {error}",
    )
