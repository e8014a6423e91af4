"""The gate's verdict machine: plain records in, a verdict (or progress) out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.gate.verdict import (
    Candidate,
    CheckSeen,
    ContainerSeen,
    Evidence,
    GateState,
    Observation,
    Phase,
    Rules,
    choose,
    next_wake,
    start,
    step,
)

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
RULES = Rules(healthy_for=30, timeout=300)


def at(seconds: float) -> datetime:
    """T0 plus `seconds`."""
    return T0 + timedelta(seconds=seconds)


def container(**changes: object) -> ContainerSeen:
    """The new container, running, unless told otherwise."""
    fields: dict[str, object] = {
        "id": "c1",
        "name": "app_backend_1",
        "image": "app/backend:8a1b4d7",
        "image_id": "sha256:" + "ab" * 32,
        "status": "running",
        "started_at": T0,
    }
    fields.update(changes)
    return ContainerSeen(**fields)  # type: ignore[arg-type]


HEALTHY = (CheckSeen("backend-health", "healthy"), CheckSeen("backend-ready", "healthy"))


def run(
    observations: list[tuple[float, ContainerSeen | None, tuple[CheckSeen, ...]]],
) -> tuple[GateState, list[str]]:
    """Feed observations to a fresh gate; return the last state and every progress text."""
    state = start("backend", T0, RULES)
    texts: list[str] = []
    for seconds, seen, checks in observations:
        state, changes = step(state, Observation(at(seconds), seen, checks))
        texts += [c.text for c in changes]
    return state, texts


def test_promoted_after_every_check_stayed_healthy_for_healthy_for() -> None:
    """Healthy from 1 s on: still waiting at 30 s, promoted at 31 s."""
    state, texts = run([(1, container(), HEALTHY), (30, container(), HEALTHY)])
    assert state.phase is Phase.HEALTHY
    state, more = step(state, Observation(at(31), container(), HEALTHY))
    assert state.phase is Phase.PROMOTED and state.finished_at == at(31)
    assert "promoted" in more[-1].text and "app/backend:8a1b4d7" in more[-1].text
    assert any("seen" in text for text in texts)


def test_a_check_that_is_not_healthy_starts_the_stretch_again() -> None:
    """A check turning unknown at 20 s means the 30 s count restarts from its recovery."""
    blip = (CheckSeen("backend-health", "unknown", "no answer"), HEALTHY[1])
    state, _ = run([(1, container(), HEALTHY), (20, container(), blip), (25, container(), HEALTHY)])
    state, _ = step(state, Observation(at(40), container(), HEALTHY))
    assert state.phase is Phase.HEALTHY
    state, _ = step(state, Observation(at(55), container(), HEALTHY))
    assert state.phase is Phase.PROMOTED


def test_progress_line_says_how_many_checks_pass() -> None:
    """One of two checks healthy shows as `checks passing 1/2` with the other's reason."""
    waiting = (HEALTHY[0], CheckSeen("backend-ready", "unknown", "[STATUS] (503) == 200"))
    _, texts = run([(1, container(), waiting)])
    assert "checks passing 1/2; backend-ready: unknown ([STATUS] (503) == 200)" in texts


def test_unhealthy_check_fails_at_once_with_the_reason() -> None:
    """A check unhealthy by its thresholds fails the deploy without waiting for the timeout."""
    bad = (CheckSeen("backend-health", "unhealthy", "[STATUS] (500) == 200"), HEALTHY[1])
    state, _ = run([(1, container(), bad)])
    assert state.phase is Phase.FAILED and state.failure is not None
    assert state.failure.evidence is Evidence.UNHEALTHY
    assert state.failure.details == ("backend-health: [STATUS] (500) == 200",)


