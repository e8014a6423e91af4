"""Warnings about valid configs that watch nothing."""

from __future__ import annotations

from pathlib import Path

from monitor.config import Config, load_config
from monitor.config_warnings import config_warnings


def test_nothing_to_watch_is_warned_about() -> None:
    """A config with no checks and no container discovery gets a warning that says so."""
    (warning,) = config_warnings(Config())
    assert "nothing will be watched" in warning


def test_discovery_or_checks_are_something_to_watch(tmp_path: Path) -> None:
    """Container discovery alone, or any check, is something to watch: no warning."""
    assert config_warnings(Config.model_validate({"docker": {"discovery": True}})) == []
    path = tmp_path / "opsmon.yml"
    path.write_text("checks:\n  - {name: a, type: http, url: 'http://127.0.0.1:9/'}\n")
    assert config_warnings(load_config(path, {}).config) == []
