"""Which services are databases: one answer for diagnosis and rollback's config validation,
from the check types that watch a database."""

from __future__ import annotations

from pathlib import Path

from monitor.checks import CHECK_TYPES
from monitor.config import load_config
from monitor.core.result import CheckResult
from monitor.core.service_kind import DATABASE_CHECK_TYPES, ServiceKind, services_of_kind
from monitor.diagnosis import Snapshot
from monitor.rollback.config import database_services

CONFIG = """
checks:
  - {name: backend-health, type: http, service: backend, url: "http://127.0.0.1:1/health"}
  - {name: backend-container, type: container, service: backend}
  - {name: store, type: postgres, service: store, dsn: "postgresql://app@127.0.0.1:1/app"}
  - {name: store-container, type: container, service: store}
  - {name: store-ping, type: http, service: store, url: "http://127.0.0.1:1/"}
  - {name: lonely, type: http, url: "http://127.0.0.1:1/"}
"""


def test_diagnosis_and_rollback_config_name_the_same_databases(tmp_path: Path) -> None:
    """A service with a postgres check is a database to both, whatever its other checks are."""
    path = tmp_path / "opsmon.yml"
    path.write_text(CONFIG)
    config = load_config(path, environ={}).config
    assert database_services(config) == {"store"}
    snapshot = Snapshot.from_results((spec, CheckResult(ok=True)) for spec in config.checks)
    assert snapshot.service_kind("store") is ServiceKind.DATABASE
    assert snapshot.service_kind("backend") is ServiceKind.APP
    assert services_of_kind(config.checks, ServiceKind.APP) == {"backend"}


def test_every_database_check_type_is_a_registered_check_type() -> None:
    """A renamed check type cannot silently make its databases look like apps (and roll back)."""
    assert set(CHECK_TYPES) >= DATABASE_CHECK_TYPES
