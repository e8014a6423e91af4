"""Why a container stopped, decided from `docker inspect` and the events seen: requested stop,
crash, OOM kill (also the cases a test cannot provoke on demand), engine shutdown; restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.docker.access import EngineStatus
from monitor.docker.events import ContainerEvent
from monitor.docker.lifecycle import ContainerMemory, explain_exit, parse_inspect, parse_time

STARTED = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def inspect(
    *,
    status: str = "exited",
    code: int = 0,
    oom: bool = False,
    ran: float = 30.0,
    restarts: int = 0,
    started: datetime = STARTED,
    container: str = "c1",
    **config: Any,
) -> dict[str, Any]:
    finished = started + timedelta(seconds=ran) if status != "running" else None
    return {
        "Id": container,
        "Name": "/shop-web-1",
        "RestartCount": restarts,
        "Image": "sha256:feed",
        "State": {
            "Status": status,
            "ExitCode": code,
            "OOMKilled": oom,
            "StartedAt": stamp(started),
            "FinishedAt": stamp(finished) if finished else "0001-01-01T00:00:00Z",
        },
        "Config": {"Image": "shop/web:1", "Env": [], "Labels": {}, **config},
    }


def event(action: str, at: datetime, container: str = "c1", **attributes: str) -> ContainerEvent:
    return ContainerEvent(action, container, int(at.timestamp() * 1e9), "", attributes)


def test_oom_killed_flag_wins_even_with_exit_code_zero() -> None:
    """OOMKilled with exit 0 (only a child was killed) is still an OOM kill, said plainly."""
    view = parse_inspect(inspect(code=0, oom=True))
    found = explain_exit(view, ContainerMemory(), None)
    assert found.kind == "oom" and found.oom
    assert found.reason == (
        "OOM-killed: a process in the container ran out of memory "
        "(the main process then exited with code 0 after 30s)"
    )


def test_exit_137_alone_is_not_called_an_oom_kill() -> None:
    """Exit 137 with OOMKilled false and no `oom` event is a SIGKILL, not evidence of OOM (a
    `docker stop` of a process ignoring SIGTERM ends the same way)."""
    found = explain_exit(parse_inspect(inspect(code=137)), ContainerMemory(), None)
    assert found.kind == "exited" and not found.oom
    assert found.reason == "exited with code 137 after 30s (killed by SIGKILL)"
    assert "OOM" not in found.reason


def test_oom_event_without_the_flag() -> None:
    """An `oom` event during the run makes it an OOM kill whatever the flag says."""
    memory = ContainerMemory()
    memory.remember(event("oom", STARTED + timedelta(seconds=29)))
    found = explain_exit(parse_inspect(inspect(code=1)), memory, None)
    assert found.kind == "oom"


def test_stop_signal_before_death_is_a_requested_stop() -> None:
    """A kill event with SIGTERM (docker stop), even followed by SIGKILL, means stopped."""
    memory = ContainerMemory()
    memory.remember(event("kill", STARTED + timedelta(seconds=19), signal="15"))
    memory.remember(event("kill", STARTED + timedelta(seconds=29), signal="9"))
    found = explain_exit(parse_inspect(inspect(code=137)), memory, None)
    assert found.kind == "stopped"
    assert found.reason.startswith("stopped on request (SIGTERM through the Docker API")


def test_the_images_own_stop_signal_counts() -> None:
    """An image whose STOPSIGNAL is SIGUSR1 is stopped with it; that is a stop too."""
    memory = ContainerMemory()
    memory.remember(event("kill", STARTED + timedelta(seconds=29), signal="10"))
    view = parse_inspect(inspect(code=0, StopSignal="SIGUSR1"))
    assert explain_exit(view, memory, None).kind == "stopped"


def test_a_stop_of_an_earlier_run_does_not_count() -> None:
    """Only events within the last run explain its end."""
    memory = ContainerMemory()
    memory.remember(event("kill", STARTED - timedelta(minutes=5), signal="15"))
    assert explain_exit(parse_inspect(inspect(code=2)), memory, None).kind == "exited"


def test_docker_kill_is_a_crash_not_an_oom() -> None:
    """SIGKILL sent through the API (docker kill) is reported as such, not as an OOM kill."""
    memory = ContainerMemory()
    memory.remember(event("kill", STARTED + timedelta(seconds=29), signal="9"))
    found = explain_exit(parse_inspect(inspect(code=137)), memory, None)
    assert found.kind == "exited"
    assert found.reason == (
        "exited with code 137 after 30s: SIGKILL sent through the Docker API (docker kill)"
    )


def test_engine_shutdown_is_a_stop() -> None:
    """A container that ended just before the engine went away was stopped by the engine."""
    engine = EngineStatus()
    engine.went_down(STARTED + timedelta(seconds=31), "the event stream ended")
    engine.came_back(STARTED + timedelta(seconds=40))
    found = explain_exit(parse_inspect(inspect(code=137)), ContainerMemory(), engine)
    assert found.kind == "stopped"
    assert found.reason == "stopped when the Docker engine shut down (exit code 137)"
    later = parse_inspect(inspect(code=137, started=STARTED + timedelta(minutes=5)))
    assert explain_exit(later, ContainerMemory(), engine).kind == "exited"


def test_signal_deaths_are_named() -> None:
    """Exit codes above 128 name the signal that killed the process."""
    found = explain_exit(parse_inspect(inspect(code=139, ran=0.4)), ContainerMemory(), None)
    assert found.reason == "exited with code 139 after 400ms (killed by SIGSEGV)"


def test_restarts_by_policy_by_hand_and_on_request() -> None:
    """Policy restarts and a start after a crash count; a requested restart and a recreated
    container do not; the window forgets old ones."""
    memory = ContainerMemory()
    memory.observe(parse_inspect(inspect(status="running", restarts=0)), now=0)
    later = STARTED + timedelta(seconds=60)
    memory.observe(parse_inspect(inspect(status="running", restarts=3, started=later)), 1)
    assert memory.restarts_within(600, now=1) == 3
    assert memory.restarts_within(600, now=602) == 0


def test_restarts_belong_to_their_container() -> None:
    """A container that replaces a crash-looping one (a rollback, a deploy) starts with no
    restarts of its own: the old container's count does not carry over."""
    memory = ContainerMemory()
    memory.observe(parse_inspect(inspect(status="running", restarts=0)), now=0)
    later = STARTED + timedelta(seconds=60)
    assert (
        memory.observe(parse_inspect(inspect(status="running", restarts=2, started=later)), 1) == 2
    )
    manual = STARTED + timedelta(seconds=120)
    assert (
        memory.observe(parse_inspect(inspect(status="running", restarts=2, started=manual)), 2) == 1
    )
    memory.remember(event("kill", manual + timedelta(seconds=5), signal="15"))
    asked = manual + timedelta(seconds=10)
    assert (
        memory.observe(parse_inspect(inspect(status="running", restarts=2, started=asked)), 3) == 0
    )
    assert memory.restarts_within(600, now=3) == 3
    fresh = parse_inspect(inspect(status="running", container="c2", started=asked))
    assert memory.observe(fresh, 4) == 0
    assert memory.restarts_within(600, now=4) == 0


