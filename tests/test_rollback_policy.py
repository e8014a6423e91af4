"""The rollback decision: when a bad deploy is rolled back, dry-run, or skipped with a reason."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor.rollback.config import Mode
from monitor.rollback.policy import (
    Action,
    Blocker,
    DeployFacts,
    HealthFacts,
    PolicyInput,
    Trigger,
    decide,
    environment_gone,
)

DEPLOYED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
BAD = "sha256:" + "b" * 64
GOOD = "sha256:" + "a" * 64
UNHEALTHY = HealthFacts(unhealthy=("backend-health",), evidence=("backend-health: 404",))


def facts(**changes: object) -> PolicyInput:
    """A backend deployed 3 minutes ago, unhealthy, with a different LKG, in enforce mode."""
    base = PolicyInput(
        service="backend",
        now=DEPLOYED + timedelta(minutes=3),
        mode=Mode.ENFORCE,
        window=900,
        max_per_hour=1,
        opted_in=True,
        is_database=False,
        deploy=DeployFacts("app:v2", BAD, DEPLOYED, ever_healthy=False),
        lkg_image="app:v1",
        lkg_image_id=GOOD,
        health=UNHEALTHY,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_unhealthy_after_deploy_rolls_back() -> None:
    """Unhealthy checks inside the window with an LKG: roll back, saying from what to what."""
    decision = decide(facts())
    assert decision.action is Action.ROLLBACK
    assert decision.trigger is Trigger.UNHEALTHY
    assert "from app:v2 (bbbbbbbbbbbb) to app:v1 (aaaaaaaaaaaa)" in decision.reason
    assert decision.evidence == ("backend-health: 404",)


def test_dry_run_mode_only_plans() -> None:
    """In dry_run mode the same situation gives a dry run that says what would happen."""
    decision = decide(facts(mode=Mode.DRY_RUN))
    assert decision.action is Action.DRY_RUN
    assert decision.reason.startswith("dry run: backend is unhealthy since its deploy")


def test_crash_loop_triggers() -> None:
    """A crash loop is reason enough, even before a check turns unhealthy."""
    decision = decide(facts(health=HealthFacts(crash_looping=True)))
    assert decision.action is Action.ROLLBACK and decision.trigger is Trigger.CRASH_LOOP


def test_never_healthy_by_the_deadline_triggers_at_the_deadline() -> None:
    """A deploy that never became healthy is rolled back when the window ends, not before
    and not long after."""
    quiet = HealthFacts()
    at_deadline = facts(health=quiet, now=DEPLOYED + timedelta(seconds=900))
    assert decide(at_deadline).trigger is Trigger.NEVER_HEALTHY
    assert decide(at_deadline).action is Action.ROLLBACK
    assert decide(facts(health=quiet)).action is Action.NONE
    later = facts(health=quiet, now=DEPLOYED + timedelta(minutes=30))
    assert decide(later).action is Action.NONE
    was_healthy = facts(
        health=quiet,
        now=DEPLOYED + timedelta(seconds=900),
        deploy=DeployFacts("app:v2", BAD, DEPLOYED, ever_healthy=True),
    )
    assert decide(was_healthy).action is Action.NONE


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"is_database": True}, "backend is a database; a database is never rolled back"),
        ({"opted_in": False}, "backend is not listed under rollback.services"),
        (
            {"lkg_image": None, "lkg_image_id": None},
            "backend has no last known good image yet",
        ),
        ({"target_is_bad": True}, "failed before; it is not rolled back to"),
        (
            {"target_missing": "the engine has no image app:v1"},
            "the engine has no image app:v1 (opsmon never pulls)",
        ),
        ({"frozen": "rollback 1 failed"}, "automation is frozen for backend (rollback 1 failed)"),
        ({"silenced": "deploy freeze"}, "alerts of backend are silenced (deploy freeze)"),
        ({"in_flight": "r1"}, "another rollback of backend is in flight (r1)"),
        (
            {"rollbacks_last_hour": 1},
            "backend was rolled back 1 time(s) in the last hour (max_per_hour: 1)",
        ),
    ],
)
def test_each_guard_stops_a_warranted_rollback_and_says_why(
    changes: dict[str, object], reason: str
) -> None:
    """A warranted rollback that a guard stops is a skip whose reason names the guard."""
    decision = decide(facts(**changes))
    assert decision.action is Action.SKIP
    assert decision.reason.startswith("no rollback: ")
    assert reason in decision.reason


POINTLESS = [
    (
        {"blockers": (Blocker("DatabaseConnectionFailing", "PostgreSQL is down."),)},
        "a rollback cannot help: DatabaseConnectionFailing: PostgreSQL is down.",
    ),
    (
        {"blockers": (Blocker("SlowResponses", "backend answers slowly."),)},
        "a rollback cannot help: SlowResponses",
    ),
    ({"lkg_image_id": BAD}, "already runs the last known good image bbbbbbbbbbbb"),
]


@pytest.mark.parametrize(("changes", "reason"), POINTLESS)
def test_a_rollback_that_would_not_be_attempted_is_no_skip(
    changes: dict[str, object], reason: str
) -> None:
    """A failure a rollback cannot help (db down, slow release) or a plan that changes
    nothing is no automatic decision at all: no RollbackSkipped noise."""
    decision = decide(facts(**changes))
    assert decision.action is Action.NONE
    assert reason in decision.reason


@pytest.mark.parametrize(("changes", "reason"), POINTLESS)
def test_an_operator_is_told_why_a_rollback_would_not_help(
    changes: dict[str, object], reason: str
) -> None:
    """`opsmon rollback` still gets the reason as a skip."""
    decision = decide(facts(manual=True, **changes))
    assert decision.action is Action.SKIP
    assert reason in decision.reason


def test_outside_the_window_nothing_happens() -> None:
    """An old deploy that fails is left to the ordinary alerts (no rollback, no skip alert)."""
    decision = decide(facts(now=DEPLOYED + timedelta(minutes=20)))
    assert decision.action is Action.NONE
    assert "outside the rollback window of 15m" in decision.reason


def test_a_rollback_container_is_not_rolled_back_again() -> None:
    """The container a rollback made does not open a new window of its own."""
    rolled = DeployFacts("app:v1", GOOD, DEPLOYED, ever_healthy=False, origin="rollback")
    decision = decide(facts(deploy=rolled, lkg_image_id="sha256:" + "c" * 64))
    assert decision.action is Action.NONE


def test_healthy_service_needs_nothing() -> None:
    """No trigger, no action."""
    assert decide(facts(health=HealthFacts())).action is Action.NONE


def test_manual_rollback_uses_the_same_guards_and_force_skips_only_the_window() -> None:
    """`opsmon rollback` needs no failing check, is told why outside the window, passes with
    --force, and still stops at a guard such as the freeze; dry_run mode does not hold back
    an operator's rollback (only --dry-run does)."""
    late = DEPLOYED + timedelta(hours=2)
    manual = facts(manual=True, health=HealthFacts(), now=late)
    outside = decide(manual)
    assert outside.action is Action.SKIP and "--force overrides" in outside.reason
    assert decide(replace(manual, force=True)).action is Action.ROLLBACK
    frozen = decide(replace(manual, force=True, frozen="rollback 1 failed"))
    assert frozen.action is Action.SKIP and "frozen" in frozen.reason
    dry = decide(replace(manual, force=True, dry_run=True))
    assert dry.action is Action.DRY_RUN
    by_hand_in_dry_run_mode = decide(replace(manual, force=True, mode=Mode.DRY_RUN))
    assert by_hand_in_dry_run_mode.action is Action.ROLLBACK


