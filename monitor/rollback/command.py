"""The `command` strategy: run the deploy command the team already uses, on the LKG tag.

The reference stack deploys with `CI_COMMIT_SHA=<sha> docker compose -f
docker-compose.prod.yml up -d`; this strategy runs the configured command (placeholders
{service} {project} {lkg_tag} {lkg_image} {bad_image}) without a shell, with
`CI_COMMIT_SHA={lkg_tag}` added to opsmon's environment, in its own process group, killed
at the timeout. Its output is kept redacted and bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from monitor.clock import Clock
from monitor.core.durations import format_duration
from monitor.logs import get_logger
from monitor.redaction import Redactor
from monitor.rollback.config import ServiceRollback
from monitor.rollback.docker_ops import ContainerOps, DockerCallFailed
from monitor.rollback.journal import Journal, Rollback, Step
from monitor.rollback.recreate import StrategyFailed

OUTPUT_LIMIT = 8192  # characters kept of the command's output (its head and its tail)
_KILL_GRACE = 5.0


@dataclass(frozen=True)
class CommandResult:
    """How the command ended and what it printed (redacted, bounded)."""

    exit_code: int | None  # None: killed at the timeout
    output: str
    duration: float

    @property
    def ok(self) -> bool:
        """Exit code 0."""
        return self.exit_code == 0


def image_tag(image: str) -> str:
    """`registry:5000/app:abc123` -> `abc123`; `app@sha256:..` and untagged -> ``."""
    if "@" in image:
        return ""
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return ""
    return tag


def render(command: str, values: Mapping[str, str]) -> list[str]:
    """Split `command` into words, then fill the placeholders of each word (so a value with a
    space stays one argument)."""
    words = shlex.split(command)
    rendered = []
    for word in words:
        for key, value in values.items():
            word = word.replace("{" + key + "}", value)
        rendered.append(word)
    return rendered


def bound(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """`text` cut to its head and tail when longer than `limit`."""
    if len(text) <= limit:
        return text
    half = limit // 2
    skipped = len(text) - 2 * half
    return f"{text[:half]}\n... ({skipped} characters left out) ...\n{text[-half:]}"


async def run_command(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str | None,
    limit: float,
    redact: Callable[[str], str],
) -> CommandResult:
    """Run `argv`, capturing stdout and stderr together; kill its process group after `limit`
    seconds."""
    started = time.monotonic()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        reason = f"cannot run {argv[0]!r}: {exc.strerror or exc}"
        return CommandResult(127, reason, time.monotonic() - started)
    chunks: list[bytes] = []
    size = 0

    async def read() -> None:
        nonlocal size
        assert process.stdout is not None
        while chunk := await process.stdout.read(65536):
            chunks.append(chunk)
            size += len(chunk)
            while size > 4 * OUTPUT_LIMIT and len(chunks) > 2:
                # Keep the first chunk (how it started) and the latest ones (how it ended).
                size -= len(chunks.pop(1))

    reader = asyncio.create_task(read())
    exit_code: int | None
    try:
        exit_code = await asyncio.wait_for(process.wait(), limit)
    except TimeoutError:
        exit_code = None
        await _kill_group(process)
    finally:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(reader, _KILL_GRACE)
        reader.cancel()
    text = b"".join(chunks).decode("utf-8", errors="replace")
    if exit_code is None:
        text += f"\n(killed after {format_duration(limit)})"
    return CommandResult(exit_code, bound(redact(text)), time.monotonic() - started)


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            await asyncio.wait_for(process.wait(), _KILL_GRACE)
            return
        except TimeoutError:
            continue


class CommandStrategy:
    """Carries out a `command` rollback; never runs the command twice for one rollback."""

    name = "command"

    def __init__(
        self,
        settings: Mapping[str, ServiceRollback],
        ops: ContainerOps,
        journal: Journal,
        clock: Clock,
        redactor: Redactor,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._settings = settings
        self._ops = ops
        self._journal = journal
        self._clock = clock
        self._redactor = redactor
        self._environ = environ if environ is not None else os.environ
        self._log = get_logger("rollback")

    def _values(self, rollback: Rollback) -> dict[str, str]:
        return {
            "service": rollback.service,
            "project": rollback.project,
            "lkg_tag": rollback.target_tag,
            "lkg_image": rollback.target_image,
            "bad_image": rollback.bad_image,
        }

    async def execute(self, rollback: Rollback) -> None:
        """Run the command once; raise StrategyFailed unless it exits with 0."""
        settings = self._settings.get(rollback.service)
        if settings is None or settings.command is None:
            raise StrategyFailed(f"no command is configured for {rollback.service}")
        if not rollback.target_tag:
            raise StrategyFailed(
                f"the image {rollback.target_image} has no tag to pass as CI_COMMIT_SHA"
            )
        argv = render(settings.command, self._values(rollback))
        env = {
            **self._environ,
            "CI_COMMIT_SHA": rollback.target_tag,
            "OPSMON_ROLLBACK_SERVICE": rollback.service,
            "OPSMON_ROLLBACK_IMAGE": rollback.target_image,
            "OPSMON_ROLLBACK_BAD_IMAGE": rollback.bad_image,
        }
        self._journal.step(rollback, Step.RUN_COMMAND, self._clock.now())
        # The daemon's secrets, and the env values of the containers involved.
        extra = Redactor(rollback.snapshot.secret_values() if rollback.snapshot else ())

        def redact(text: str) -> str:
            return self._redactor.text(extra.text(text))

        result = await run_command(argv, env, settings.cwd, settings.timeout, redact)
        self._journal.set_output(rollback, result.output)
        self._log.info(
            "rollback_command_finished",
            rollback=rollback.id,
            service=rollback.service,
            exit_code=result.exit_code,
            seconds=round(result.duration, 2),
        )
        if result.exit_code is None:
            raise StrategyFailed(
                f"the rollback command did not finish within {format_duration(settings.timeout)}"
            )
        if not result.ok:
            raise StrategyFailed(f"the rollback command exited with code {result.exit_code}")

    async def resume(self, rollback: Rollback) -> None:
        """After a crash: the command may or may not have run. It is not run again; if the
        service now runs the target image the rollback goes on to verification."""
        if rollback.step is Step.PLANNED:
            await self.execute(rollback)
            return
        try:
            containers = await self._ops.service_containers(
                rollback.service, rollback.project or None
            )
        except DockerCallFailed as exc:
            raise StrategyFailed(exc.reason) from None
        running = [
            c
            for c in containers
            if c.get("State") == "running" and c.get("ImageID") == rollback.target_image_id
        ]
        if not running:
            raise StrategyFailed(
                "opsmon stopped while the rollback command ran, and the service does not run "
                f"{rollback.target_image} now; the command is not run a second time"
            )
