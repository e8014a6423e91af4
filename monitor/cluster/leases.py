"""The per-service rollback leases in the cluster store, so that the leader on any host,
`opsmon gate` and `opsmon rollback` on any host exclude each other per service.

The same rules as the SQLite leases (monitor/rollback/lease.py), with the database's clock:
a lease expires `ttl` seconds after its last renewal by `now()` in PostgreSQL, so an owner
that died on another host frees it within `ttl`. Taking a lease is one autocommit statement
(INSERT ... ON CONFLICT DO UPDATE ... WHERE free-or-ours RETURNING): two takers never both
win, and a PgBouncer in transaction mode is fine (no session state, no advisory lock, no
prepared statement). An owner on this very host whose process is gone frees its lease at
once, as with SQLite: the row records the kernel's boot id, so a process on another machine
with the same host name and pid is never taken for it.

The gate runs (verdict and report, which a gate that waited for another reads) live here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from monitor.clock import Clock
from monitor.cluster.config import ClusterConfig
from monitor.cluster.store import ClusterStore, StoreUnavailable
from monitor.logs import get_logger
from monitor.rollback.journal import owner_alive, owner_id
from monitor.rollback.lease import (
    LEASE_TTL,
    Holder,
    LeaseHeld,
    Leases,
    LeaseUnavailable,
    LocalLeases,
    ServiceLeases,
)
from monitor.rollback.store import RollbackStore

# Finished gate runs are kept this long (a waiting gate reads the report within seconds).
GATE_RUNS_KEPT_DAYS = 7
# A take that found neither a row nor a winner (it raced a concurrent insert) looks again.
_TAKE_TRIES = 3
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")

_COLUMNS = "owner, kind, run, acquired_at, expires_at, boot"

# Take the lease if it is free, expired, already ours, or a dead owner's on this host that the
# caller names; otherwise leave it and return the holder's row. `fresh` tells a new hold from
# finding it ours (a lease taken in this transaction has acquired_at = now()).
_TAKE = f"""
WITH taken AS (
    INSERT INTO opsmon_cluster_service_leases AS l
        (service, owner, kind, run, instance, boot, acquired_at, expires_at)
    VALUES (%(service)s, %(owner)s, %(kind)s, %(run)s, %(instance)s, %(boot)s, now(),
            now() + make_interval(secs => %(ttl)s))
    ON CONFLICT (service) DO UPDATE SET
        kind = CASE WHEN l.owner = excluded.owner AND l.expires_at > now()
                    THEN l.kind ELSE excluded.kind END,
        run = CASE WHEN l.owner = excluded.owner AND l.expires_at > now()
                   THEN l.run ELSE excluded.run END,
        acquired_at = CASE WHEN l.owner = excluded.owner AND l.expires_at > now()
                           THEN l.acquired_at ELSE now() END,
        owner = excluded.owner,
        instance = excluded.instance,
        boot = excluded.boot,
        expires_at = excluded.expires_at
    WHERE l.owner = excluded.owner
       OR l.expires_at <= now()
       OR (l.owner = %(dead_owner)s AND l.run = %(dead_run)s)
    RETURNING {_COLUMNS}, l.acquired_at = now() AS fresh, true AS live
)
SELECT * FROM taken
UNION ALL
SELECT {_COLUMNS}, false, expires_at > now()
FROM opsmon_cluster_service_leases
WHERE service = %(service)s AND NOT EXISTS (SELECT 1 FROM taken)
"""

_RENEW = """
UPDATE opsmon_cluster_service_leases SET expires_at = now() + make_interval(secs => %(ttl)s)
WHERE service = %(service)s AND owner = %(owner)s
RETURNING service
"""

_RELEASE = """
DELETE FROM opsmon_cluster_service_leases WHERE service = %(service)s AND owner = %(owner)s
"""

_HOLDER = f"""
SELECT {_COLUMNS} FROM opsmon_cluster_service_leases
WHERE service = %(service)s AND expires_at > now()
"""

_GATE_STARTED = f"""
WITH old AS (
    DELETE FROM opsmon_cluster_gate_runs
    WHERE started_at < now() - make_interval(days => {GATE_RUNS_KEPT_DAYS})
)
INSERT INTO opsmon_cluster_gate_runs (id, service, owner, instance, started_at)
VALUES (%(run)s, %(service)s, %(owner)s, %(instance)s, now())
"""

_GATE_FINISHED = """
UPDATE opsmon_cluster_gate_runs SET finished_at = now(), verdict = %(verdict)s,
    report = %(report)s