def test_crash_loop_names_the_last_exit_seen() -> None:
    """Three restarts are a crash loop; the exit seen while it was down is the evidence even
    when the container runs again at the moment of the verdict."""
    down = container(status="restarting", restart_count=1, exit_reason="exited with code 3")
    looping = container(restart_count=3)
    state, _ = run([(1, down, ()), (3, looping, ())])
    assert state.phase is Phase.FAILED and state.failure is not None
    assert state.failure.evidence is Evidence.CRASH_LOOP
    assert "restarted 3 times" in state.failure.summary
    assert "last exit: exited with code 3" in state.failure.summary


def test_exit_without_restart_policy_fails_at_once() -> None:
    """An exit Docker will not restart is an exit at start."""
    gone = container(status="exited", exit_code=1, exit_reason="exited with code 1 after 0.2s")
    state, _ = run([(1, gone, ())])
    assert state.failure is not None and state.failure.evidence is Evidence.EXITED
    assert state.failure.summary == "backend exited at start: exited with code 1 after 0.2s"


def test_exit_under_a_restart_policy_waits_for_the_crash_loop() -> None:
    """One exit that Docker restarts is not a verdict yet."""
    restarting = container(status="restarting", restart_count=1, will_restart=True)
    state, _ = run([(1, restarting, ())])
    assert state.phase is Phase.WAITING_HEALTHY


def test_missing_variable_is_named() -> None:
    """A required variable missing fails the deploy naming it (never a value)."""
    seen = container(status="exited", exit_code=1, missing_env=("ANTHROPIC_API_KEY",))
    state, _ = run([(1, seen, ())])
    assert state.failure is not None and state.failure.evidence is Evidence.MISSING_ENV
    assert "ANTHROPIC_API_KEY" in state.failure.summary


def test_oom_kill_fails_at_once() -> None:
    """An OOM kill is evidence even before any check ran."""
    state, _ = run([(1, container(status="exited", exit_code=137, oom_killed=True), ())])
    assert state.failure is not None and state.failure.evidence is Evidence.OOM


def test_restart_while_healthy_starts_the_stretch_again() -> None:
    """A restart of a healthy container resets `healthy since` and is reported."""
    state, texts = run([(1, container(), HEALTHY), (20, container(restart_count=1), HEALTHY)])
    assert state.healthy_since == at(20)
    assert any("restarted (restart 1" in text for text in texts)


def test_times_out_without_a_container() -> None:
    """No container by the deadline: timed out, saying so."""
    state, texts = run([(10, None, ()), (300, None, ())])
    assert state.phase is Phase.TIMED_OUT
    assert "no new container of backend appeared" in texts[-1]


def test_times_out_while_checks_never_settle() -> None:
    """Checks that stay unknown until the deadline: timed out with what was missing."""
    pending = (CheckSeen("backend-health", "unknown", "connection refused"),)
    state, _ = run([(1, container(), pending), (300, container(), pending)])
    assert state.phase is Phase.TIMED_OUT
    assert "backend-health: unknown (connection refused)" in state.summary


def test_a_verdict_is_final() -> None:
    """Observations after a verdict change nothing."""
    state, _ = run([(1, container(status="exited", exit_code=1), ())])
    again, changes = step(state, Observation(at(2), container(), HEALTHY))
    assert again == state and changes == []


def test_next_wake_stops_at_the_end_of_the_healthy_stretch() -> None:
    """The gate wakes when the stretch ends, not a whole pause later."""
    state, _ = run([(1, container(), HEALTHY)])
    assert next_wake(state, at(30.8), 0.5) == 0.2
    assert next_wake(state, at(10), 0.5) == 0.5


def test_choose_takes_the_newest_container_or_the_one_with_the_image() -> None:
    """Without --image the newest one; with it, the newest one running that reference or id."""
    old = Candidate("a", "app:v1", "sha256:" + "1" * 64, "running", 100)
    new = Candidate("b", "app:v2", "sha256:" + "2" * 64, "running", 200)
    assert choose([old, new], None).id == "b"
    assert choose([old, new], "app:v1").id == "a"
    assert choose([old, new], "1" * 12).id == "a"
    assert choose([old, new], "111").id is None  # too short to be an id
    missing = choose([old], "app:v3")
    assert missing.id is None and "app:v3" in missing.waiting_for
