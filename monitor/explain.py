"""`opsmon explain`: each problem as on-call reads it in a terminal, with the first command."""

from __future__ import annotations

import re
from collections.abc import Sequence

from monitor.config import Config
from monitor.diagnosis import Problem
from monitor.redaction import Redactor
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
    problem: Problem, config: Config, catalogue: Catalogue, redactor: Redactor
) -> str:
    """One problem: diagnosis, evidence, runbook link and the first command to type."""
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
        lines.append(f"  First step: {_plain(step.intro)}" if step.intro else "  First step:")
        lines.extend(f"    $ {command}" for command in step.command.splitlines() if command)
    lines.append(f"  Then: opsmon runbooks show {runbook.id}")
    return "\n".join(lines)


def render_report(
    problems: Sequence[Problem],
    checked: int,
    config: Config,
    catalogue: Catalogue,
    redactor: Redactor,
) -> str:
    """Every problem, or a line saying there is none."""
    if not problems:
        return f"No problem found ({checked} checks ran)."
    count = len(problems)
    header = f"{count} problem{'s' if count != 1 else ''} found by {checked} checks:"
    parts = [header, *(render_problem(p, config, catalogue, redactor) for p in problems)]
    return "\n\n".join(parts)