WHERE id = %(run)s
"""

_GATE_REPORT = """
SELECT report FROM opsmon_cluster_gate_runs WHERE id = %(run)s AND report IS NOT NULL
"""


def boot_id() -> str:
    """This machine's kernel boot id ('' where there is none): processes that share it share
    a pid space's host, so a pid check means something."""
    try:
        return _BOOT_ID.read_text(encoding="ascii").strip()
    except OSError:
        return ""


class _LeaseStore(ClusterStore):
    """The cluster store's connection (opened on demand, reopened after a failure, migrated
    once, errors scrubbed of the password), for the lease statements."""

    async def rows(self, sql: str, params: Mapping[str, object]) -> list[tuple[Any, ...]]:
        """Run one statement; LeaseUnavailable (naming host:port only) on any failure."""
        try:
            return await self._rows(sql, dict(params))
        except StoreUnavailable as exc:
            raise LeaseUnavailable(str(exc)) from None


class ClusterLeases:
    """The service leases and gate runs in the cluster store, as `ServiceLeases`."""

    def __init__(
        self,
        dsn: str,
        instance: str,
        ttl: float = LEASE_TTL,
        owner: str | None = None,
        timeout: float | None = None,
    ) -> None:
        # One statement must fit well inside a renewal period, or a slow store costs the lease.
        wait = timeout if timeout is not None else ttl / 3
        self._store = _LeaseStore(dsn, instance, wait)
        self.instance = instance
        self.ttl = ttl
        self.owner = owner or owner_id()
        self._boot = boot_id()
        self._log = get_logger("rollback")

    @property
    def where(self) -> str:
        """`the cluster store host:port`."""
        return f"the cluster store {self._store.target}"

    async def aclose(self) -> None:
        """Close the connection."""
        await self._store.close()

    # --- rows -------------------------------------------------------------------------------
    def _holder(self, service: str, row: tuple[Any, ...]) -> Holder:
        owner, kind, run, acquired_at, expires_at = row[:5]
        return Holder(service, str(owner), str(kind), str(run), acquired_at, expires_at)

    def _dead(self, row: tuple[Any, ...]) -> bool:
        """Whether the row's owner ran on this very machine and its process is gone."""
        owner, boot = str(row[0]), str(row[5])
        on_this_host = owner.partition("@")[2] == socket.gethostname()
        return bool(self._boot) and boot == self._boot and on_this_host and not owner_alive(owner)

    # --- the lease --------------------------------------------------------------------------
    async def acquire(self, service: str, kind: str, run: str) -> bool:
        """Take the lease (True), or find it ours already (False); LeaseHeld when someone
        else holds it, LeaseUnavailable when the store does not answer."""
        params: dict[str, object] = {
            "service": service,
            "owner": self.owner,
            "kind": kind,
            "run": run,
            "instance": self.instance,
            "boot": self._boot,
            "ttl": self.ttl,
            "dead_owner": None,
            "dead_run": None,
        }
        seen: Holder | None = None
        for _ in range(_TAKE_TRIES):
            rows = await self._store.rows(_TAKE, params)
            if not rows:
                continue  # the row was inserted or deleted under us: look again
            row = rows[0]
            fresh, live = bool(row[6]), bool(row[7])
            seen = self._holder(service, row)
            if seen.owner == self.owner:
                return fresh
            if live and not self._dead(row):
                raise LeaseHeld(seen)
            # A dead owner's lease on this host: take exactly that row over (if still its).
            params["dead_owner"], params["dead_run"] = seen.owner, seen.run
        if seen is not None:
            raise LeaseHeld(seen)
        raise LeaseUnavailable(f"{self.where}: the lease of {service} changed hands repeatedly")

    async def renew(self, service: str) -> bool:
        """Push the expiry out by TTL; False if the lease is no longer ours."""
        params = {"service": service, "owner": self.owner, "ttl": self.ttl}
        return bool(await self._store.rows(_RENEW, params))

    async def release(self, service: str) -> None:
        """Give the lease up (only ours)."""
        await self._store.rows(_RELEASE, {"service": service, "owner": self.owner})

    async def holder(self, service: str) -> Holder | None:
        """The live owner of `service`'s rollback, if any."""
        rows = await self._store.rows(_HOLDER, {"service": service})
        if not rows or self._dead(rows[0]):
            return None
        return self._holder(service, rows[0])

    async def other_holder(self, service: str) -> Holder | None:
        """The live owner of `service`'s rollback when it is not this process."""
        found = await self.holder(service)
        return found if found is not None and found.owner != self.owner else None

    def hold(self, service: str, kind: str, run: str) -> AbstractAsyncContextManager[bool]:
        """Own `service` while inside (renewed every TTL/3); re-entering in the same process
        keeps the outer hold. LeaseHeld when someone else owns it, LeaseUnavailable when the
        store does not answer (nobody may then act on the service)."""
        return self._hold(service, kind, run)

    @contextlib.asynccontextmanager
    async def _hold(self, service: str, kind: str, run: str) -> AsyncIterator[bool]:
        fresh = await self.acquire(service, kind, run)
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
            try:
                await self.release(service)
            except LeaseUnavailable as exc:
                # It expires by itself within TTL.
                self._log.warning("rollback_lease_release_failed", service=service, reason=str(exc))

    async def _keep(self, service: str) -> None:
        """Renew every TTL/3. What was started (a rollback half done) is finished even when
        a renewal fails: stopping half way would leave the service broken. Each failure is
        logged; after TTL without a renewal, another owner may take the lease."""
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                if not await self.renew(service):
                    self._log.warning("rollback_lease_lost", service=service, owner=self.owner)
            except LeaseUnavailable as exc:
                self._log.warning("rollback_lease_renew_failed", service=service, reason=str(exc))

    # --- gate runs --------------------------------------------------------------------------
    async def gate_started(self, run: str, service: str) -> None:
        """Record a gate run of `service` (and forget runs older than a week)."""
        params = {"run": run, "service": service, "owner": self.owner, "instance": self.instance}
        await self._store.rows(_GATE_STARTED, params)

    async def gate_finished(self, run: str, verdict: str, report: dict[str, object]) -> None:
        """Record the verdict of a gate run, with its report (JSON)."""
        params = {"run": run, "verdict": verdict, "report": json.dumps(report)}
        await self._store.rows(_GATE_FINISHED, params)

    async def gate_report(self, run: str) -> dict[str, object] | None:
        """The report of a finished gate run (None while it runs or if it never finished)."""
        rows = await self._store.rows(_GATE_REPORT, {"run": run})
        if not rows:
            return None
        report: dict[str, object] = json.loads(rows[0][0])
        return report


def service_leases(
    cluster: ClusterConfig | None, store: RollbackStore, clock: Clock
) -> ServiceLeases:
    """Where the per-service rollback leases live: the cluster store with a `cluster:`
    section (shared by every host), else this instance's own state."""
    if cluster is None:
        return LocalLeases(Leases(store, clock))
    return ClusterLeases(cluster.store, cluster.instance)
