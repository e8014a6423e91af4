"""Thresholds: a blip is not an incident, recovery needs consecutive successes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.core.health import Health
from monitor.core.result import CheckResult
from monitor.state import CheckState

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
OK = CheckResult(ok=True, connected=True)
FAIL = CheckResult.failure("condition", "[STATUS] (503) == 200", connected=True)
DOWN = CheckResult.failure("connection_refused", "connection refused by db:5432")


def feed(state: CheckState, results: list[CheckResult], step: float = 10) -> list[tuple[str, str]]:
    moves = []
    for index, result in enumerate(results):
        transition = state.record(result, T0 + timedelta(seconds=index * step))
        if transition:
            moves.append((transition.previous.value, transition.current.value))
    return moves


def test_first_success_makes_healthy() -> None:
    """From UNKNOWN one success is enough: there is nothing to debounce yet."""
    state = CheckState("c", failure_threshold=3, success_threshold=2)
    assert feed(state, [OK]) == [("unknown", "healthy")]


def test_failures_below_threshold_do_not_transition() -> None:
    """Two failures with a threshold of three stay HEALTHY; the third turns UNHEALTHY."""
    state = CheckState("c", failure_threshold=3, success_threshold=2)
    assert feed(state, [OK, FAIL, FAIL]) == [("unknown", "healthy")]
    assert state.health is Health.HEALTHY
    transition = state.record(FAIL, T0 + timedelta(minutes=5))
    assert transition is not None and transition.current is Health.UNHEALTHY
    assert transition.result.reason == "[STATUS] (503) == 200"


def test_success_resets_failure_count() -> None:
    """A success between failures resets the count, so flapping never reaches the threshold."""
    state = CheckState("c", failure_threshold=3, success_threshold=2)
    assert feed(state, [OK, FAIL, FAIL, OK, FAIL, FAIL, OK]) == [("unknown", "healthy")]


def test_recovery_needs_success_threshold() -> None:
    """Recovery needs two successes in a row; a success followed by a failure is not enough."""
    state = CheckState("c", failure_threshold=1, success_threshold=2)
    moves = feed(state, [FAIL, OK, FAIL, OK, OK])
    assert moves == [("unknown", "unhealthy"), ("unhealthy", "healthy")]


def test_unknown_result_moves_to_unknown() -> None:
    """A result that cannot be observed (engine unreachable) moves straight to UNKNOWN."""
    state = CheckState("c", failure_threshold=3, success_threshold=2)
    blind = CheckResult(ok=False, unknown=True, kind="docker_unavailable", reason="engine down")
    assert feed(state, [OK, blind]) == [("unknown", "healthy"), ("healthy", "unknown")]


def test_startup_grace_ignores_early_failures() -> None:
    """Failures within startup_grace after the target first answers are not counted."""
    state = CheckState("ready", failure_threshold=2, success_threshold=1, startup_grace=60)
    assert feed(state, [FAIL, FAIL, FAIL, FAIL], step=10) == []
    assert state.in_grace and state.consecutive_failures == 0
    transition = state.record(FAIL, T0 + timedelta(seconds=70))
    assert transition is None
    transition = state.record(FAIL, T0 + timedelta(seconds=80))
    assert transition is not None and transition.current is Health.UNHEALTHY


def test_grace_starts_when_target_first_answers() -> None:
    """Refused connections before the first answer count normally: the grace is for start-up."""
    state = CheckState("ready", failure_threshold=2, success_threshold=1, startup_grace=60)
    assert feed(state, [DOWN, DOWN]) == [("unknown", "unhealthy")]


def test_a_rollback_confirms_a_failure_inside_its_threshold() -> None:
    """A failure still inside its threshold turns UNHEALTHY when a rollback confirms it; a
    passing check, or a failure inside the startup grace, stays as it is."""
    failing = CheckState("c", failure_threshold=3, success_threshold=2)
    feed(failing, [OK, FAIL])
    transition = failing.confirm_failure(T0 + timedelta(minutes=1))
    assert transition is not None and transition.current is Health.UNHEALTHY
    assert transition.result.reason == "[STATUS] (503) == 200"
    assert failing.confirm_failure(T0 + timedelta(minutes=2)) is None  # once

    passing = CheckState("c", failure_threshold=3, success_threshold=2)
    feed(passing, [FAIL, OK])
    assert passing.confirm_failure(T0 + timedelta(minutes=1)) is None
    assert passing.health is Health.HEALTHY

    starting = CheckState("ready", failure_threshold=2, success_threshold=1, startup_grace=60)
    feed(starting, [FAIL, FAIL])
    assert starting.in_grace and starting.confirm_failure(T0 + timedelta(seconds=30)) is None
