"""The `rollback:` config section: defaults as documented, and clear errors with file, line
and key for what cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config
from monitor.rollback.config import Mode, Strategy, service_projects

CHECKS = """
checks:
  - {name: backend-health, type: http, service: backend, url: "http://127.0.0.1:1/health"}
  - {name: backend-container, type: container, service: backend, project: shop}
  - {name: database, type: postgres, service: db, dsn: "postgresql://app@127.0.0.1:1/app"}
"""


def load(tmp_path: Path, rollback: str, checks: str = CHECKS) -> object:
    """Load a config made of the checks and a rollback section."""
    path = tmp_path / "opsmon.yml"
    path.write_text(checks + rollback)
    return load_config(path, environ={})


def problems(tmp_path: Path, rollback: str, checks: str = CHECKS) -> list[str]:
    """The problems a config has, as printed."""
    with pytest.raises(ConfigError) as error:
        load(tmp_path, rollback, checks)
    return [str(p) for p in error.value.problems]


def test_design_example_validates_with_documented_defaults(tmp_path: Path) -> None:
    """The section from DESIGN.md loads; unset keys take the documented defaults."""
    loaded = load(
        tmp_path,
        """
rollback:
  mode: dry_run
  stable_after: 2m
  window: 15m
  max_per_hour: 1
  services:
    backend: {strategy: recreate}
""",
    )
    rollback = loaded.config.rollback  # type: ignore[attr-defined]
    assert rollback.mode is Mode.DRY_RUN
    assert (rollback.stable_after, rollback.window, rollback.verify_timeout) == (120, 900, 300)
    assert rollback.services["backend"].strategy is Strategy.RECREATE
    assert service_projects(loaded.config) == {"backend": "shop"}  # type: ignore[attr-defined]
    empty = load(tmp_path, "rollback: {}\n").config.rollback  # type: ignore[attr-defined]
    assert empty.mode is Mode.DRY_RUN and empty.max_per_hour == 1 and not empty.services


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "rollback:\n  services:\n    db: {strategy: recreate}\n",
            "rollback.services.db: 'db' looks like a database: a database is never rolled back",
        ),
        (
            "rollback:\n  services:\n    pgmain: {}\n",
            "rollback.services.pgmain: no check has `service: pgmain`",
        ),
        (
            "rollback:\n  services:\n    backend: {strategy: command}\n",
            "rollback.services.backend: strategy `command` needs a `command`",
        ),
        (
            "rollback:\n  services:\n    backend: {strategy: command, command: 'up {sha}'}\n",
            "unknown placeholder {sha} (known: {bad_image}, {lkg_image}, {lkg_tag}, {project}, "
            "{service})",
        ),
        ("rollback:\n  mode: yolo\n", "rollback.mode: Input should be 'dry_run' or 'enforce'"),
        ("rollback:\n  window: soon\n", "rollback.window: invalid duration 'soon'"),
        ("rollback:\n  max_per_hour: -1\n", "rollback.max_per_hour: must be >= 0"),
        ("rollback:\n  rollback_everything: true\n", "rollback.rollback_everything: unknown key"),
    ],
)
def test_bad_sections_are_rejected_with_the_reason(
    tmp_path: Path, section: str, expected: str
) -> None:
    """Each mistake is reported with the file, the line and the key."""
    found = problems(tmp_path, section)
    assert any(expected in p for p in found), found
    assert all(p.startswith(str(tmp_path / "opsmon.yml") + ":") for p in found)


def test_service_of_a_postgres_check_is_never_rolled_back(tmp_path: Path) -> None:
    """A database service whatever its name: the service of a postgres check is refused."""
    checks = CHECKS.replace("service: db,", "service: store,")
    checks += '  - {name: store-ping, type: http, service: store, url: "http://127.0.0.1:1/"}\n'
    found = problems(tmp_path, "rollback:\n  services:\n    store: {}\n", checks)
    assert any("'store' is the service of a postgres check" in p for p in found), found


def test_a_service_without_a_compose_project_is_refused(tmp_path: Path) -> None:
    """Rollback needs an unambiguous selection before any write: a service selected by name
    alone (another project on a shared engine may have one too) is a config error; a project
    on its container check or under rollback.services makes it valid."""
    bare = CHECKS.replace(", project: shop", "")
    found = problems(tmp_path, "rollback:\n  services:\n    backend: {}\n", bare)
    assert any("rollback.services.backend: no Compose project for 'backend'" in p for p in found), (
        found
    )
    named = load(tmp_path, "rollback:\n  services:\n    backend: {project: shop}\n", bare)
    assert service_projects(named.config) == {"backend": "shop"}  # type: ignore[attr-defined]
