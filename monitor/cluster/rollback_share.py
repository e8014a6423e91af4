"""The rules by which cluster instances share the state that guards rollback automation:
freezes (and their lifts), bad images, the last known good image of each service, and the
rollbacks each instance carried out. Pure functions over plain records; the I/O is in
monitor/cluster/guard_sync.py (the round), monitor/cluster/store.py (the tables) and
monitor/rollback/guards.py (this instance's SQLite).

The rules, so that any future leader holds to what any instance recorded:

- A freeze holds until it is lifted. An unfreeze anywhere lifts, everywhere, every freeze of
  the service made at or before the one it lifted (`upto`); a freeze made later (a new failed
  rollback) is a new freeze and holds. Of the unlifted freezes of a service the newest is the
  one in force.
- A bad image stays bad (nothing unmarks one): the union of every instance's.
- The last known good of a service is the one promoted last (by its promotion time); on a tie
  the one an instance already has stays. An image that is bad anywhere is never adopted.
- Every rollback another instance carried out in the last hour counts against
  `max_per_hour` here; it is kept as history only, never as this instance's own journal entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

# How far back rollbacks are shared: the window of `max_per_hour`.
RUNS_SHARED_FOR = timedelta(hours=1)


@dataclass(frozen=True)
class SharedFreeze:
    """Automation off for `service` since `since` (recorded by `instance`)."""

    service: str
    since: datetime
    reason: str
    instance: str


@dataclass(frozen=True)
class SharedLift:
    """An unfreeze: every freeze of `service` made at `upto` or earlier is lifted."""

    service: str
    upto: datetime
    lifted_at: datetime
    instance: str


@dataclass(frozen=True)
class SharedBadImage:
    """An image a rollback went away from: never promoted, never rolled back to."""

    service: str
    image_id: str
    image: str
    marked_at: datetime
    reason: str
    instance: str


@dataclass(frozen=True)
class SharedLkg:
    """The last known good of `service` as one instance promoted it: the image, and the
    container it ran in (an instance on the same engine takes its settings from there: the
    settings hold environment values, which never go through the store)."""

    service: str
    project: str
    image: str
    image_id: str
    container_id: str
    promoted_at: datetime
    instance: str


@dataclass(frozen=True)
class SharedRollback:
    """A rollback `instance` carried out (or is carrying out)."""

    id: str
    service: str
    instance: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    bad_image: str
    target_image: str


@dataclass(frozen=True)
class GuardState:
    """Guard state: one instance's (as it shares it) or the cluster's (as the store has it)."""

    freezes: tuple[SharedFreeze, ...] = ()
    lifts: tuple[SharedLift, ...] = ()
    bad_images: tuple[SharedBadImage, ...] = ()
    lkgs: tuple[SharedLkg, ...] = ()
    rollbacks: tuple[SharedRollback, ...] = ()

    def empty(self) -> bool:
        """Whether there is nothing in it."""
        return not (self.freezes or self.lifts or self.bad_images or self.lkgs or self.rollbacks)


@dataclass(frozen=True)
class Unfreeze:
    """Lift this instance's freeze of `service` (made at `since`): `lift` ended it."""

    service: str
    since: datetime
    lift: SharedLift


@dataclass(frozen=True)
class Adoption:
    """What this instance takes over from the others in one round."""

    freezes: tuple[SharedFreeze, ...] = ()
    unfreezes: tuple[Unfreeze, ...] = ()
    lifts: tuple[SharedLift, ...] = ()
    bad_images: tuple[SharedBadImage, ...] = ()
    lkgs: tuple[SharedLkg, ...] = ()
    rollbacks: tuple[SharedRollback, ...] = ()

    def empty(self) -> bool:
        """Whether there is nothing to take over."""
        return not (
            self.freezes
            or self.unfreezes
            or self.lifts
            or self.bad_images
            or self.lkgs
            or self.rollbacks
        )


Row = TypeVar("Row", SharedFreeze, SharedLift, SharedBadImage, SharedLkg, SharedRollback)


def lifted_upto(lifts: Iterable[SharedLift]) -> dict[str, SharedLift]:
    """Per service, the lift that reaches furthest (the newest `upto`)."""
    found: dict[str, SharedLift] = {}
    for lift in lifts:
        best = found.get(lift.service)
        if best is None or lift.upto > best.upto:
            found[lift.service] = lift
    return found


