"""The SQLite state file: private, WAL, versioned per table, durable across reopen, and a file
written before the store split (one Store class holding every table) still opens."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

from monitor.alerting.store import TABLES, AlertingStore
from monitor.rollback.snapshot import Snapshot
from monitor.rollback.store import LEASE_TABLES, ROLLBACK_TABLES, open_store
from monitor.store import DB_FILE, Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOTES = {"notes": ("CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT NOT NULL)",)}


def test_state_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    """The database and its WAL files are readable by the owner only (they hold alert text)."""
    store = Store.open(tmp_path / "state", NOTES)
    store.connection.execute("INSERT INTO notes VALUES ('n1', 'secret text')")
    files = [p for p in (tmp_path / "state").iterdir() if p.name.startswith(DB_FILE)]
    assert {p.name for p in files} >= {DB_FILE, f"{DB_FILE}-wal"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    with contextlib.closing(sqlite3.connect(tmp_path / "state" / DB_FILE)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_a_new_table_step_migrates_only_that_table(tmp_path: Path) -> None:
    """A later feature adds its own table (or a step to it) without touching existing data."""
    first = Store.open(tmp_path, NOTES)
    first.connection.execute("INSERT INTO notes VALUES ('n1', 'kept')")
    first.close()
    tables = {
        **NOTES,
        "deploys": (
            "CREATE TABLE deploys (id TEXT PRIMARY KEY)",
            "ALTER TABLE deploys ADD COLUMN image TEXT",
        ),
    }
    store = Store.open(tmp_path, tables)
    assert store.schema_version("deploys") == 2
    assert store.schema_version("notes") == 1
    assert store.connection.execute("SELECT body FROM notes").fetchall()[0][0] == "kept"
    store.close()
    # Opening again applies nothing twice.
    Store.open(tmp_path, tables).close()


def test_subsystems_keep_their_own_tables_on_one_file(tmp_path: Path) -> None:
    """Alerting and rollback each migrate only their tables, side by side in the same file."""
    alerting = AlertingStore.open(tmp_path)
    rollback = open_store(tmp_path)
    assert alerting.path == rollback.path == tmp_path / DB_FILE
    with contextlib.closing(sqlite3.connect(tmp_path / DB_FILE)) as db:
        names = {row[0] for row in db.execute("SELECT name FROM schema_versions")}
    assert {"incidents", "outbox", "silences", "rollback_lkg", "rollbacks"} <= names
    alerting.close()
    rollback.close()


# The schema as the code before the split (one `Store` class) wrote it: copied verbatim.
PRE_SPLIT_SCHEMA = {
    "incidents": (
        """CREATE TABLE incidents (
            id TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            status TEXT NOT NULL,
            alertname TEXT NOT NULL,
            severity TEXT NOT NULL,
            summary TEXT NOT NULL,
            description TEXT NOT NULL,
            runbook_url TEXT NOT NULL,
            labels TEXT NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL,
            notified TEXT,
            suppressed TEXT
        );
        CREATE INDEX incidents_by_status ON incidents (status, notified);
        CREATE INDEX incidents_by_source ON incidents (source, status);""",
    ),
    "alert_groups": (
        """CREATE TABLE alert_groups (
            key TEXT PRIMARY KEY,
            last_flush_at REAL,
            channel_sent TEXT NOT NULL DEFAULT '{}'
        );""",
    ),
    "outbox": (
        """CREATE TABLE outbox (
            id TEXT PRIMARY KEY,
            channel TEXT NOT NULL,
            group_key TEXT NOT NULL,
            payload TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            next_attempt_at REAL NOT NULL,
            last_error TEXT,
            finished_at REAL,
            seq INTEGER NOT NULL
        );
        CREATE INDEX outbox_pending ON outbox (state, channel, group_key, seq);""",
    ),
    "silences": (
        """CREATE TABLE silences (
            id TEXT PRIMARY KEY,
            matchers TEXT NOT NULL,
            starts_at REAL NOT NULL,
            ends_at REAL NOT NULL,
            comment TEXT NOT NULL DEFAULT '',
            created_by TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL
        );""",
    ),
    "rollback_deploys": (
        """CREATE TABLE rollback_deploys (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            service TEXT NOT NULL,
            project TEXT NOT NULL,
            container_id TEXT NOT NULL,
            container_name TEXT NOT NULL,
            image TEXT NOT NULL,
            image_id TEXT NOT NULL,
            origin TEXT NOT NULL,
            started_at REAL NOT NULL,
            ever_healthy INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'new',
            promoted_at REAL,
            UNIQUE (service, container_id)
        );
        CREATE INDEX rollback_deploys_by_service ON rollback_deploys (service, id);""",
    ),
    "rollback_lkg": (
        """CREATE TABLE rollback_lkg (
            service TEXT PRIMARY KEY,
            project TEXT NOT NULL,
            image TEXT NOT NULL,
            image_id TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            promoted_at REAL NOT NULL
        );""",
    ),
    "rollback_bad_images": (
        """CREATE TABLE rollback_bad_images (
            service TEXT NOT NULL,
            image_id TEXT NOT NULL,
            image TEXT NOT NULL,
            marked_at REAL NOT NULL,
            reason TEXT NOT NULL,
            PRIMARY KEY (service, image_id)
        );""",
    ),
    "rollback_freezes": (
        """CREATE TABLE rollback_freezes (
            service TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            since REAL NOT NULL
        );""",
    ),
    "rollbacks": (
        """CREATE TABLE rollbacks (
            id TEXT PRIMARY KEY,
            service TEXT NOT NULL,
            project TEXT NOT NULL,
            strategy TEXT NOT NULL,
            trigger TEXT NOT NULL,
            status TEXT NOT NULL,
            step TEXT NOT NULL,
            bad_image TEXT NOT NULL,
            bad_image_id TEXT NOT NULL,
            target_image TEXT NOT NULL,
            target_image_id TEXT NOT NULL,
            target_tag TEXT NOT NULL DEFAULT '',
            old_container_id TEXT NOT NULL,
            old_name TEXT NOT NULL,
            old_was_running INTEGER NOT NULL,
            failed_name TEXT NOT NULL,
            new_container_id TEXT,
            snapshot TEXT,
            reason TEXT NOT NULL,
            evidence TEXT NOT NULL,
            outcome TEXT NOT NULL DEFAULT '',
            output TEXT NOT NULL DEFAULT '',
            owner TEXT NOT NULL,
            started_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            verify_deadline REAL,
            finished_at REAL
        );
        CREATE INDEX rollbacks_by_service ON rollbacks (service, started_at);
        CREATE UNIQUE INDEX rollbacks_one_in_flight ON rollbacks (service)
            WHERE status IN ('in_progress', 'verifying');""",
        """CREATE TABLE rollback_steps (
            rollback_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            step TEXT NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (rollback_id, seq)
        );""",
    ),
}


def _write_pre_split_state(state_dir: Path, snapshot: Snapshot) -> None:
    """A state file as today's daemon and CLI leave it: every table, an open incident, a
    silence and a last known good image."""
    state_dir.mkdir()
    db = sqlite3.connect(state_dir / DB_FILE, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE schema_versions (name TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    for name, steps in PRE_SPLIT_SCHEMA.items():
        for step in steps:
            db.executescript(step)
        db.execute("INSERT INTO schema_versions VALUES (?, ?)", (name, len(steps)))
    labels = {"alertname": "HealthCheckFailing", "check": "backend-health"}
    db.execute(
        "INSERT INTO incidents (id, source, status, alertname, severity, summary, description,"
        " runbook_url, labels, started_at, notified) VALUES"
        " ('i1', 'backend-health', 'firing', 'HealthCheckFailing', 'critical', 'down', 'd',"
        " 'http://x/runbooks/health-check-failing', ?, ?, 'firing')",
        (json.dumps(labels), T0.timestamp()),
    )
    db.execute(
        "INSERT INTO silences VALUES ('s1', ?, ?, ?, 'deploy', 'ana', ?)",
        (json.dumps({"service": "backend"}), T0.timestamp(), T0.timestamp() + 7200, 0.0),
    )
    db.execute(
        "INSERT INTO rollback_lkg VALUES ('backend', 'shop', ?, ?, ?, ?)",
        (snapshot.image, snapshot.image_id, snapshot.to_json(), T0.timestamp()),
    )
    db.close()


def test_a_state_file_from_before_the_split_keeps_its_records(tmp_path: Path) -> None:
    """Incidents, silences and the last known good written by the single-Store code are read
    back by the per-subsystem stores, and nothing is migrated twice."""
    snapshot = Snapshot("c1", "shop-backend-1", "shop/backend:v1", "sha256:aa", {}, {}, {})
    _write_pre_split_state(tmp_path / "state", snapshot)

    alerting = AlertingStore.open(tmp_path / "state")
    assert [(i.id, i.status.value, i.summary) for i in alerting.live_incidents()] == [
        ("i1", "firing", "down")
    ]
    assert alerting.open_incident("backend-health") is not None
    assert [(s.id, dict(s.matchers)) for s in alerting.silences()] == [
        ("s1", {"service": "backend"})
    ]
    rollback = open_store(tmp_path / "state")
    lkg = rollback.lkg("backend")
    assert lkg is not None
    assert (lkg.image, lkg.snapshot) == ("shop/backend:v1", snapshot)
    versions = dict(rollback.db.execute("SELECT name, version FROM schema_versions").fetchall())
    # Nothing ran twice; steps and tables added since (the acknowledgement columns, the
    # rollback lease, other instances' incidents) ran once.
    expected = {name: len(steps) for name, steps in PRE_SPLIT_SCHEMA.items()}
    added = {
        name: len(steps)
        for name, steps in (LEASE_TABLES | ROLLBACK_TABLES).items()
        if name not in PRE_SPLIT_SCHEMA
    }
    new_tables = {name: len(steps) for name, steps in TABLES.items() if name not in expected}
    assert versions == expected | added | new_tables | {"incidents": len(TABLES["incidents"])}
    assert alerting.incident("i1") is not None and alerting.incident("i1").acked_by is None
    alerting.close()
    rollback.close()
