"""The rollback lease: one owner per service across processes, expiry, takeover, gate runs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.clock import SystemClock
from monitor.rollback.journal import owner_id
from monitor.rollback.lease import LeaseHeld, Leases, LocalLeases, owners
from monitor.rollback.store import RollbackStore, open_store

HOLD = """
import sys, time
from pathlib import Path
from monitor.clock import SystemClock
from monitor.rollback.lease import Leases
from monitor.rollback.store import open_store
leases = Leases(open_store(Path(sys.argv[1])), SystemClock())
leases.acquire("web", "daemon", "r-other")
print("held", flush=True)
sys.stdin.readline()
"""


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.at = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.at.timestamp()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RollbackStore]:
    """A rollback store in a temporary state folder."""
    opened = open_store(tmp_path)
    yield opened
    opened.close()


def test_another_process_cannot_take_a_held_lease(tmp_path: Path, store: RollbackStore) -> None:
    """While another live process holds the lease, acquiring it raises LeaseHeld naming the
    holder; once that process is gone, the lease is free at once."""
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None and other.stdout.readline() == "held\n"
        leases = Leases(store, SystemClock())
        with pytest.raises(LeaseHeld) as held:
            leases.acquire("web", "gate", "r-mine")
        assert held.value.holder.describe() == f"the opsmon daemon (pid {other.pid} on " + (
            owner_id().partition("@")[2] + ")"
        )
        assert leases.other_holder("web") is not None
    finally:
        assert other.stdin is not None
        other.stdin.write("\n")
        other.stdin.close()
        other.wait(timeout=10)
    assert leases.acquire("web", "gate", "r-mine") is True
    assert leases.holder("web") is not None and leases.other_holder("web") is None


def test_an_owner_on_another_host_holds_until_the_lease_expires(store: RollbackStore) -> None:
    """A holder on another host (the daemon's container) cannot be checked: its lease counts
    until TTL after its last renewal."""
    clock = Clock()
    leases = Leases(store, clock, ttl=15)
    leases.acquire("web", "daemon", "r1", owner="1@elsewhere")
    clock.at += timedelta(seconds=10)
    assert leases.renew("web", owner="1@elsewhere")
    clock.at += timedelta(seconds=14)
    with pytest.raises(LeaseHeld):
        leases.acquire("web", "gate", "r2")
    clock.at += timedelta(seconds=2)
    assert leases.acquire("web", "gate", "r2") is True


def test_reentering_keeps_the_outer_hold(store: RollbackStore) -> None:
    """A gate's coordinator inside the gate's own hold neither takes nor drops the lease."""
    leases = Leases(store, Clock())

    async def nested() -> tuple[bool, bool, bool]:
        async with leases.hold("web", "gate", "g1") as outer:
            async with leases.hold("web", "gate", "rollback-1") as inner:
                pass
            still = leases.holder("web") is not None
        return outer, inner, still

    outer, inner, still = asyncio.run(nested())
    assert (outer, inner, still) == (True, False, True)
    assert leases.holder("web") is None


def test_gate_runs_keep_the_report_for_followers(store: RollbackStore) -> None:
    """A finished gate run's report can be read by the gates that waited for it."""
    leases = Leases(store, Clock())
    leases.gate_started("g1", "web")
    assert leases.gate_report("g1") is None
    leases.gate_finished("g1", "rolled_back", {"verdict": "rolled_back", "summary": "s"})
    assert leases.gate_report("g1") == {"verdict": "rolled_back", "summary": "s"}


def test_local_leases_serve_the_coordinator_and_status_as_before(store: RollbackStore) -> None:
    """Without a `cluster:` section the coordinator's leases are the SQLite rows: a holder on
    another host is named by `owners` (for `rollback status`), a free service shows nobody."""
    clock = Clock()
    Leases(store, clock).acquire("web", "gate", "g1", owner="812@ci-runner-2")
    local = LocalLeases(Leases(store, clock))

    async def look() -> tuple[dict[str, str | None], bool]:
        found = await owners(local, ["web", "api"])
        async with local.hold("api", "daemon", "r1") as took:
            pass
        return found, took

    found, took = asyncio.run(look())
    assert found == {"web": "a deploy gate (pid 812 on ci-runner-2)", "api": None}
    assert took is True and local.where == "this instance's state"
