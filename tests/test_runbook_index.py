"""`runbooks/README.md` lists every runbook: its table is generated from the front matter and a
stale index fails here."""

from __future__ import annotations

import re
from pathlib import Path

from monitor.runbook_index import BEGIN, END, updated_readme
from monitor.runbooks import Catalogue
from tests.support.cli import run_opsmon

REPO = Path(__file__).resolve().parent.parent
RUNBOOKS = REPO / "runbooks"
SAMPLE = """---
id: {id}
alerts: [{alert}]
severity: warning
title: {title}
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


def write_runbook(folder: Path, runbook_id: str, alert: str, title: str) -> None:
    """A valid runbook file in `folder`."""
    text = SAMPLE.format(id=runbook_id, alert=alert, title=title)
    (folder / f"{runbook_id}.md").write_text(text)


def test_repository_index_is_up_to_date() -> None:
    """runbooks/README.md is exactly what `opsmon runbooks index --write` makes of the runbooks
    (if this fails, run that command and commit the result)."""
    current = (RUNBOOKS / "README.md").read_text(encoding="utf-8")
    assert current == updated_readme(current, Catalogue.load(RUNBOOKS)), (
        "runbooks/README.md is stale: run `opsmon runbooks index --write`"
    )


def test_repository_index_links_every_runbook_file() -> None:
    """Every runbook file appears in the index, linked, with its alert names."""
    index = (RUNBOOKS / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([a-z0-9-]+)\.md\)", index))
    files = {p.stem for p in RUNBOOKS.glob("*.md") if p.name != "README.md"}
    assert linked == files
    for runbook in Catalogue.load(RUNBOOKS):
        assert f"| [{runbook.id}]({runbook.id}.md) | {', '.join(runbook.alerts)} |" in index


def test_cli_check_write_and_keep_the_hand_written_text(tmp_path: Path) -> None:
    """`runbooks index --check` exits 1 when a runbook is missing from the index; `--write`
    adds it (keeping the text around the table) and `--check` then passes; a new folder
    without README gets one."""
    env = {"OPSMON_RUNBOOKS_DIR": str(tmp_path)}
    write_runbook(tmp_path, "disk-full", "DiskFull", "Disk is full")
    fresh = run_opsmon("runbooks", "index", "--check", env=env)
    assert fresh.returncode == 1 and "run `opsmon runbooks index --write`" in fresh.stderr
    assert run_opsmon("runbooks", "index", "--write", env=env).returncode == 0
    readme = tmp_path / "README.md"
    readme.write_text(readme.read_text() + "\n## Conventions\n\nOur own words.\n")
    assert run_opsmon("runbooks", "index", "--check", env=env).returncode == 0

    write_runbook(tmp_path, "queue-stuck", "QueueStuck", "Queue | stuck")
    stale = run_opsmon("runbooks", "index", "--check", env=env)
    assert stale.returncode == 1, stale.stdout
    printed = run_opsmon("runbooks", "index", env=env)
    assert printed.returncode == 0 and readme.read_text() != printed.stdout
    assert run_opsmon("runbooks", "index", "--write", env=env).returncode == 0
    text = readme.read_text()
    assert text == printed.stdout
    assert "| [queue-stuck](queue-stuck.md) | QueueStuck | warning | Queue \\| stuck |" in text
    assert "| [disk-full](disk-full.md) | DiskFull | warning | Disk is full |" in text
    assert text.index(BEGIN) < text.index(END) < text.index("Our own words.")
    assert run_opsmon("runbooks", "index", "--check", env=env).returncode == 0


def test_cli_refuses_to_index_invalid_runbooks(tmp_path: Path) -> None:
    """An invalid runbook is named and nothing is written (exit 2)."""
    (tmp_path / "broken.md").write_text("no front matter\n")
    done = run_opsmon("runbooks", "index", "--write", env={"OPSMON_RUNBOOKS_DIR": str(tmp_path)})
    assert done.returncode == 2
    assert "invalid runbook:" in done.stderr and "broken.md" in done.stderr
    assert not (tmp_path / "README.md").exists()
