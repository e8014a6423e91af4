"""Check history shared by a cluster's instances, so every status page shows the same.

Each instance writes its own hour and day rows (monitor/status/store.py) and, every few
seconds, puts the ones that changed in `opsmon_cluster_history` as they stand (whole
counts, not increments: sharing a row twice changes nothing). It reads the rows the other
instances changed since it last looked and keeps them beside its own; the page adds them
up. So with sharding, the page of any instance shows every check's history from its owner;
without, it counts every instance's runs (a check's uptime is that of all its probes).

The store away: rows wait in this instance's SQLite and are shared when it answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from monitor.cluster.store import ClusterStore, StoreUnavailable
from monitor.logs import get_logger
from monitor.status.store import HistoryStore

SHARE_EVERY = 5.0  # as often as the status component writes its history
# A row written just before a read may commit just after it: each read looks this far back
# again (reading a row twice changes nothing).
_LOOK_BACK_S = 10.0


class HistoryShare:
    """Puts this instance's history rows in the cluster store and keeps the others'."""

    def __init__(self, store: ClusterStore, history: Callable[[], HistoryStore | None]) -> None:
        self._store = store
        self._history = history
        self._seen: datetime | None = None  # the newest peer row read, by the store's clock
        self._log = get_logger("cluster")

    async def run(self) -> None:
        """Share every SHARE_EVERY seconds until cancelled."""
        while True:
            history = self._history()
            if history is not None:
                await self.share_once(history)
            await asyncio.sleep(SHARE_EVERY)

    async def share_once(self, history: HistoryStore) -> None:
        """One round: write what changed here, read what changed elsewhere."""
        rows = history.take_unshared()
        try:
            if rows:
                await self._store.share_history(rows)
            peers, newest = await self._store.peer_history(self._seen, _LOOK_BACK_S)
        except StoreUnavailable as exc:
            history.unshared(rows)  # offered again next round: nothing is lost
            self._log.warning("cluster_history_not_shared", reason=str(exc))
            return
        history.adopt_peer_rows(peers)
        self._seen = newest or self._seen
