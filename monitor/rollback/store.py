"""Rollback's durable state, in the daemon's SQLite file (monitor/store.py: same WAL, 0600 and
migration rules): deploys per service, the last known good image with its snapshot, bad
images, freezes, and the rollback journal (monitor/rollback/journal.py). Rollback owns these
tables and their schema steps; `RollbackStore` wraps the plumbing's `Store`."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from monitor.resilient_db import ResilientConnection, StoreHealth
from monitor.rollback.snapshot import Snapshot
from monitor.store import Store

ROLLBACK_TABLES: dict[str, tuple[str, ...]] = {
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
    # An unfreeze, kept so that it reaches the other cluster instances (and a freeze they
    # share is not adopted again): it lifts every freeze of the service since `upto` or older.
    "rollback_freeze_lifts": (
        """CREATE TABLE rollback_freeze_lifts (
            service TEXT NOT NULL,
            upto REAL NOT NULL,
            lifted_at REAL NOT NULL,
            PRIMARY KEY (service, upto)
        );""",
    ),
    # Rollbacks other cluster instances carried out (monitor/cluster/guard_sync.py): history
    # for max_per_hour only. Kept apart from `rollbacks` so that crash recovery, which resumes
    # in-flight rows of `rollbacks`, can never take one of them for its own.
    "rollback_peer_runs": (
        """CREATE TABLE rollback_peer_runs (
            id TEXT PRIMARY KEY,
            service TEXT NOT NULL,
            instance TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL,
            bad_image TEXT NOT NULL,
            target_image TEXT NOT NULL
        );
        CREATE INDEX rollback_peer_runs_by_service ON rollback_peer_runs (service, started_at);""",
    ),
}

# Who owns a service's rollback (monitor/rollback/lease.py), and what each deploy gate
# decided (for the gates that waited for it).
LEASE_TABLES: dict[str, tuple[str, ...]] = {
    "rollback_leases": (
        """CREATE TABLE rollback_leases (
            service TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            kind TEXT NOT NULL,
            run TEXT NOT NULL,
            acquired_at REAL NOT NULL,
            expires_at REAL NOT NULL
        );""",
    ),
    "rollback_gate_runs": (
        """CREATE TABLE rollback_gate_runs (
            id TEXT PRIMARY KEY,
            service TEXT NOT NULL,
            owner TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL,
            verdict TEXT,
            report TEXT
        );
        CREATE INDEX rollback_gate_runs_by_service ON rollback_gate_runs (service, started_at);""",
    ),
}


def ts(value: datetime) -> float:
    """A datetime as stored (Unix seconds)."""
    return value.timestamp()


def dt(value: float | None) -> datetime | None:
    """A stored time as a UTC datetime."""
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _at(value: float) -> datetime:
    """A stored time (never null) as a UTC datetime."""
    return datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True)
class Deploy:
    """A container of a service, as first seen running a given image."""

    id: int
    service: str
    project: str
    container_id: str
    container_name: str
    image: str
    image_id: str
    origin: str  # deploy | rollback
    started_at: datetime
    ever_healthy: bool
    status: str  # new | lkg | bad | replaced
    promoted_at: datetime | None


@dataclass(frozen=True)
class LastKnownGood:
    """The last image that ran healthy for `stable_after`, and how its container was made."""

    service: str
    project: str
    image: str
    image_id: str
    snapshot: Snapshot
    promoted_at: datetime


@dataclass(frozen=True)
class BadImage:
    """An image that was rolled back away from; it is never promoted."""

    service: str
    image_id: str
    image: str
    marked_at: datetime
    reason: str


@dataclass(frozen=True)
class Freeze:
    """Automation is off for a service until `opsmon rollback unfreeze`."""

    service: str
    reason: str
    since: datetime


@dataclass(frozen=True)
class FreezeLift:
    """An unfreeze: it lifted every freeze of `service` made at `upto` or earlier."""

    service: str
    upto: datetime
    lifted_at: datetime


@dataclass(frozen=True)
class PeerRun:
    """A rollback another cluster instance carried out (counts against max_per_hour)."""

    id: str
    service: str
    instance: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    bad_image: str
    target_image: str


class RollbackStore:
    """Rollback's tables on a `Store` (the SQLite file); explicit methods per kind of record."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._db = store.connection

    @property
    def path(self) -> Path:
        """The database file."""
        return self._store.path

    def close(self) -> None:
        """Close the connection."""
        self._store.close()

    def transaction(self) -> AbstractContextManager[None]:
        """Everything inside commits together or not at all (see `Store.transaction`)."""
        return self._store.transaction()

    @property
    def db(self) -> ResilientConnection:
        """The connection (for the journal, which shares this file)."""
        return self._db

    # --- deploys ----------------------------------------------------------------------------
    def record_deploy(
        self,
        service: str,
        project: str,
        container_id: str,
        container_name: str,
        image: str,
        image_id: str,
        origin: str,
        started_at: datetime,
    ) -> Deploy:
        """Record a container of `service` (once per container); return its record."""
        with self.transaction():
            existing = self.deploy_of(service, container_id)
            if existing is not None:
                return existing
            self._db.execute(
                "UPDATE rollback_deploys SET status = 'replaced'"
                " WHERE service = ? AND status = 'new'",
                (service,),
            )
            self._db.execute(
                "INSERT INTO rollback_deploys (service, project, container_id, container_name,"
                " image, image_id, origin, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    service,
                    project,
                    container_id,
                    container_name,
                    image,
                    image_id,
                    origin,
                    ts(started_at),
                ),
            )
        deploy = self.deploy_of(service, container_id)
        assert deploy is not None
        return deploy

    def deploy_of(self, service: str, container_id: str) -> Deploy | None:
        """The record of one container of `service`."""
        row = self._db.execute(
            "SELECT * FROM rollback_deploys WHERE service = ? AND container_id = ?",
            (service, container_id),
        ).fetchone()
        return self._deploy(row) if row else None

    def latest_deploy(self, service: str) -> Deploy | None:
        """The newest container recorded for `service`."""
        row = self._db.execute(
            "SELECT * FROM rollback_deploys WHERE service = ? ORDER BY id DESC LIMIT 1",
            (service,),
        ).fetchone()
        return self._deploy(row) if row else None

    def deploys(self, service: str, limit: int = 20) -> list[Deploy]:
        """The newest deploys of `service`, newest first."""
        rows = self._db.execute(
            "SELECT * FROM rollback_deploys WHERE service = ? ORDER BY id DESC LIMIT ?",
            (service, limit),
        ).fetchall()
        return [self._deploy(r) for r in rows]

    def mark_healthy(self, deploy_id: int) -> None:
        """The deploy was healthy at least once (so it did become healthy)."""
        self._db.execute("UPDATE rollback_deploys SET ever_healthy = 1 WHERE id = ?", (deploy_id,))

    def set_deploy_status(self, deploy_id: int, status: str, at: datetime | None = None) -> None:
        """`lkg` (with when), `bad` or `replaced`."""
        self._db.execute(
            "UPDATE rollback_deploys SET status = ?, promoted_at = coalesce(?, promoted_at)"
            " WHERE id = ?",
            (status, ts(at) if at else None, deploy_id),
        )

    @staticmethod
    def _deploy(row: sqlite3.Row) -> Deploy:
        return Deploy(
            id=row["id"],
            service=row["service"],
            project=row["project"],
            container_id=row["container_id"],
            container_name=row["container_name"],
            image=row["image"],
            image_id=row["image_id"],
            origin=row["origin"],
            started_at=datetime.fromtimestamp(row["started_at"], UTC),
            ever_healthy=bool(row["ever_healthy"]),
            status=row["status"],
            promoted_at=dt(row["promoted_at"]),
        )

    # --- last known good --------------------------------------------------------------------
    def save_lkg(self, service: str, project: str, snapshot: Snapshot, at: datetime) -> None:
        """Make `snapshot`'s image the service's last known good."""
        self._db.execute(
            "INSERT OR REPLACE INTO rollback_lkg (service, project, image, image_id, snapshot,"
            " promoted_at) VALUES (?, ?, ?, ?, ?, ?)",
            (service, project, snapshot.image, snapshot.image_id, snapshot.to_json(), ts(at)),
        )

    def lkg(self, service: str) -> LastKnownGood | None:
        """The service's last known good image and snapshot."""
        row = self._db.execute(
            "SELECT * FROM rollback_lkg WHERE service = ?", (service,)
        ).fetchone()
        if row is None:
            return None
        return LastKnownGood(
            service=row["service"],
            project=row["project"],
            image=row["image"],
            image_id=row["image_id"],
            snapshot=Snapshot.from_json(row["snapshot"]),
            promoted_at=datetime.fromtimestamp(row["promoted_at"], UTC),
        )

    def all_lkg(self) -> dict[str, LastKnownGood]:
        """Every service's last known good."""
        rows = self._db.execute("SELECT service FROM rollback_lkg").fetchall()
        found = {row["service"]: self.lkg(row["service"]) for row in rows}
        return {k: v for k, v in found.items() if v is not None}

    # --- bad images -------------------------------------------------------------------------
    def mark_bad(self, service: str, image_id: str, image: str, reason: str, at: datetime) -> None:
        """Remember that `image_id` failed for `service` (never promoted afterwards)."""
        self._db.execute(
            "INSERT OR IGNORE INTO rollback_bad_images (service, image_id, image, marked_at,"
            " reason) VALUES (?, ?, ?, ?, ?)",
            (service, image_id, image, ts(at), reason),
        )

    def bad_image(self, service: str, image_id: str) -> BadImage | None:
        """The record of a bad image, if `image_id` is one."""
        row = self._db.execute(
            "SELECT * FROM rollback_bad_images WHERE service = ? AND image_id = ?",
            (service, image_id),
        ).fetchone()
        if row is None:
            return None
        return BadImage(
            row["service"],
            row["image_id"],
            row["image"],
            datetime.fromtimestamp(row["marked_at"], UTC),
            row["reason"],
        )

    def bad_images(self, service: str) -> list[BadImage]:
        """Every bad image of `service`, newest first."""
        rows = self._db.execute(
            "SELECT image_id FROM rollback_bad_images WHERE service = ? ORDER BY marked_at DESC",
            (service,),
        ).fetchall()
        return [b for r in rows if (b := self.bad_image(service, r["image_id"])) is not None]

    def all_bad_images(self) -> list[BadImage]:
        """Every bad image of every service, oldest first."""
        rows = self._db.execute(
            "SELECT * FROM rollback_bad_images ORDER BY marked_at, service, image_id"
        ).fetchall()
        return [
            BadImage(r["service"], r["image_id"], r["image"], _at(r["marked_at"]), r["reason"])
            for r in rows
        ]

    # --- freezes ----------------------------------------------------------------------------
    def freeze(self, service: str, reason: str, at: datetime) -> None:
        """Turn automation off for `service`."""
        self._db.execute(
            "INSERT OR REPLACE INTO rollback_freezes (service, reason, since) VALUES (?, ?, ?)",
            (service, reason, ts(at)),
        )

    def unfreeze(self, service: str, at: datetime | None = None) -> bool:
        """Turn automation back on; False if it was not frozen. The lift is kept (with `at`,
        default now) so that a cluster shares it."""
        with self.transaction():
            current = self.frozen(service)
            if current is None:
                return False
            self._db.execute("DELETE FROM rollback_freezes WHERE service = ?", (service,))
            self.record_lift(service, current.since, at or datetime.now(UTC))
        return True

    def lift(self, service: str, upto: datetime) -> bool:
        """End the freeze of `service` if it was made at `upto` or earlier (an unfreeze done
        elsewhere); False if none was. The lift itself is kept with `record_lift`."""
        cursor = self._db.execute(
            "DELETE FROM rollback_freezes WHERE service = ? AND since <= ?",
            # Stored times are floats; a microsecond of slack absorbs their rounding.
            (service, ts(upto) + 1e-6),
        )
        return cursor.rowcount > 0

    def freezes(self) -> list[Freeze]:
        """Every freeze in force, by service."""
        rows = self._db.execute("SELECT * FROM rollback_freezes ORDER BY service").fetchall()
        return [Freeze(r["service"], r["reason"], _at(r["since"])) for r in rows]

    def record_lift(self, service: str, upto: datetime, at: datetime) -> None:
        """Remember that the freezes of `service` since `upto` or older were lifted at `at`."""
        self._db.execute(
            "INSERT OR IGNORE INTO rollback_freeze_lifts (service, upto, lifted_at)"
            " VALUES (?, ?, ?)",
            (service, ts(upto), ts(at)),
        )

    def lifts(self) -> list[FreezeLift]:
        """Every lift, oldest first."""
        rows = self._db.execute(
            "SELECT * FROM rollback_freeze_lifts ORDER BY lifted_at, service"
        ).fetchall()
        return [FreezeLift(r["service"], _at(r["upto"]), _at(r["lifted_at"])) for r in rows]

    # --- other instances' rollbacks -----------------------------------------------------------
    def add_peer_runs(self, runs: list[PeerRun]) -> None:
        """Keep (or update) rollbacks other cluster instances carried out."""
        with self.transaction():
            for run in runs:
                self._db.execute(
                    "INSERT OR REPLACE INTO rollback_peer_runs (id, service, instance, status,"
                    " started_at, finished_at, bad_image, target_image)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run.id,
                        run.service,
                        run.instance,
                        run.status,
                        ts(run.started_at),
                        ts(run.finished_at) if run.finished_at else None,
                        run.bad_image,
                        run.target_image,
                    ),
                )

    def peer_runs(self, since: datetime) -> list[PeerRun]:
        """Other instances' rollbacks started at `since` or later, oldest first."""
        rows = self._db.execute(
            "SELECT * FROM rollback_peer_runs WHERE started_at >= ? ORDER BY started_at, id",
            (ts(since),),
        ).fetchall()
        return [
            PeerRun(
                r["id"],
                r["service"],
                r["instance"],
                r["status"],
                _at(r["started_at"]),
                dt(r["finished_at"]),
                r["bad_image"],
                r["target_image"],
            )
            for r in rows
        ]

    def frozen(self, service: str) -> Freeze | None:
        """The freeze of `service`, if any."""
        row = self._db.execute(
            "SELECT * FROM rollback_freezes WHERE service = ?", (service,)
        ).fetchone()
        if row is None:
            return None
        return Freeze(row["service"], row["reason"], datetime.fromtimestamp(row["since"], UTC))


def open_store(state_dir: Path, health: StoreHealth | None = None) -> RollbackStore:
    """Open rollback's store in `state_dir` (creating the file 0600 if needed)."""
    return RollbackStore(Store.open(state_dir, {**ROLLBACK_TABLES, **LEASE_TABLES}, health))
