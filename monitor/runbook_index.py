"""`opsmon runbooks index`: the table of `runbooks/README.md`, generated from each runbook's
front matter, so the index cannot miss a runbook (`--check` fails when it is stale)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Imported when a command runs: `opsmon --help` need not load the Markdown parser.
    from monitor.runbooks import Catalogue

BEGIN = (
    "<!-- Generated from each runbook's front matter by `opsmon runbooks index --write`;"
    " edit the runbooks, not this table. -->"
)
END = "<!-- End of the generated index. -->"
EXIT_OK, EXIT_STALE, EXIT_INVALID = 0, 1, 2


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_table(catalogue: Catalogue) -> str:
    """The Markdown table of every runbook, by id: link, alerts, severity, title."""
    lines = ["| id | alerts | severity | title |", "| --- | --- | --- | --- |"]
    lines += [
        f"| [{r.id}]({r.id}.md) | {', '.join(r.alerts)} | {r.severity.value} | {_cell(r.title)} |"
        for r in catalogue
    ]
    return "\n".join(lines)


def updated_readme(current: str | None, catalogue: Catalogue) -> str:
    """`current` with the generated table between its markers (a new index when there is no
    README or no markers yet: the text around the markers is kept as written)."""
    block = f"{BEGIN}\n\n{render_table(catalogue)}\n\n{END}"
    if current is None:
        return f"# Runbooks\n\nOne runbook for each alert opsmon can send.\n\n{block}\n"
    start, end = current.find(BEGIN), current.find(END)
    if start < 0 or end < start:
        return f"{current.rstrip()}\n\n{block}\n"
    return current[:start] + block + current[end + len(END) :]


def cmd_runbooks_index(args: argparse.Namespace) -> int:
    """Print the regenerated README.md of the runbooks folder, `--write` it, or `--check` it."""
    from monitor.runbooks import Catalogue, RunbookError, find_runbooks_dir
    from monitor.settings import Settings

    try:
        directory = find_runbooks_dir(Settings().runbooks_dir)
        catalogue = Catalogue.load(directory)
    except RunbookError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INVALID
    if catalogue.problems:
        for problem in catalogue.problems:
            print(f"invalid runbook: {problem}", file=sys.stderr)
        return EXIT_INVALID
    readme = directory / "README.md"
    current = readme.read_text(encoding="utf-8") if readme.is_file() else None
    fresh = updated_readme(current, catalogue)
    if args.check:
        if fresh != current:
            print(
                f"{readme} is out of date with the runbooks: run `opsmon runbooks index --write`",
                file=sys.stderr,
            )
            return EXIT_STALE
        print(f"{readme}: up to date ({len(catalogue)} runbooks)")
    elif args.write:
        if fresh != current:
            Path(readme).write_text(fresh, encoding="utf-8")
        print(f"{readme}: {len(catalogue)} runbooks")
    else:
        print(fresh, end="")
    return EXIT_OK


def add_index_command(runbook_commands: Any) -> None:
    """Register `runbooks index [--write | --check]`."""
    index = runbook_commands.add_parser(
        "index",
        help="regenerate the runbooks folder's README.md index from the runbooks",
        description="Print the runbooks folder's README.md with its index table regenerated"
        " from each runbook's front matter; --write saves it, --check exits 1 if it is stale.",
    )
    mode = index.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write README.md")
    mode.add_argument("--check", action="store_true", help="exit 1 if README.md is stale")
    index.set_defaults(func=cmd_runbooks_index)
