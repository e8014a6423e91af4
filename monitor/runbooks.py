"""The runbook catalogue: one Markdown file per alert, looked up by id or alert name, rendered.

A runbook is `runbooks/<id>.md`: YAML front matter (`id`, `alerts`, `severity`, `title`) and the
sections Meaning, Impact, Diagnosis and Mitigation (Escalation is welcome). The first fenced code
block of Diagnosis is the first command on-call types; `opsmon explain` prints it.

markdown_it is imported only where a runbook's Markdown is parsed or rendered (the daemon,
`explain`, `runbooks show`): `opsmon runbooks list` reads the outline with `parse_outline`.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from monitor.alertnames import Severity
from monitor.runbook_context import RunbookContext, escalation_section, localize

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

    from monitor.config import Config

REQUIRED_SECTIONS = ("Meaning", "Impact", "Diagnosis", "Mitigation")
FRONT_MATTER_KEYS = ("id", "alerts", "severity", "title")
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled_runbooks"
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_ALERT = re.compile(r"^[A-Z][A-Za-z0-9]+$")
_CAMEL_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SKIPPED_FILES = frozenset({"readme.md"})
# The outline (parse_outline): a level-2 ATX heading, and the opening and closing lines of a
# fenced code block, as CommonMark defines them.
_H2 = re.compile(r"^ {0,3}##(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}(?!.*`)|~{3,})")


class RunbookError(ValueError):
    """A runbook (or the runbooks folder) that cannot be used; the message says why."""


@dataclass(frozen=True)
class DiagnosisStep:
    """One command of a runbook's Diagnosis section and the sentence that introduces it."""

    command: str
    intro: str = ""


@dataclass(frozen=True)
class Runbook:
    """A parsed, validated runbook."""

    id: str
    title: str
    severity: Severity
    alerts: tuple[str, ...]
    body: str
    sections: Mapping[str, str]
    steps: tuple[DiagnosisStep, ...]
    path: Path | None = None

    @property
    def first_command(self) -> str:
        """The first fenced code block of the Diagnosis section."""
        return self.steps[0].command

    def step(self, containing: str | None = None) -> DiagnosisStep:
        """The first Diagnosis step, or the first whose command or intro mentions `containing`."""
        if containing is None:
            return self.steps[0]
        for step in self.steps:
            if containing in step.command or containing in step.intro:
                return step
        raise KeyError(f"runbook {self.id} has no Diagnosis step mentioning {containing!r}")


def _markdown() -> MarkdownIt:
    from markdown_it import MarkdownIt

    # Raw HTML in a runbook is shown as text, never passed through: the pages need no trust.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


@functools.cache
def _parser() -> MarkdownIt:
    """The parser `parse_runbook` uses (built once, on first use)."""
    return _markdown()


