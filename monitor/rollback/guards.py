"""This instance's rollback guard state as a cluster shares it (monitor/cluster/guard_sync.py),
and taking over what the other instances recorded, in rollback's own SQLite store.

Taken over: freezes and lifts (`opsmon rollback unfreeze` anywhere), bad images, the last
known good of a service, and the rollbacks other instances carried out (into
`rollback_peer_runs`, history for `max_per_hour` only: the journal's crash recovery never
sees them). A last known good needs the settings of the container it ran in, which hold
environment values and so never go through the cluster store: they are read from this
instance's engine (the container the other instance promoted, or any container of the service
on that image); without one the last known good is not taken over.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from monitor.cluster.rollback_share import (
    Adoption,
    GuardState,
    SharedBadImage,
    SharedFreeze,
    SharedLift,
    SharedLkg,
    SharedRollback,
)
from monitor.logs import get_logger
from monitor.rollback.docker_ops import ContainerOps, DockerCallFailed
from monitor.rollback.journal import Journal
from monitor.rollback.snapshot import Snapshot, SnapshotError
from monitor.rollback.store import PeerRun, RollbackStore

# Finds the settings of a last known good on this instance's engine (None: not here).
SnapshotSource = Callable[[SharedLkg], Awaitable[Snapshot | None]]


def local_guards(store: RollbackStore, me: str, since: datetime) -> GuardState:
    """This instance's guard state: every freeze and lift, bad image and last known good, and
    its own rollbacks that changed containers started at `since` or later."""
    journal = Journal(store)
    return GuardState(
        freezes=tuple(SharedFreeze(f.service, f.since, f.reason, me) for f in store.freezes()),
        lifts=tuple(
            SharedLift(lift.service, lift.upto, lift.lifted_at, me) for lift in store.lifts()
        ),
        bad_images=tuple(
            SharedBadImage(b.service, b.image_id, b.image, b.marked_at, b.reason, me)
            for b in store.all_bad_images()
        ),
        lkgs=tuple(
            SharedLkg(
                lkg.service,
                lkg.project,
                lkg.image,
                lkg.image_id,
                lkg.snapshot.container_id,
                lkg.promoted_at,
                me,
            )
            for lkg in store.all_lkg().values()
        ),
        rollbacks=tuple(
            SharedRollback(
                r.id,
                r.service,
                me,
                r.status.value,
                r.started_at,
                r.finished_at,
                r.bad_image,
                r.target_image,
            )
            for r in journal.executed(since)
        ),
    )


@dataclass
class Adopted:
    """What one round took over (for the log, alerts and metrics)."""

    frozen: list[str] = field(default_factory=list)
    unfrozen: list[str] = field(default_factory=list)
    bad_images: int = 0
    lkgs: dict[str, str] = field(default_factory=dict)  # service -> image id
    lkg_missing: list[SharedLkg] = field(default_factory=list)  # no settings on this engine
    rollbacks: int = 0


async def adopt(store: RollbackStore, adoption: Adoption, snapshot_of: SnapshotSource) -> Adopted:
    """Take `adoption` (cluster/rollback_share.py `plan`) into `store`."""
    done = Adopted()
    # The settings first: they need the engine, and nothing is written before they are read.
    snapshots = {lkg.service: await snapshot_of(lkg) for lkg in adoption.lkgs}
    with store.transaction():
        for lift in adoption.lifts:
            store.record_lift(lift.service, lift.upto, lift.lifted_at)
        for unfreeze in adoption.unfreezes:
            if store.lift(unfreeze.service, unfreeze.lift.upto):
                done.unfrozen.append(unfreeze.service)
        for freeze in adoption.freezes:
            store.freeze(freeze.service, freeze.reason, freeze.since)
            done.frozen.append(freeze.service)
        for bad in adoption.bad_images:
            store.mark_bad(bad.service, bad.image_id, bad.image, bad.reason, bad.marked_at)
            done.bad_images += 1
        for lkg in adoption.lkgs:
            snapshot = snapshots[lkg.service]
            if snapshot is None:
                done.lkg_missing.append(lkg)
                continue
            store.save_lkg(lkg.service, lkg.project, snapshot, lkg.promoted_at)
            deploy = store.deploy_of(lkg.service, snapshot.container_id)
            if deploy is not None and deploy.status == "new":
                store.set_deploy_status(deploy.id, "lkg", lkg.promoted_at)
            done.lkgs[lkg.service] = lkg.image_id
        store.add_peer_runs(
            [
                PeerRun(
                    r.id,
                    r.service,
                    r.instance,
                    r.status,
                    r.started_at,
                    r.finished_at,
                    r.bad_image,
                    r.target_image,
                )
                for r in adoption.rollbacks
            ]
        )
        done.rollbacks = len(adoption.rollbacks)
    return done


async def engine_snapshot(ops: ContainerOps, lkg: SharedLkg) -> Snapshot | None:
    """The settings of a last known good another instance promoted, from this instance's
    engine: its container, or else any container of the service on that image (None: none)."""
    try:
        data = await ops.inspect(lkg.container_id)
        if data is None or data.get("Image") != lkg.image_id:
            data = None
            for summary in await ops.service_containers(lkg.service, lkg.project or None):
                if summary.get("ImageID") == lkg.image_id:
                    data = await ops.inspect(str(summary["Id"]))
                    break
        return Snapshot.from_inspect(data) if data is not None else None
    except (DockerCallFailed, SnapshotError) as exc:
        get_logger("rollback").warning(
            "rollback_lkg_inspect_failed", service=lkg.service, reason=str(exc)
        )
        return None


class StoreGuards:
    """Rollback's guard state in `store`, as the cluster shares it; last known goods taken
    over get their settings from the engine behind `ops`."""

    def __init__(self, store: RollbackStore, ops: ContainerOps) -> None:
        self._store = store
        self._ops = ops

    def guard_state(self, me: str, since: datetime) -> GuardState:
        """This instance's guard state (see `local_guards`)."""
        return local_guards(self._store, me, since)

    async def adopt_guards(self, adoption: Adoption) -> Adopted:
        """Take `adoption` over (see `adopt`)."""
        return await adopt(self._store, adoption, lambda lkg: engine_snapshot(self._ops, lkg))
