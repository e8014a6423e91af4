"""What every status page of a cluster shows the same: check history and incidents.

Each instance writes its own hour and day rows (monitor/status/store.py) and its own
incidents (alerting). Every few seconds it puts the rows and the incidents of checks that
changed in the store as they stand (whole counts and whole records, not increments: sharing
one twice changes nothing) and reads what the other instances changed since it last looked,
keeping it beside its own. The page adds the others' rows to its own, and lists the others'
incidents it has no record of. So with sharding the page of any instance shows every
check's history and incidents, from its owner; without, it counts every instance's runs (a
check's uptime is that of all its probes), and each instance lists its own incidents (they
follow the same combined judgement).

The store away: everything waits in this instance's SQLite and is shared when it answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from monitor.alerting.store import AlertingStore
from monitor.clock import Clock
from monitor.cluster.store import ClusterStore, ReadMark, StoreUnavailable
from monitor.logs import get_logger
from monitor.status.store import HistoryStore

SHARE_EVERY = 5.0  # as often as the status component writes its history
# A row written just before a read may commit just after it: each pass looks this far back
# again (reading a row twice changes nothing).
_LOOK_BACK_S = 10.0
# Rows read per statement: a new member catching up on 90 days of a large cluster's history
# reads it page by page, letting the checks run in between.
PAGE = 2000
T = TypeVar("T")
# A new member shares the incidents that ended this long ago (older ones stay its own).
_FIRST_SHARE = timedelta(days=7)


class HistoryShare:
    """Puts this instance's history rows and incidents in the cluster store and keeps the
    others'."""

    def __init__(
        self,
        store: ClusterStore,
        history: Callable[[], HistoryStore | None],
        incidents: Callable[[], AlertingStore | None],
        clock: Clock,
    ) -> None:
        self._store = store
        self._history = history
        self._incidents = incidents
        self._clock = clock
        # Where the next reads of the others' rows and incidents go on from.
        self._rows_mark = ReadMark.start(4)
        self._incidents_mark = ReadMark.start(1)
        self._shared_until: datetime | None = None  # incidents ended since then are shared
        self._log = get_logger("cluster")

    async def run(self) -> None:
        """Share every SHARE_EVERY seconds until cancelled."""
        while True:
            try:
                await self.share_once()
            except StoreUnavailable as exc:
                self._log.warning("cluster_history_not_shared", reason=str(exc))
            await asyncio.sleep(SHARE_EVERY)

    async def share_once(self) -> None:
        """One round: write what changed here, read what changed elsewhere; StoreUnavailable
        when the store does not answer (nothing is lost: it is offered again)."""
        history = self._history()
        if history is not None:
            await self._share_rows(history)
        incidents = self._incidents()
        if incidents is not None:
            await self._share_incidents(incidents)

    async def _share_rows(self, history: HistoryStore) -> None:
        rows = history.take_unshared()
        try:
            if rows:
                await self._store.share_history(rows)
        except StoreUnavailable:
            history.unshared(rows)  # offered again next round
            raise
        self._rows_mark = await _read_pages(
            self._rows_mark, self._store.peer_history, history.adopt_peer_rows
        )

    async def _share_incidents(self, incidents: AlertingStore) -> None:
        started = self._clock.now()
        since = self._shared_until or started - _FIRST_SHARE
        # Firing ones every round (few), resolved ones once (the store skips unchanged rows).
        mine = incidents.incidents_to_share(since - timedelta(seconds=_LOOK_BACK_S))
        if mine:
            await self._store.share_incidents(mine)
        self._shared_until = started
        self._incidents_mark = await _read_pages(
            self._incidents_mark, self._store.peer_incidents, incidents.adopt_peer_incidents
        )


async def _read_pages(
    mark: ReadMark,
    read: Callable[[ReadMark, int], Awaitable[tuple[Sequence[T], ReadMark | None]]],
    adopt: Callable[[Sequence[T]], None],
) -> ReadMark:
    """Read and adopt what changed after `mark`, page by page until a page is not full;
    return where the next pass goes on from (looking back a while: see `ReadMark.back`)."""
    while True:
        found, last = await read(mark, PAGE)
        adopt(found)
        if last is None:
            return mark
        if len(found) < PAGE:
            return last.back(_LOOK_BACK_S)
        mark = last
        await asyncio.sleep(0)  # the checks run between pages
