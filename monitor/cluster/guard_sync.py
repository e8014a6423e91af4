"""One round of sharing rollback's guard state through the cluster store (run every renewal
period by monitor/cluster/member.py, task `cluster-rollback-state`): write what changed on
this instance since the last round, read the cluster's, and let rollback take over what the
others recorded (the rules: monitor/cluster/rollback_share.py).

A round that fails (the store away) changes nothing here and forgets nothing: what was not
written is written by the first round that works, and this instance goes on by its own
state meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from monitor.cluster.rollback_share import (
    RUNS_SHARED_FOR,
    GuardState,
    SharedRollback,
    plan,
    redacted,
    unwritten,
)

if TYPE_CHECKING:
    from monitor.clock import Clock
    from monitor.cluster.store import ClusterStore
    from monitor.ports import RollbackStatePort


class GuardSharer:
    """Shares one instance's rollback guard state, one round at a time."""

    def __init__(
        self,
        store: ClusterStore,
        rollback: Callable[[], RollbackStatePort | None],
        redact: Callable[[str], str],
        clock: Clock,
    ) -> None:
        self._store = store
        self._rollback = rollback
        self._redact = redact
        self._clock = clock
        self._written = GuardState()  # as last written to the store
        self._adopted: frozenset[SharedRollback] = frozenset()  # others' rollbacks taken over

    async def round(self) -> bool:
        """Write, read, adopt; False when rollback is off here (nothing to share). Raises
        StoreUnavailable when the store does not answer (nothing is lost)."""
        port = self._rollback()
        if port is None:
            return False
        me = self._store.instance
        since = self._clock.now() - RUNS_SHARED_FOR
        local = port.guard_state(me, since)
        if local is None:
            return False
        mine = redacted(local, self._redact)
        await self._store.share_guards(unwritten(mine, self._written))
        self._written = mine
        shared = await self._store.shared_guards(since)
        adoption = plan(local, shared, me)
        # Others' rollbacks change rarely: only new or changed rows are taken over again.
        fresh = tuple(r for r in adoption.rollbacks if r not in self._adopted)
        adoption = replace(adoption, rollbacks=fresh)
        if not adoption.empty():
            await port.adopt_guards(adoption)
        self._adopted = frozenset(r for r in shared.rollbacks if r.instance != me)
        return True
