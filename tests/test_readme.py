"""The README stays true: its config examples validate and its test command is what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.config import load_config

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# YAML blocks of other tools (compose files, Prometheus, Alertmanager) start with `# file: ...`.
OTHER_TOOL = re.compile(r"^#\s*file:", re.I)


def yaml_blocks() -> list[tuple[str, str]]:
    blocks = []
    for doc in DOCS:
        if not doc.exists():
            continue
        for index, block in enumerate(re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S)):
            if not OTHER_TOOL.match(block):
                blocks.append((f"{doc.name}#{index}", block))
    return blocks


@pytest.mark.parametrize(("where", "block"), yaml_blocks(), ids=[w for w, _ in yaml_blocks()])
def test_yaml_examples_validate(tmp_path: Path, where: str, block: str) -> None:
    """Every opsmon YAML example in the README and docs/ is a valid config."""
    path = tmp_path / "example.yml"
    path.write_text(block)
    variables = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", block))
    environ = {name: f"example-value-for-{name.lower()}" for name in variables}
    if "DATABASE_URL" in environ:
        environ["DATABASE_URL"] = "postgresql://app:example-pw@db:5432/app"
    load_config(path, environ)


def test_quickstart_commands() -> None:
    """The README gives the demo command and the test command, and CI runs the same command."""
    readme = (ROOT / "README.md").read_text()
    assert "opsmon demo" in readme
    assert "bash scripts/test.sh" in readme
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
