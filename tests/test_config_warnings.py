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


def test_sharding_with_rollback_is_warned_about(tmp_path: Path) -> None:
    """Sharding and rollback together: a warning that the leader judges only its own checks;
    sharding alone is no reason to warn."""
    path = tmp_path / "opsmon.yml"
    base = (
        "checks:\n  - {name: web, type: http, service: web, url: 'http://127.0.0.1:9/'}\n"
        "cluster:\n  store: 'postgresql://u:p@127.0.0.1/db'\n  sharding: true\n"
    )
    path.write_text(base)
    assert config_warnings(load_config(path, {}).config) == []
    path.write_text(base + "rollback:\n  services:\n    web: {project: shop}\n")
    (warning,) = config_warnings(load_config(path, {}).config)
    assert warning.startswith("cluster.sharding with rollback: the leader judges a service only")