def freezes_in_force(
    freezes: Iterable[SharedFreeze], lifts: Iterable[SharedLift]
) -> dict[str, SharedFreeze]:
    """Per service, the newest freeze that no lift reaches (services not frozen: absent)."""
    reach = lifted_upto(lifts)
    found: dict[str, SharedFreeze] = {}
    for freeze in freezes:
        lift = reach.get(freeze.service)
        if lift is not None and freeze.since <= lift.upto:
            continue
        best = found.get(freeze.service)
        if best is None or (freeze.since, freeze.instance) > (best.since, best.instance):
            found[freeze.service] = freeze
    return found


def latest_lkgs(lkgs: Iterable[SharedLkg], bad: Iterable[SharedBadImage]) -> dict[str, SharedLkg]:
    """Per service, the last known good promoted last, leaving out images bad anywhere; on a
    tie the first one given stays (give an instance's own first)."""
    bad_ids = {(b.service, b.image_id) for b in bad}
    found: dict[str, SharedLkg] = {}
    for lkg in lkgs:
        if (lkg.service, lkg.image_id) in bad_ids:
            continue
        best = found.get(lkg.service)
        if best is None or lkg.promoted_at > best.promoted_at:
            found[lkg.service] = lkg
    return found


def plan(local: GuardState, shared: GuardState, me: str) -> Adoption:
    """What this instance (`me`, whose own state is `local`) takes over from `shared`."""
    freezes = [*local.freezes, *shared.freezes]
    lifts = [*local.lifts, *shared.lifts]
    in_force = freezes_in_force(freezes, lifts)
    mine = {f.service: f for f in local.freezes}
    adopt_freezes = tuple(
        f
        for service, f in sorted(in_force.items())
        if service not in mine or mine[service].since != f.since
    )
    reach = lifted_upto(lifts)
    unfreezes = tuple(
        Unfreeze(service, f.since, reach[service])
        for service, f in sorted(mine.items())
        if service not in in_force and service in reach
    )
    known_lifts = {(lift.service, lift.upto) for lift in local.lifts}
    new_lifts = tuple(
        lift
        for lift in lifted_upto(shared.lifts).values()
        if (lift.service, lift.upto) not in known_lifts
    )
    known_bad = {(b.service, b.image_id) for b in local.bad_images}
    new_bad: dict[tuple[str, str], SharedBadImage] = {}
    for bad in shared.bad_images:
        key = (bad.service, bad.image_id)
        if key not in known_bad and key not in new_bad:
            new_bad[key] = bad
    own_lkg = {lkg.service: lkg for lkg in local.lkgs}
    best = latest_lkgs([*local.lkgs, *shared.lkgs], [*local.bad_images, *shared.bad_images])
    # The same image as this instance's own LKG is not adopted again (its settings are here).
    new_lkgs = tuple(
        lkg
        for service, lkg in sorted(best.items())
        if service not in own_lkg or lkg.image_id != own_lkg[service].image_id
    )
    runs = tuple(r for r in shared.rollbacks if r.instance != me)
    return Adoption(adopt_freezes, unfreezes, new_lifts, tuple(new_bad.values()), new_lkgs, runs)


def unwritten(state: GuardState, written: GuardState) -> GuardState:
    """What of `state` is not yet in the store as `written` last round (rows that are new or
    changed)."""

    def fresh(rows: Sequence[Row], before: Sequence[Row]) -> tuple[Row, ...]:
        seen = set(before)
        return tuple(row for row in rows if row not in seen)

    return GuardState(
        fresh(state.freezes, written.freezes),
        fresh(state.lifts, written.lifts),
        fresh(state.bad_images, written.bad_images),
        fresh(state.lkgs, written.lkgs),
        fresh(state.rollbacks, written.rollbacks),
    )


def redacted(state: GuardState, text: Callable[[str], str]) -> GuardState:
    """The state with its free text (reasons) passed through the redactor: a reason may quote
    a check's output."""
    return replace(
        state,
        freezes=tuple(replace(f, reason=text(f.reason)) for f in state.freezes),
        bad_images=tuple(replace(b, reason=text(b.reason)) for b in state.bad_images),
    )
