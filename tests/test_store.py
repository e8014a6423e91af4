"""The SQLite state file: private, WAL, versioned per table, and durable across reopen."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

from monitor.alerting.model import Incident, Notification, Reason, Silence, Status
from monitor.store import DB_FILE, TABLES, Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _incident(source: str = "backend-health") -> Incident:
    return Incident(
        id="i1",
        source=source,
        alertname="HealthCheckFailing",
        severity="critical",
        summary="s",
        description="d",
        runbook_url="http://x/runbooks/health-check-failing",
        labels={"alertname": "HealthCheckFailing", "check": source},
        started_at=T0,
    )


def test_state_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    """The database and its WAL files are readable by the owner only (they hold alert text)."""
    store = Store.open(tmp_path / "state")
    store.add_incident(_incident())
    files = [p for p in (tmp_path / "state").iterdir() if p.name.startswith(DB_FILE)]
    assert {p.name for p in files} >= {DB_FILE, f"{DB_FILE}-wal"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    mode = sqlite3.connect(tmp_path / "state" / DB_FILE).execute("PRAGMA journal_mode").fetchone()
    assert mode[0] == "wal"
    store.close()


def test_records_survive_reopening(tmp_path: Path) -> None:
    """Incidents, pending notifications and silences are still there after a reopen."""
    store = Store.open(tmp_path)
    store.add_incident(_incident())
    notification = Notification(
        "n1", "hooks", "g", {}, Status.FIRING, Reason.NEW, (), T0, "http://x"
    )
    store.enqueue(notification)
    store.add_silence(Silence("s1", {"service": "backend"}, T0, T0.replace(hour=11)))
    store.close()
    again = Store.open(tmp_path)
    assert [i.id for i in again.live_incidents()] == ["i1"]
    assert [e.id for e in again.pending()] == ["n1"]
    assert [s.id for s in again.silences()] == ["s1"]
    again.close()


def test_a_new_table_step_migrates_only_that_table(tmp_path: Path) -> None:
    """A later feature adds its own table (or a step to it) without touching existing data."""
    Store.open(tmp_path).close()
    tables = {
        **TABLES,
        "deploys": (
            "CREATE TABLE deploys (id TEXT PRIMARY KEY)",
            "ALTER TABLE deploys ADD COLUMN image TEXT",
        ),
    }
    store = Store.open(tmp_path, tables)
    assert store.schema_version("deploys") == 2
    assert store.schema_version("incidents") == len(TABLES["incidents"])
    store.close()
    # Opening again applies nothing twice.
    Store.open(tmp_path, tables).close()


def test_expiring_a_silence_ends_it_now(tmp_path: Path) -> None:
    """`expire` ends an active or pending silence; an unknown or ended one reports False."""
    store = Store.open(tmp_path)
    store.add_silence(Silence("s1", {"service": "a"}, T0, T0.replace(hour=12)))
    store.add_silence(Silence("s2", {"service": "b"}, T0.replace(hour=11), T0.replace(hour=12)))
    now = T0.replace(hour=10)
    assert store.expire_silence("s1", now)
    assert store.expire_silence("s2", now)
    assert not store.expire_silence("s1", now.replace(minute=5))
    assert not store.expire_silence("nope", now)
    assert [s.state(now) for s in store.silences()] == ["expired", "expired"]
    store.close()


def test_resolved_incidents_can_be_kept_longer_than_notifications(tmp_path: Path) -> None:
    """`prune` keeps resolved incidents until their own cutoff (the status page shows 90 days)."""
    store = Store.open(tmp_path)
    store.add_incident(_incident())
    store.resolve_incident("i1", T0)
    store.prune(T0.replace(day=20), incidents_before=T0.replace(day=1))
    assert store.incident("i1") is not None
    store.prune(T0.replace(day=20))
    assert store.incident("i1") is None
    store.close()
