"""Who owns a service's rollback: one lease row per service in the rollback store.

A deploy gate takes the lease of its service when it starts and keeps it until its verdict;
the daemon and `opsmon rollback` take it for the time they carry a rollback out. Whoever
takes it first owns the service: the coordinator of anyone else decides nothing while the
lease is held, and a gate that finds it held waits for the owner's outcome and reports it.

A lease is renewed every TTL/3 and expires after TTL without renewal, so a killed owner on
another host (the daemon's container) frees it within TTL; on the same host a dead owner's
lease is free at once. Taking and checking a lease is one IMMEDIATE transaction, so two
processes cannot both win.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from monitor.clock import Clock
from monitor.rollback.journal import owner_alive, owner_id
from monitor.rollback.store import RollbackStore, dt, ts

LEASE_TTL = 15.0

KIND_NAMES = {
    "gate": "a deploy gate",
    "daemon": "the opsmon daemon",
    "operator": "an `opsmon rollback` command",
}


@dataclass(frozen=True)
class Holder:
    """The owner of a service's lease: who (`pid@host`), what kind, and its run (the gate
    run's id, or the rollback's id)."""

    service: str
    owner: str
    kind: str
    run: str
    acquired_at: datetime
    expires_at: datetime

    def describe(self) -> str:
        """`a deploy gate (pid 123 on web-1)`."""
        pid, _, host = self.owner.partition("@")
        return f"{KIND_NAMES.get(self.kind, self.kind)} (pid {pid} on {host})"


class LeaseHeld(Exception):
    """Someone else owns the service's rollback."""

    def __init__(self, holder: Holder) -> None:
        super().__init__(holder.describe())
        self.holder = holder


class LeaseUnavailable(Exception):
    """Where the leases live cannot be asked (the cluster store does not answer): nobody can
    tell who owns the service's rollback, so nothing may be rolled back. The message names the
    store's host and port, never a password."""


class ServiceLeases(Protocol):
    """Who owns each service's rollback, wherever the lease rows live: this instance's SQLite
    state (`LocalLeases`) or the cluster store (monitor/cluster/leases.py). Every method may
    raise LeaseUnavailable when the rows cannot be read or written."""

    @property
    def where(self) -> str:
        """Where the leases live, for messages (`this instance's state`, `the cluster store
        db:5432`)."""
        ...

    async def holder(self, service: str) -> Holder | None:
        """The live owner of `service`'s rollback, if any."""
        ...

    async def other_holder(self, service: str) -> Holder | None:
        """The live owner of `service`'s rollback when it is not this process."""
        ...

    def hold(self, service: str, kind: str, run: str) -> AbstractAsyncContextManager[bool]:
        """Own `service` while inside, renewed in the background; re-entering in the same
        process keeps the outer hold. Raises LeaseHeld when someone else owns it. Yields
        whether this hold took the lease."""
        ...

    async def gate_started(self, run: str, service: str) -> None:
        """Record a gate run of `service`."""
        ...

    async def gate_finished(self, run: str, verdict: str, report: dict[str, object]) -> None:
        """Record the verdict of a gate run, with its report."""
        ...

    async def gate_report(self, run: str) -> dict[str, object] | None:
        """The report of a finished gate run (None while it runs or if it never finished)."""
        ...

    async def aclose(self) -> None:
        """Release what the leases hold open (a connection)."""
        ...


async def owners(leases: ServiceLeases, services: Iterable[str]) -> dict[str, str | None]:
    """Who owns each service's rollback, described for a person (None: nobody); when the
    leases cannot be read, says so instead of claiming nobody does."""
    found: dict[str, str | None] = {}
    away: str | None = None
    for service in services:
        if away is not None:  # one wait for a store that does not answer is enough
            found[service] = away
            continue
        try:
            holder = await leases.holder(service)
        except LeaseUnavailable as exc:
            found[service] = away = f"unknown ({exc})"
            continue
        found[service] = holder.describe() if holder is not None else None
    return found


def _alive(owner: str) -> bool:
    """Whether the owner may still run: on this host, its process runs; elsewhere, we cannot
    tell (the lease's expiry decides)."""
    host = owner.partition("@")[2]
    return host != socket.gethostname() or owner_alive(owner)