def test_memory_rebuilt_from_the_engines_events_judges_alike() -> None:
    """A fresh memory (opsmon restarted) rebuilt from the engine's past events of the
    container counts the same crash restarts and still calls a requested stop a stop."""
    looping = [
        event("start", STARTED),
        event("die", STARTED + timedelta(seconds=1)),
        event("start", STARTED + timedelta(seconds=2)),
        event("die", STARTED + timedelta(seconds=3)),
        event("start", STARTED + timedelta(seconds=4)),
        event("kill", STARTED + timedelta(seconds=5), signal="15"),
        event("die", STARTED + timedelta(seconds=6)),
        event("start", STARTED + timedelta(seconds=7)),
        event("die", STARTED + timedelta(seconds=8), container="other"),
    ]
    view = parse_inspect(inspect(status="running", restarts=2, started=STARTED))
    memory = ContainerMemory()
    assert not memory.knows("c1")
    wall = (STARTED + timedelta(seconds=10)).timestamp()
    memory.rebuild(view, looping, now=1000.0, wall=wall)
    assert memory.knows("c1")
    memory.observe(view, 1000.0)
    assert memory.restarts_within(600, now=1000.0) == 2  # the start after a stop is no crash
    assert memory.restarts_within(5, now=1000.0) == 0  # they happened 6 s and more ago

    stopped = parse_inspect(inspect(code=0, ran=30))
    kill = event("kill", STARTED + timedelta(seconds=29), signal="15")
    rebuilt = ContainerMemory()
    rebuilt.rebuild(stopped, [event("start", STARTED), kill], now=0.0, wall=wall)
    assert explain_exit(stopped, rebuilt, None).kind == "stopped"


def test_health_output_masks_environment_values_and_env_stays_private() -> None:
    """The probe output never carries a value of the container's environment."""
    data = inspect(status="running", Env=["TOKEN=s3cr3t-token-value", "EMPTY="])
    data["State"]["Health"] = {
        "Status": "unhealthy",
        "Log": [{"Output": "auth failed for s3cr3t-token-value\n"}],
    }
    view = parse_inspect(data)
    assert view.health_output == "auth failed for ***"
    assert "s3cr3t" not in repr(view)


def test_docker_times() -> None:
    """Nanosecond timestamps parse; Docker's zero time means never."""
    assert parse_time("2026-05-01T12:00:00.123456789Z") == STARTED.replace(microsecond=123456)
    assert parse_time("0001-01-01T00:00:00Z") is None