def _split_front_matter(text: str, where: str) -> tuple[dict[str, object], str]:
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise RunbookError(f"{where}: must start with YAML front matter between '---' lines")
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            break
    else:
        raise RunbookError(f"{where}: front matter is not closed with a '---' line")
    try:
        data = yaml.safe_load("".join(lines[1:index]))
    except yaml.YAMLError as exc:
        raise RunbookError(f"{where}: front matter is not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise RunbookError(f"{where}: front matter must be a mapping of keys")
    return data, "".join(lines[index + 1 :])


def _front_matter_problems(data: Mapping[str, object], stem: str) -> list[str]:
    problems: list[str] = []
    missing = [key for key in FRONT_MATTER_KEYS if key not in data]
    if missing:
        problems.append(f"front matter misses {', '.join(missing)}")
    unknown = sorted(str(key) for key in data if key not in FRONT_MATTER_KEYS)
    if unknown:
        problems.append(f"front matter has unknown keys {', '.join(unknown)}")
    runbook_id = data.get("id")
    if "id" in data and (not isinstance(runbook_id, str) or not _ID.match(runbook_id)):
        problems.append("id must be lower-case words joined by '-'")
    elif isinstance(runbook_id, str) and runbook_id != stem:
        problems.append(f"id {runbook_id!r} differs from the file name {stem!r}")
    alerts = data.get("alerts")
    if "alerts" in data and (
        not isinstance(alerts, list)
        or not alerts
        or not all(isinstance(a, str) and _ALERT.match(a) for a in alerts)
    ):
        problems.append("alerts must be a non-empty list of CamelCase alert names")
    if "severity" in data and data["severity"] not in set(Severity):
        problems.append(f"severity must be one of {', '.join(Severity)}")
    title = data.get("title")
    if "title" in data and (not isinstance(title, str) or not title.strip()):
        problems.append("title must be a non-empty string")
    return problems


def _sections(tokens: Sequence[Token], lines: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    headings = [
        (index, token.map[0] if token.map else 0)
        for index, token in enumerate(tokens)
        if token.type == "heading_open" and token.tag == "h2"
    ]
    sections: dict[str, str] = {}
    problems: list[str] = []
    for number, (index, line) in enumerate(headings):
        name = tokens[index + 1].content.strip()
        end = headings[number + 1][1] if number + 1 < len(headings) else len(lines)
        if name in sections:
            problems.append(f"section {name!r} appears twice")
        sections[name] = "".join(lines[line + 1 : end]).strip()
    return sections, problems


def _diagnosis_steps(tokens: Sequence[Token]) -> tuple[DiagnosisStep, ...]:
    steps: list[DiagnosisStep] = []
    inside = False
    intro = ""
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h2":
            inside = tokens[index + 1].content.strip() == "Diagnosis"
            intro = ""
        elif not inside:
            continue
        elif token.type == "inline" and tokens[index - 1].type == "paragraph_open":
            intro = token.content.strip()
        elif token.type in ("fence", "code_block") and token.content.strip():
            steps.append(DiagnosisStep(token.content.strip(), " ".join(intro.split())))
            intro = ""
    return tuple(steps)


def _outline(lines: Sequence[str]) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """The level-2 headings (line, name) and fenced code blocks (line, content) of a body,
    without a Markdown parser: headings inside a fence do not count."""
    headings: list[tuple[int, str]] = []
    fences: list[tuple[int, str]] = []
    number = 0
    while number < len(lines):
        line = lines[number].rstrip("\n")
        opening = _FENCE.match(line)
        if opening is None:
            heading = _H2.match(line)
            if heading is not None:
                headings.append((number, (heading.group(1) or "").strip()))
            number += 1
            continue
        marker = opening.group(1)
        indent = len(line) - len(line.lstrip(" "))
        closing = re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
        content: list[str] = []
        start = number
        number += 1
        while number < len(lines) and not closing.match(lines[number].rstrip("\n")):
            # CommonMark removes up to the opening fence's indentation from each line.
            text = lines[number]
            content.append(text[min(indent, len(text) - len(text.lstrip(" "))) :])
            number += 1
        fences.append((start, "".join(content)))
        number += 1
    return headings, fences


def _validate(
    data: Mapping[str, Any],
    path: Path,
    sections: Mapping[str, str],
    problems: list[str],
    steps: tuple[DiagnosisStep, ...],
    body: str,
) -> Runbook:
    """The runbook, or RunbookError with every problem (the parsers' common checks)."""
    for name in REQUIRED_SECTIONS:
        if name not in sections:
            problems.append(f"section '## {name}' is missing")
        elif not sections[name]:
            problems.append(f"section '## {name}' is empty")
    if "Diagnosis" in sections and not steps:
        problems.append("section '## Diagnosis' has no fenced code block (the first command)")
    if problems:
        raise RunbookError(f"{path.name}: " + "; ".join(problems))
    return Runbook(
        id=data["id"],
        title=data["title"].strip(),
        severity=Severity(data["severity"]),
        alerts=tuple(data["alerts"]),
        body=body.strip() + "\n",
        sections=sections,
        steps=steps,
        path=path,
    )


def parse_runbook(text: str, path: Path) -> Runbook:
    """Parse and validate one runbook; raise RunbookError naming every problem found."""
    data, body = _split_front_matter(text, path.name)
    problems = _front_matter_problems(data, path.stem)
    tokens = _parser().parse(body)
    sections, section_problems = _sections(tokens, body.splitlines(keepends=True))
    problems.extend(section_problems)
    return _validate(data, path, sections, problems, _diagnosis_steps(tokens), body)


def parse_outline(text: str, path: Path) -> Runbook:
    """`parse_runbook` without a Markdown parser, for listing: the same front matter, sections
    and problems, read from ATX `## ` headings and fenced code blocks (a heading written
    another way, or a command only in an indented block, is not seen). Its steps carry the
    commands but no introductions."""
    data, body = _split_front_matter(text, path.name)
    problems = _front_matter_problems(data, path.stem)
    lines = body.splitlines(keepends=True)
    headings, fences = _outline(lines)
    sections: dict[str, str] = {}
    for number, (line, name) in enumerate(headings):
        end = headings[number + 1][0] if number + 1 < len(headings) else len(lines)
        if name in sections:
            problems.append(f"section {name!r} appears twice")
        sections[name] = "".join(lines[line + 1 : end]).strip()
    diagnosis = [
        (line, headings[n + 1][0] if n + 1 < len(headings) else len(lines))
        for n, (line, name) in enumerate(headings)
        if name == "Diagnosis"
    ]
    steps = tuple(
        DiagnosisStep(content.strip())
        for at, content in fences
        if content.strip() and any(start < at < end for start, end in diagnosis)
    )
    return _validate(data, path, sections, problems, steps, body)


@dataclass(frozen=True)
class Catalogue:
    """Every valid runbook of a folder; `problems` lists the files that were left out and why."""

    directory: Path | None
    runbooks: Mapping[str, Runbook]
    problems: tuple[str, ...] = ()
    _by_alert: Mapping[str, Runbook] = field(default_factory=dict, repr=False)

    @classmethod
    def load(
        cls, directory: Path, parse: Callable[[str, Path], Runbook] = parse_runbook
    ) -> Catalogue:
        """Read every `*.md` in `directory` except README.md (with `parse_outline`: no
        Markdown parser, for listing)."""
        if not directory.is_dir():
            raise RunbookError(f"runbooks folder {directory} does not exist")
        found: list[Runbook] = []
        problems: list[str] = []
        for path in sorted(directory.glob("*.md")):
            if path.name.lower() in _SKIPPED_FILES:
                continue
            try:
                found.append(parse(path.read_text(encoding="utf-8"), path))
            except (RunbookError, OSError, UnicodeDecodeError) as exc:
                problems.append(str(exc))
        return cls.of(found, directory, problems)

    @classmethod
    def of(
        cls,
        runbooks: Sequence[Runbook],
        directory: Path | None = None,
        problems: Sequence[str] = (),
    ) -> Catalogue:
        """A catalogue of already parsed runbooks (duplicates become problems)."""
        by_id: dict[str, Runbook] = {}
        by_alert: dict[str, Runbook] = {}
        found = list(problems)
        for runbook in runbooks:
            if runbook.id in by_id:
                found.append(f"{runbook.id}: the id is used by two runbooks")
                continue
            by_id[runbook.id] = runbook
            for alert in runbook.alerts:
                if alert in by_alert:
                    found.append(
                        f"{runbook.id}: alert {alert} already belongs to {by_alert[alert].id}"
                    )
                else:
                    by_alert[alert] = runbook
        return cls(directory, by_id, tuple(found), by_alert)

    def get(self, runbook_id: str) -> Runbook | None:
        """The runbook with this id, if any."""
        return self.runbooks.get(runbook_id)

    def for_alert(self, alert: str) -> Runbook | None:
        """The runbook that covers this alert name, if any."""
        return self._by_alert.get(alert)

    @property
    def alerts(self) -> frozenset[str]:
        """Every alert name some runbook covers."""
        return frozenset(self._by_alert)

    def __iter__(self) -> Iterator[Runbook]:
        return iter(sorted(self.runbooks.values(), key=lambda r: r.id))

    def __len__(self) -> int:
        return len(self.runbooks)


def find_runbooks_dir(override: str | Path | None = None) -> Path:
    """The runbooks folder: `override` (OPSMON_RUNBOOKS_DIR), the clone's, or the bundled one."""
    if override:
        directory = Path(override)
        if not directory.is_dir():
            raise RunbookError(f"OPSMON_RUNBOOKS_DIR={directory} is not a folder")
        return directory
    package = Path(__file__).resolve().parent
    # A clone or an editable install: the repository's runbooks/ beside the package is the
    # one being edited. The pyproject.toml guard keeps an unrelated site-packages/runbooks out.
    clone = package.parent / "runbooks"
    if (package.parent / "pyproject.toml").is_file() and clone.is_dir():
        return clone
    if BUNDLED_DIR.is_dir():
        return BUNDLED_DIR
    raise RunbookError(f"no runbooks folder found (set OPSMON_RUNBOOKS_DIR; looked in {clone})")


def load_catalogue(override: str | Path | None = None, outline_only: bool = False) -> Catalogue:
    """The catalogue of the folder `find_runbooks_dir` picks (`outline_only`: for listing,
    without importing a Markdown parser)."""
    parse = parse_outline if outline_only else parse_runbook
    return Catalogue.load(find_runbooks_dir(override), parse)


@functools.cache
def _default_catalogue(override: str | None) -> Catalogue | None:
    try:
        return load_catalogue(override)
    except RunbookError:
        return None


def default_catalogue() -> Catalogue | None:
    """The catalogue alerts are linked and diagnosed with (loaded once; None without runbooks)."""
    from monitor.settings import Settings

    return _default_catalogue(Settings().runbooks_dir)


def runbook_id(alert: str, catalogue: Catalogue | None = None) -> str:
    """The id of the runbook for `alert` (by the catalogue, else by the naming convention)."""
    runbook = catalogue.for_alert(alert) if catalogue is not None else None
    if runbook is not None:
        return runbook.id
    return _CAMEL_BREAK.sub("-", alert).lower()


def runbook_url(config: Config, alert: str, catalogue: Catalogue | None = None) -> str:
    """The runbook link an alert carries: `runbook_url_template` with `{id}`, else
    `{public_url}/runbooks/{id}`. Every emitter of alerts builds its link here."""
    target = runbook_id(alert, catalogue if catalogue is not None else default_catalogue())
    if config.runbook_url_template:
        return config.runbook_url_template.replace("{id}", target)
    return f"{config.public_url.rstrip('/')}/runbooks/{target}"


# --- rendering ------------------------------------------------------------------------------

_STYLE = """
body{font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f24;
background:#fff}main,nav,footer{max-width:52rem;margin:0 auto;padding:0 1rem}nav{padding-top:1rem}
h1{margin:.5rem 0}h2{border-bottom:1px solid #d8dee4;padding-bottom:.2rem;margin-top:2rem}
pre{background:#f3f5f7;border:1px solid #d8dee4;border-radius:4px;padding:.7rem;overflow-x:auto;
white-space:pre-wrap;word-break:break-word}code{font:14px/1.4 ui-monospace,Menlo,Consolas,monospace}
table{border-collapse:collapse}td,th{border:1px solid #d8dee4;padding:.3rem .6rem;text-align:left}
.sev{display:inline-block;padding:0 .5rem;border-radius:3px;color:#fff;font-size:.85rem}
.critical{background:#b42318}.warning{background:#b54708}.info{background:#175cd3}
.meta{color:#57606a}footer{color:#57606a;font-size:.85rem;padding:2rem 1rem}
"""

# The pages load nothing and run nothing: a strict policy turns any slip into a no-op.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _page(title: str, content: str, nav: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<nav>{nav}</nav>\n<main>\n{content}\n</main>\n"
        "<footer>opsmon runbooks</footer>\n</body>\n</html>\n"
    )


def _severity_badge(severity: Severity) -> str:
    return f'<span class="sev {severity.value}">{html.escape(severity.value)}</span>'


def _render_body(runbook: Runbook, known_ids: frozenset[str]) -> str:
    md = _markdown()

    def code_inline(
        self: object, tokens: Sequence[Token], idx: int, options: object, env: object
    ) -> str:
        content = tokens[idx].content
        code = f"<code>{html.escape(content)}</code>"
        # `database-connection-failing` in the text is a runbook: make it a link.
        if content in known_ids and content != runbook.id:
            return f'<a href="{html.escape(content)}">{code}</a>'
        return code

    md.add_render_rule("code_inline", code_inline)
    rendered: str = md.render(runbook.body)
    return rendered


def render_html(runbook: Runbook, catalogue: Catalogue) -> str:
    """A runbook as a standalone HTML page (served at /runbooks/<id>)."""
    alerts = ", ".join(f"<code>{html.escape(a)}</code>" for a in runbook.alerts)
    content = (
        f"<h1>{html.escape(runbook.title)}</h1>\n"
        f'<p class="meta">{_severity_badge(runbook.severity)} alerts: {alerts}'
        f" &middot; id <code>{html.escape(runbook.id)}</code></p>\n"
        + _render_body(runbook, frozenset(catalogue.runbooks))
    )
    return _page(
        f"{runbook.title} - opsmon runbook", content, '<a href="../runbooks">All runbooks</a>'
    )


def render_index(catalogue: Catalogue) -> str:
    """The list of runbooks as an HTML page (served at /runbooks)."""
    rows = "\n".join(
        "<tr>"
        f'<td><a href="runbooks/{html.escape(r.id)}">{html.escape(r.title)}</a></td>'
        f"<td>{', '.join(f'<code>{html.escape(a)}</code>' for a in r.alerts)}</td>"
        f"<td>{_severity_badge(r.severity)}</td>"
        "</tr>"
        for r in catalogue
    )
    content = (
        "<h1>Runbooks</h1>\n<p>One runbook for each alert opsmon can send.</p>\n"
        "<table>\n<thead><tr><th>Runbook</th><th>Alerts</th><th>Severity</th></tr></thead>\n"
        f"<tbody>\n{rows}\n</tbody>\n</table>"
    )
    return _page("opsmon runbooks", content, "opsmon")


def render_not_found(runbook_id: str) -> str:
    """The page for an id no runbook has."""
    content = (
        f"<h1>No runbook named <code>{html.escape(runbook_id)}</code></h1>\n"
        '<p><a href="../runbooks">See every runbook.</a></p>'
    )
    return _page("Runbook not found - opsmon", content, '<a href="../runbooks">All runbooks</a>')


def render_text(runbook: Runbook) -> str:
    """A runbook for a terminal: a header, then the Markdown with code blocks indented."""
    lines = [
        f"{runbook.title} ({runbook.id})",
        f"severity: {runbook.severity.value}   alerts: {', '.join(runbook.alerts)}",
        "",
    ]
    in_fence = False
    for line in runbook.body.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            in_fence = not in_fence
            continue
        lines.append(f"    {line}" if in_fence and line else line)
    return "\n".join(lines).rstrip() + "\n"


def localize_runbook(runbook: Runbook, context: RunbookContext) -> Runbook:
    """The runbook with its commands rendered for the running config (URLs, compose file and
    project, no `logs -f`) and the escalation contacts appended."""
    return replace(
        runbook,
        body=localize(runbook.body, context) + escalation_section(context),
        steps=tuple(
            replace(step, command=localize(step.command, context)) for step in runbook.steps
        ),
    )