class Leases:
    """The lease rows of one rollback store."""

    def __init__(self, store: RollbackStore, clock: Clock, ttl: float = LEASE_TTL) -> None:
        self._store = store
        self._db = store.db
        self._clock = clock
        self.ttl = ttl

    def _row(self, service: str) -> Holder | None:
        row = self._db.execute(
            "SELECT * FROM rollback_leases WHERE service = ?", (service,)
        ).fetchone()
        if row is None:
            return None
        acquired, expires = dt(row["acquired_at"]), dt(row["expires_at"])
        assert acquired is not None and expires is not None
        return Holder(row["service"], row["owner"], row["kind"], row["run"], acquired, expires)

    def _live(self, holder: Holder | None, now: datetime) -> Holder | None:
        if holder is None or holder.expires_at <= now or not _alive(holder.owner):
            return None
        return holder

    def holder(self, service: str) -> Holder | None:
        """The live owner of `service`'s rollback, if any."""
        return self._live(self._row(service), self._clock.now())

    def other_holder(self, service: str, owner: str | None = None) -> Holder | None:
        """The live owner of `service`'s rollback when it is not `owner` (default: this
        process)."""
        found = self.holder(service)
        me = owner or owner_id()
        return found if found is not None and found.owner != me else None

    def acquire(self, service: str, kind: str, run: str, owner: str | None = None) -> bool:
        """Take the lease (True), or find it ours already (False); raise LeaseHeld when
        someone else holds it."""
        me = owner or owner_id()
        now = self._clock.now()
        with self._store.transaction():
            current = self._live(self._row(service), now)
            if current is not None and current.owner != me:
                raise LeaseHeld(current)
            if current is not None:
                self._renew(service, me, now)
                return False
            self._db.execute(
                "INSERT OR REPLACE INTO rollback_leases (service, owner, kind, run, acquired_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (service, me, kind, run, ts(now), ts(now + timedelta(seconds=self.ttl))),
            )
        return True

    def _renew(self, service: str, owner: str, now: datetime) -> bool:
        cursor = self._db.execute(
            "UPDATE rollback_leases SET expires_at = ? WHERE service = ? AND owner = ?",
            (ts(now + timedelta(seconds=self.ttl)), service, owner),
        )
        return cursor.rowcount > 0

    def renew(self, service: str, owner: str | None = None) -> bool:
        """Push the expiry out by TTL; False if the lease is no longer ours."""
        return self._renew(service, owner or owner_id(), self._clock.now())

    def release(self, service: str, owner: str | None = None) -> None:
        """Give the lease up (only ours)."""
        self._db.execute(
            "DELETE FROM rollback_leases WHERE service = ? AND owner = ?",
            (service, owner or owner_id()),
        )

    @contextlib.asynccontextmanager
    async def hold(self, service: str, kind: str, run: str) -> AsyncIterator[bool]:
        """Own `service` while inside (renewed in the background); re-entering in the same
        process keeps the outer hold. Raises LeaseHeld when someone else owns it. Yields
        whether this hold took the lease."""
        fresh = self.acquire(service, kind, run)
        if not fresh:
            yield False
            return
        renewer = asyncio.create_task(self._keep(service), name=f"lease-{service}")
        try:
            yield True
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            self.release(service)

    async def _keep(self, service: str) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            self.renew(service)

    # --- gate runs: what a gate decided, for the gates that waited for it -------------------
    def gate_started(self, run: str, service: str) -> None:
        """Record a gate run of `service`."""
        self._db.execute(
            "INSERT INTO rollback_gate_runs (id, service, owner, started_at) VALUES (?, ?, ?, ?)",
            (run, service, owner_id(), ts(self._clock.now())),
        )

    def gate_finished(self, run: str, verdict: str, report: dict[str, object]) -> None:
        """Record the verdict of a gate run, with its report (JSON)."""
        self._db.execute(
            "UPDATE rollback_gate_runs SET finished_at = ?, verdict = ?, report = ? WHERE id = ?",
            (ts(self._clock.now()), verdict, json.dumps(report), run),
        )

    def gate_report(self, run: str) -> dict[str, object] | None:
        """The report of a finished gate run (None while it runs or if it never finished)."""
        row = self._db.execute(
            "SELECT report FROM rollback_gate_runs WHERE id = ? AND report IS NOT NULL", (run,)
        ).fetchone()
        if row is None:
            return None
        report: dict[str, object] = json.loads(row["report"])
        return report


class LocalLeases:
    """The service leases in this instance's own state (SQLite), as `ServiceLeases`: without a
    `cluster:` section, exactly the behaviour of `Leases`."""

    where = "this instance's state"

    def __init__(self, leases: Leases) -> None:
        self.leases = leases

    async def holder(self, service: str) -> Holder | None:
        """The live owner of `service`'s rollback, if any."""
        return self.leases.holder(service)

    async def other_holder(self, service: str) -> Holder | None:
        """The live owner of `service`'s rollback when it is not this process."""
        return self.leases.other_holder(service)

    def hold(self, service: str, kind: str, run: str) -> AbstractAsyncContextManager[bool]:
        """`Leases.hold`."""
        return self.leases.hold(service, kind, run)

    async def gate_started(self, run: str, service: str) -> None:
        """Record a gate run of `service`."""
        self.leases.gate_started(run, service)

    async def gate_finished(self, run: str, verdict: str, report: dict[str, object]) -> None:
        """Record the verdict of a gate run, with its report."""
        self.leases.gate_finished(run, verdict, report)

    async def gate_report(self, run: str) -> dict[str, object] | None:
        """The report of a finished gate run."""
        return self.leases.gate_report(run)

    async def aclose(self) -> None:
        """Nothing to close: the rollback store is its owner's."""
