"""`opsmon explain`: each problem as on-call reads it in a terminal, with the first command;
and the same verdicts as `/api/status` shows them beside each check (one diagnosis, the same
function, for the terminal, the daemon's status and the alerts)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from monitor.config import Config
from monitor.diagnosis import Problem
from monitor.redaction import Redactor
from monitor.runbook_context import RunbookContext, localize
from monitor.runbooks import Catalogue, runbook_url

_ROLLBACK = {
    True: "could help (a bad release can be rolled back)",
    False: "would not help (the cause is not the release)",
}


_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def _plain(text: str) -> str:
    """Markdown bold markers removed, but only outside `code`: there `USER:***@db` is text."""
    pieces: list[str] = []
    end = 0
    for match in _CODE_SPAN.finditer(text):
        pieces += [text[end : match.start()].replace("**", ""), match.group(0)]
        end = match.end()
    return "".join([*pieces, text[end:].replace("**", "")])


def render_problem(
    problem: Problem,
    config: Config,
    catalogue: Catalogue,
    redactor: Redactor,
    config_arg: str | None = None,
) -> str:
    """One problem: diagnosis, evidence, runbook link and the first command to type; the
    `runbooks show` command names `config_arg` (the `--config` given) so that it renders the
    runbook for the same config."""
    where = f"check {problem.root}"
    if problem.service:
        where += f", service {problem.service}"
    lines = [
        f"{problem.severity.value.upper()}  {problem.alert.value}  (root cause: {where})",
        f"  {redactor.text(problem.summary)}",
    ]
    if problem.affected:
        lines.append(f"  Affected: {', '.join(problem.affected)} (symptoms of this cause)")
    lines.append("  Evidence:")
    lines.extend(f"    {redactor.text(line)}" for line in problem.evidence or ("(none)",))
    lines.append(f"  Automatic rollback: {_ROLLBACK[problem.rollback_can_help]}")
    runbook = catalogue.get(problem.runbook) if problem.runbook else None
    if runbook is None:
        lines.append(f"  Runbook: none found for {problem.alert.value}")
        return "\n".join(lines)
    url = runbook_url(config, problem.alert.value, catalogue)
    lines.append(f"  Runbook: {runbook.title}  {url}")
    step = problem.next_step
    if step is not None:
        step = replace(step, command=localize(step.command, RunbookContext.of(config)))
        lines.append(f"  First step: {_plain(step.intro)}" if step.intro else "  First step:")
        lines.extend(f"    $ {command}" for command in step.command.splitlines() if command)
    config_option = f" --config {shlex.quote(config_arg)}" if config_arg else ""
    lines.append(f"  Then: opsmon runbooks show {runbook.id}{config_option}")
    return "\n".join(lines)


def render_report(
    problems: Sequence[Problem],
    checked: int,
    config: Config,
    catalogue: Catalogue,
    redactor: Redactor,
    config_arg: str | None = None,
) -> str:
    """Every problem, or a line saying there is none."""
    if not problems:
        return f"No problem found ({checked} checks ran)."
    count = len(problems)
    header = f"{count} problem{'s' if count != 1 else ''} found by {checked} checks:"
    parts = [
        header,
        *(render_problem(p, config, catalogue, redactor, config_arg) for p in problems),
    ]
    return "\n\n".join(parts)


def problem_document(
    problem: Problem, config: Config, catalogue: Catalogue | None, redactor: Redactor
) -> dict[str, Any]:
    """A problem as `/api/status` shows it: the diagnosis, the root cause, the runbook link."""
    return {
        "alertname": problem.alert.value,
        "severity": problem.severity.value,
        "diagnosis": redactor.text(problem.summary),
        "root_cause": {"check": problem.root, "service": problem.service},
        "affected": list(problem.affected),
        "evidence": [redactor.text(line) for line in problem.evidence],
        "rollback_can_help": problem.rollback_can_help,
        "runbook_url": runbook_url(config, problem.alert.value, catalogue),
    }


def problems_by_check(
    problems: Sequence[Problem], config: Config, catalogue: Catalogue | None, redactor: Redactor
) -> dict[str, list[dict[str, Any]]]:
    """For each check that is the root of a problem or affected by one, those problems."""
    found: dict[str, list[dict[str, Any]]] = {}
    for problem in problems:
        document = problem_document(problem, config, catalogue, redactor)
        for check in problem.checks:
            found.setdefault(check, []).append(document)
    return found
