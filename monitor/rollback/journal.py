"""The rollback journal: each step is written to SQLite BEFORE it is carried out.

A daemon killed in the middle finds its rollback `in_progress` at the next start, with the
last step it meant to take, and finishes it (every step is checked against the engine, so
re-doing one is harmless). At most one rollback per service is in flight: a unique index
makes a second claim fail, whoever (daemon or CLI) tries.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from monitor.rollback.snapshot import Snapshot
from monitor.rollback.store import RollbackStore, dt, ts


class Status(StrEnum):
    """Where a rollback stands."""

    IN_PROGRESS = "in_progress"  # the steps that change containers are being carried out
    VERIFYING = "verifying"  # the replacement runs; waiting for the checks to turn healthy
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNDONE = "undone"  # a step failed and the old container was put back
    DRY_RUN = "dry_run"  # only planned (mode dry_run or --dry-run)
    SKIPPED = "skipped"  # warranted, but a guard said no (the reason says which)

    @property
    def in_flight(self) -> bool:
        """Still being carried out or verified."""
        return self in (Status.IN_PROGRESS, Status.VERIFYING)

    @property
    def executed(self) -> bool:
        """Containers were (or are being) changed: counts against max_per_hour."""
        return self not in (Status.DRY_RUN, Status.SKIPPED)


class Step(StrEnum):
    """The steps, in the order they happen."""

    PLANNED = "planned"
    STOP_OLD = "stop_old"
    RENAME_OLD = "rename_old"
    CREATE_NEW = "create_new"
    CONNECT_NEW = "connect_new"
    START_NEW = "start_new"
    RUN_COMMAND = "run_command"
    VERIFYING = "verifying"
    RETIRE_OLD = "retire_old"  # the kept failed container replaced by its relabelled copy
    VERIFIED = "verified"
    VERIFY_FAILED = "verify_failed"
    UNDO = "undo"
    UNDONE = "undone"


class AlreadyInFlight(Exception):
    """Another rollback of the same service is being carried out."""


def owner_id() -> str:
    """Who runs a rollback: `pid@host` (the daemon, or an `opsmon rollback` command)."""
    return f"{os.getpid()}@{socket.gethostname()}"


def owner_alive(owner: str) -> bool:
    """Whether the process that claimed a rollback still runs (on this host)."""
    pid_text, _, host = owner.partition("@")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) is not running any more.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


@dataclass
class Rollback:
    """One rollback (or planned or skipped one) of one service."""

    id: str
    service: str
    project: str
    strategy: str
    trigger: str  # auto | manual
    status: Status
    step: Step
    bad_image: str
    bad_image_id: str
    target_image: str
    target_image_id: str
    target_tag: str
    old_container_id: str
    old_name: str
    old_was_running: bool
    failed_name: str
    reason: str
    evidence: list[str]
    owner: str
    started_at: datetime
    updated_at: datetime
    new_container_id: str | None = None
    snapshot: Snapshot | None = field(default=None, repr=False)
    outcome: str = ""
    output: str = ""
    verify_deadline: datetime | None = None
    finished_at: datetime | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish (None while in flight)."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class Journal:
    """Rollback records and their steps."""

    def __init__(self, store: RollbackStore) -> None:
        self._store = store
        self._db = store.db

    def begin(self, rollback: Rollback) -> Rollback:
        """Record a new rollback (its plan) before anything changes; refuse a second one in
        flight for the same service."""
        try:
            with self._store.transaction():
                self._insert(rollback)
                self._add_step(rollback.id, rollback.step, rollback.started_at)
        except sqlite3.IntegrityError:
            raise AlreadyInFlight(rollback.service) from None
        return rollback

    def note(self, rollback: Rollback) -> None:
        """Record a rollback that changes nothing (dry run, skipped)."""
        with self._store.transaction():
            self._insert(rollback)

    def _insert(self, r: Rollback) -> None:
        self._db.execute(
            "INSERT INTO rollbacks (id, service, project, strategy, trigger, status, step,"
            " bad_image, bad_image_id, target_image, target_image_id, target_tag,"
            " old_container_id, old_name, old_was_running, failed_name, new_container_id,"
            " snapshot, reason, evidence, outcome, output, owner, started_at, updated_at,"
            " verify_deadline, finished_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?)",
            (
                r.id,
                r.service,
                r.project,
                r.strategy,
                r.trigger,
                r.status.value,
                r.step.value,
                r.bad_image,
                r.bad_image_id,
                r.target_image,
                r.target_image_id,
                r.target_tag,
                r.old_container_id,
                r.old_name,
                int(r.old_was_running),
                r.failed_name,
                r.new_container_id,
                r.snapshot.to_json() if r.snapshot is not None else None,
                r.reason,
                json.dumps(r.evidence),
                r.outcome,
                r.output,
                r.owner,
                ts(r.started_at),
                ts(r.updated_at),
                ts(r.verify_deadline) if r.verify_deadline else None,
                ts(r.finished_at) if r.finished_at else None,
            ),
        )

    def _add_step(self, rollback_id: str, step: Step, at: datetime) -> None:
        self._db.execute(
            "INSERT INTO rollback_steps (rollback_id, seq, step, at) VALUES (?,"
            " (SELECT coalesce(max(seq), 0) + 1 FROM rollback_steps WHERE rollback_id = ?), ?, ?)",
            (rollback_id, rollback_id, step.value, ts(at)),
        )

    def step(self, rollback: Rollback, step: Step, at: datetime) -> None:
        """Write that `step` is about to be taken (before taking it)."""
        with self._store.transaction():
            self._db.execute(
                "UPDATE rollbacks SET step = ?, updated_at = ? WHERE id = ?",
                (step.value, ts(at), rollback.id),
            )
            self._add_step(rollback.id, step, at)
        rollback.step, rollback.updated_at = step, at

    def set_new_container(self, rollback: Rollback, container_id: str, at: datetime) -> None:
        """Remember the replacement's id as soon as the engine gave it."""
        self._db.execute(
            "UPDATE rollbacks SET new_container_id = ?, updated_at = ? WHERE id = ?",
            (container_id, ts(at), rollback.id),
        )
        rollback.new_container_id = container_id

    def set_output(self, rollback: Rollback, output: str) -> None:
        """Keep the (redacted, bounded) output of the command strategy."""
        self._db.execute("UPDATE rollbacks SET output = ? WHERE id = ?", (output, rollback.id))
        rollback.output = output

    def verifying(self, rollback: Rollback, deadline: datetime, at: datetime) -> None:
        """The replacement runs; verification ends at `deadline`."""
        with self._store.transaction():
            self._db.execute(
                "UPDATE rollbacks SET status = 'verifying', step = 'verifying',"
                " verify_deadline = ?, updated_at = ? WHERE id = ?",
                (ts(deadline), ts(at), rollback.id),
            )
            self._add_step(rollback.id, Step.VERIFYING, at)
        rollback.status, rollback.step = Status.VERIFYING, Step.VERIFYING
        rollback.verify_deadline, rollback.updated_at = deadline, at

    def finish(
        self, rollback: Rollback, status: Status, step: Step, outcome: str, at: datetime
    ) -> None:
        """The end: succeeded, failed or undone, with what happened in one sentence."""
        with self._store.transaction():
            self._db.execute(
                "UPDATE rollbacks SET status = ?, step = ?, outcome = ?, updated_at = ?,"
                " finished_at = ? WHERE id = ?",
                (status.value, step.value, outcome, ts(at), ts(at), rollback.id),
            )
            self._add_step(rollback.id, step, at)
        rollback.status, rollback.step, rollback.outcome = status, step, outcome
        rollback.updated_at = rollback.finished_at = at

    def adopt(self, rollback: Rollback, owner: str, at: datetime) -> None:
        """Take over a rollback whose owner died."""
        self._db.execute(
            "UPDATE rollbacks SET owner = ?, updated_at = ? WHERE id = ?",
            (owner, ts(at), rollback.id),
        )
        rollback.owner = owner

    # --- queries ----------------------------------------------------------------------------
    def get(self, rollback_id: str) -> Rollback | None:
        """One rollback by id."""
        row = self._db.execute("SELECT * FROM rollbacks WHERE id = ?", (rollback_id,)).fetchone()
        return self._rollback(row) if row else None

    def in_flight(self, service: str | None = None) -> list[Rollback]:
        """Rollbacks being carried out or verified (of one service, or all)."""
        query = "SELECT * FROM rollbacks WHERE status IN ('in_progress', 'verifying')"
        args: tuple[str, ...] = ()
        if service is not None:
            query += " AND service = ?"
            args = (service,)
        rows = self._db.execute(query + " ORDER BY started_at", args).fetchall()
        return [self._rollback(r) for r in rows]

    def executed_since(self, service: str, since: datetime) -> int:
        """How many rollbacks of `service` changed containers since `since`: this
        instance's, and those other cluster instances carried out (`rollback_peer_runs`)."""
        row = self._db.execute(
            "SELECT (SELECT count(*) FROM rollbacks WHERE service = ? AND started_at >= ?"
            " AND status NOT IN ('dry_run', 'skipped'))"
            " + (SELECT count(*) FROM rollback_peer_runs WHERE service = ? AND started_at >= ?"
            " AND status NOT IN ('dry_run', 'skipped')"
            " AND id NOT IN (SELECT id FROM rollbacks))",
            (service, ts(since), service, ts(since)),
        ).fetchone()
        return int(row[0])

    def executed(self, since: datetime) -> list[Rollback]:
        """This instance's rollbacks that changed containers (or are changing them), started
        at `since` or later, oldest first."""
        rows = self._db.execute(
            "SELECT * FROM rollbacks WHERE started_at >= ?"
            " AND status NOT IN ('dry_run', 'skipped') ORDER BY started_at, id",
            (ts(since),),
        ).fetchall()
        return [self._rollback(r) for r in rows]

    def recent(self, service: str | None = None, limit: int = 20) -> list[Rollback]:
        """The newest records, newest first."""
        query, args = "SELECT * FROM rollbacks", []
        if service is not None:
            query += " WHERE service = ?"
            args.append(service)
        rows = self._db.execute(
            query + " ORDER BY started_at DESC LIMIT ?", (*args, limit)
        ).fetchall()
        return [self._rollback(r) for r in rows]

    def steps(self, rollback_id: str) -> list[tuple[Step, datetime]]:
        """Every step written for a rollback, in order."""
        rows = self._db.execute(
            "SELECT step, at FROM rollback_steps WHERE rollback_id = ? ORDER BY seq",
            (rollback_id,),
        ).fetchall()
        return [(Step(r["step"]), dt(r["at"]) or datetime.min) for r in rows]

    @staticmethod
    def _rollback(row: sqlite3.Row) -> Rollback:
        snapshot = row["snapshot"]
        started = dt(row["started_at"])
        updated = dt(row["updated_at"])
        assert started is not None and updated is not None
        return Rollback(
            id=row["id"],
            service=row["service"],
            project=row["project"],
            strategy=row["strategy"],
            trigger=row["trigger"],
            status=Status(row["status"]),
            step=Step(row["step"]),
            bad_image=row["bad_image"],
            bad_image_id=row["bad_image_id"],
            target_image=row["target_image"],
            target_image_id=row["target_image_id"],
            target_tag=row["target_tag"],
            old_container_id=row["old_container_id"],
            old_name=row["old_name"],
            old_was_running=bool(row["old_was_running"]),
            failed_name=row["failed_name"],
            reason=row["reason"],
            evidence=list(json.loads(row["evidence"])),
            owner=row["owner"],
            started_at=started,
            updated_at=updated,
            new_container_id=row["new_container_id"],
            snapshot=Snapshot.from_json(snapshot) if snapshot else None,
            outcome=row["outcome"],
            output=row["output"],
            verify_deadline=dt(row["verify_deadline"]),
            finished_at=dt(row["finished_at"]),
        )


def new_id() -> str:
    """A rollback id."""
    return uuid.uuid4().hex[:16]


def hour_ago(now: datetime) -> datetime:
    """The start of the max_per_hour window."""
    return now - timedelta(hours=1)
