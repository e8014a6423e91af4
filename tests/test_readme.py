"""The README stays true: its config examples validate and its test command is what CI runs."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.cli import build_parser
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
    for name in variables:
        if name.endswith("_DSN") and name != "SENTRY_DSN":
            environ[name] = "postgresql://opsmon:example-pw@db:5432/opsmon"
    load_config(path, environ)


def test_quickstart_commands() -> None:
    """The README gives the demo command and the test command, and CI runs the same command."""
    readme = (ROOT / "README.md").read_text()
    assert "opsmon demo" in readme
    assert "bash scripts/test.sh" in readme
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def _subcommand(parser: argparse.ArgumentParser, words: list[str]) -> tuple[Any, list[str]]:
    """The parser of the longest command prefix of `words`, and the words left over."""
    while words:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subparsers or words[0] not in subparsers[0].choices:
            break
        parser, words = subparsers[0].choices[words[0]], words[1:]
    return parser, words


def readme_usages() -> list[str]:
    """Each usage in the README's command table (`list` after `opsmon silence add ...` is
    `opsmon silence list`)."""
    section = (ROOT / "README.md").read_text().split("## Command line")[1].split("\n## ")[0]
    usages = []
    for row in section.splitlines():
        if row.startswith("| `opsmon"):
            spans = re.findall(r"`([^`]+)`", row.split(" | ")[0])
            parent = " ".join(spans[0].split()[:2])
            usages += [s if s.startswith("opsmon ") else f"{parent} {s}" for s in spans]
    return usages


@pytest.mark.parametrize("usage", readme_usages())
def test_readme_usage_agrees_with_the_cli(usage: str) -> None:
    """Every option the README's command table shows exists, is optional exactly when shown in
    [brackets], and every required option of the command is shown."""
    parser, _ = _subcommand(build_parser(), usage.split()[1:])
    shown = dict.fromkeys(re.findall(r"--[a-z-]+", usage), True)
    for group in re.findall(r"\[[^\]]*\]", usage):
        shown.update(dict.fromkeys(re.findall(r"--[a-z-]+", group), False))
    actions = {o: a for a in parser._actions for o in a.option_strings}
    for option, required in shown.items():
        assert option in actions, f"{usage}: the command has no {option}"
        assert actions[option].required == required, f"{usage}: {option} required={required}"
    missing = {a.option_strings[0] for a in parser._actions if a.required and a.option_strings}
    assert missing <= set(shown), f"{usage}: required {missing - set(shown)} not shown"
