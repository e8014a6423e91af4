"""The `recreate` strategy: replace the bad container by one made from the LKG snapshot.

Stop the bad container, rename it `<name>_failed_<id12>`, create the replacement from the
snapshot with the LKG image, connect its other networks, start it. Each step is written to
the journal before it is taken and checks the engine first, so running the sequence again
after a crash finishes what is left and repeats nothing. If a step fails, the old container
is put back (its name, and started again if it ran). Nothing is removed here: the failed
container stays, stopped, for inspection (once the rollback is verified, the coordinator
replaces it by a copy without the service's Compose labels: monitor/rollback/retire.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from monitor.clock import Clock
from monitor.docker.lifecycle import parse_time
from monitor.logs import get_logger
from monitor.rollback.docker_ops import ContainerOps, DockerCallFailed
from monitor.rollback.journal import Journal, Rollback, Step
from monitor.rollback.snapshot import Snapshot, short_id

DEFAULT_STOP_TIMEOUT = 10
# The engine's and opsmon's clocks, compared when adopting a replacement after a crash.
_CLOCK_SLACK = timedelta(seconds=5)


class StrategyFailed(Exception):
    """A rollback step failed; `reason` says which and why; `undone` whether the old
    container was put back."""

    def __init__(self, reason: str, undone: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.undone = undone


def failed_name(name: str, container_id: str) -> str:
    """The name the bad container keeps for inspection."""
    return f"{name}_failed_{container_id[:12]}"


def _unused_name(name: str, container_id: str) -> str:
    return f"{name}_unused_{container_id[:12]}"


def _running(data: dict[str, Any] | None) -> bool:
    return bool(data and (data.get("State") or {}).get("Running"))


def _name(data: dict[str, Any]) -> str:
    return str(data.get("Name") or "").lstrip("/")


def _stop_timeout(data: dict[str, Any]) -> int:
    value = (data.get("Config") or {}).get("StopTimeout")
    return int(value) if isinstance(value, int) and value >= 0 else DEFAULT_STOP_TIMEOUT


class RecreateStrategy:
    """Carries out (or finishes, or undoes) a `recreate` rollback."""

    name = "recreate"

    def __init__(self, ops: ContainerOps, journal: Journal, clock: Clock) -> None:
        self._ops = ops
        self._journal = journal
        self._clock = clock
        self._log = get_logger("rollback")

    async def execute(self, rollback: Rollback) -> None:
        """Take every step that is not done yet; undo and raise StrategyFailed if one fails."""
        try:
            await self._forward(rollback)
        except _Conflict as exc:
            # Someone else changed the service meanwhile: do not touch their containers.
            raise StrategyFailed(exc.reason) from None
        except DockerCallFailed as exc:
            reason = exc.reason
            self._log.warning(
                "rollback_step_failed",
                rollback=rollback.id,
                step=rollback.step.value,
                reason=reason,
            )
            try:
                await self.undo(rollback)
            except DockerCallFailed as undo_exc:
                raise StrategyFailed(
                    f"{reason}; putting the old container back failed too: {undo_exc.reason}"
                ) from None
            raise StrategyFailed(reason, undone=True) from None

    async def resume(self, rollback: Rollback) -> None:
        """Continue after a crash: finish the steps (or the undo) that were left."""
        if rollback.step in (Step.UNDO,):
            await self.undo(rollback)
            raise StrategyFailed("the rollback was being undone when opsmon stopped", undone=True)
        await self.execute(rollback)

    # --- forward ----------------------------------------------------------------------------
    async def _forward(self, r: Rollback) -> None:
        snapshot = r.snapshot
        assert snapshot is not None, "a recreate rollback carries its snapshot"
        now = self._clock.now
        old = await self._ops.inspect(r.old_container_id)
        if old is not None:
            if _running(old):
                self._journal.step(r, Step.STOP_OLD, now())
                await self._ops.stop(r.old_container_id, _stop_timeout(old))
            if _name(old) == r.old_name:
                self._journal.step(r, Step.RENAME_OLD, now())
                await self._ops.rename(r.old_container_id, r.failed_name)
        new = await self._replacement(r)
        if new is None:
            self._journal.step(r, Step.CREATE_NEW, now())
            body = snapshot.create_body(r.target_image)
            new_id = await self._ops.create(body, r.old_name, snapshot)
            self._journal.set_new_container(r, new_id, now())
            new = await self._ops.inspect(new_id)
            if new is None:
                raise DockerCallFailed(f"the new container {new_id[:12]} vanished after create")
        await self._connect(r, snapshot, new)
        if not _running(new):
            self._journal.step(r, Step.START_NEW, now())
            assert r.new_container_id is not None
            await self._ops.start(r.new_container_id)

    async def _replacement(self, r: Rollback) -> dict[str, Any] | None:
        """The replacement if it exists already (created before a crash), else None."""
        if r.new_container_id:
            data = await self._ops.inspect(r.new_container_id)
            if data is not None:
                return data
        holder = await self._ops.inspect(r.old_name)
        if holder is None or holder.get("Id") == r.old_container_id:
            return None
        # Killed between create and writing its id: the container with the name on the
        # target image, created after the rollback started, is ours.
        created = parse_time(holder.get("Created"))
        ours = (
            holder.get("Image") == r.target_image_id
            and created is not None
            and created >= r.started_at - _CLOCK_SLACK
        )
        if not ours:
            raise _Conflict(
                f"another container named {r.old_name} ({short_id(str(holder.get('Id')))}) "
                "appeared during the rollback (a deploy at the same time?); left as it is"
            )
        self._journal.set_new_container(r, str(holder["Id"]), self._clock.now())
        return holder

    async def _connect(self, r: Rollback, snapshot: Snapshot, new: dict[str, Any]) -> None:
        extra = snapshot.extra_networks()
        if not extra:
            return
        attached = set(((new.get("NetworkSettings") or {}).get("Networks") or {}).keys())
        missing = {name: ep for name, ep in extra.items() if name not in attached}
        if not missing:
            return
        self._journal.step(r, Step.CONNECT_NEW, self._clock.now())
        assert r.new_container_id is not None
        for network, endpoint in missing.items():
            await self._ops.connect(r.new_container_id, network, endpoint, snapshot)

    # --- undo -------------------------------------------------------------------------------
    async def undo(self, r: Rollback) -> None:
        """Put the old container back: the replacement stopped and renamed aside, the old one
        renamed back and started again if it was running."""
        now = self._clock.now
        if r.step is not Step.UNDO:
            self._journal.step(r, Step.UNDO, now())
        new_id = r.new_container_id
        if new_id is None:
            holder = await self._ops.inspect(r.old_name)
            if (
                holder is not None
                and holder.get("Id") != r.old_container_id
                and holder.get("Image") == r.target_image_id
            ):
                new_id = str(holder["Id"])
        if new_id is not None:
            new = await self._ops.inspect(new_id)
            if new is not None:
                if _running(new):
                    await self._ops.stop(new_id, _stop_timeout(new))
                if _name(new) == r.old_name:
                    await self._ops.rename(new_id, _unused_name(r.old_name, new_id))
        old = await self._ops.inspect(r.old_container_id)
        if old is None:
            raise DockerCallFailed(f"the old container {r.old_container_id[:12]} is gone")
        if _name(old) != r.old_name:
            await self._ops.rename(r.old_container_id, r.old_name)
        if r.old_was_running and not _running(old):
            await self._ops.start(r.old_container_id)
        self._log.info("rollback_undone", rollback=r.id, service=r.service)


class _Conflict(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
