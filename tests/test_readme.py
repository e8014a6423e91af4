"""The README stays true: its config examples validate and its test command is what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from monitor.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REFERENCE = ROOT / "config" / "opsmon.yml"


def yaml_blocks() -> list[tuple[str, str]]:
    """The YAML blocks that are opsmon config (their top-level keys are config keys); blocks of
    other tools (compose files, Prometheus) and fragments of a check are left out."""
    blocks = []
    for doc in DOCS:
        for index, block in enumerate(re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S)):
            data = yaml.safe_load(block)
            if isinstance(data, dict) and set(data) & set(Config.model_fields):
                blocks.append((f"{doc.name}#{index}", block))
    return blocks


@pytest.mark.parametrize(("where", "block"), yaml_blocks(), ids=[w for w, _ in yaml_blocks()])
def test_yaml_examples_validate(tmp_path: Path, where: str, block: str) -> None:
    """Every opsmon YAML example in the README and docs/ is valid: a whole config by itself, a
    section (no `checks`) added to the reference config."""
    data = yaml.safe_load(block)
    if "checks" not in data:
        data = {**yaml.safe_load(REFERENCE.read_text()), **data}
    path = tmp_path / "example.yml"
    path.write_text(yaml.safe_dump(data))
    variables = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", path.read_text()))
    environ = {
        name: f"https://example.invalid/{name.lower()}"
        if "URL" in name
        else f"example-value-for-{name.lower()}"
        for name in variables
    }
    environ["DATABASE_URL"] = "postgresql://app:example-pw@db:5432/app"
    load_config(path, environ)


def test_quickstart_commands() -> None:
    """The README gives the demo command and the test command, and CI runs the same command."""
    readme = (ROOT / "README.md").read_text()
    assert "opsmon demo" in readme
    assert "bash scripts/test.sh" in readme
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