def test_manual_target_image() -> None:
    """`--to IMAGE` rolls back to that image instead of the LKG."""
    other = "sha256:" + "c" * 64
    decision = decide(facts(manual=True, force=True, target_image="app:v0", target_image_id=other))
    assert decision.action is Action.ROLLBACK
    assert decision.target_image == "app:v0" and decision.target_image_id == other


ENV_MISSING = (Blocker("EnvironmentVariablesMissing", "backend cannot start (FEATURE_URL)."),)


def test_a_release_needing_a_new_variable_is_rolled_back() -> None:
    """The new image needs a variable the old did not, and the last known good ran with the
    environment the service has now: the rollback goes ahead."""
    decision = decide(facts(blockers=ENV_MISSING, lkg_env_gone=()))
    assert decision.action is Action.ROLLBACK


def test_a_variable_gone_for_the_last_known_good_too_is_not_rolled_back() -> None:
    """The variable the last known good needs is gone as well (or nothing is known of its
    environment): no rollback, and the reason names the variable."""
    gone = decide(facts(blockers=ENV_MISSING, lkg_env_gone=("API_TOKEN",)))
    assert gone.action is Action.NONE
    assert "needs API_TOKEN too" in gone.reason
    assert decide(facts(blockers=ENV_MISSING)).action is Action.NONE


def test_environment_gone_compares_names_only() -> None:
    """Variables set for the last known good and unset (or empty) now, by name."""
    lkg = {"DATABASE_URL": "postgres://x", "API_TOKEN": "t", "EMPTY": ""}
    assert environment_gone(lkg, {"DATABASE_URL": "other", "API_TOKEN": "u", "NEW": "1"}) == ()
    assert environment_gone(lkg, {"DATABASE_URL": "x", "API_TOKEN": ""}) == ("API_TOKEN",)
