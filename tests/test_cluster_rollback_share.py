"""The rules by which cluster instances share rollback's guard state (pure): freezes hold
until lifted, a lift anywhere ends older freezes everywhere but not newer ones, bad images
are never forgotten, the last known good promoted last wins, and others' rollbacks are taken
over as history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.cluster.rollback_share import (
    GuardState,
    SharedBadImage,
    SharedFreeze,
    SharedLift,
    SharedLkg,
    SharedRollback,
    freezes_in_force,
    latest_lkgs,
    plan,
    redacted,
    unwritten,
)

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def freeze(service: str, minutes: float, instance: str = "a") -> SharedFreeze:
    return SharedFreeze(service, at(minutes), f"rollback r{minutes} failed", instance)


def lift(service: str, upto: float, when: float, instance: str = "b") -> SharedLift:
    return SharedLift(service, at(upto), at(when), instance)


def lkg(service: str, image_id: str, minutes: float, instance: str = "a") -> SharedLkg:
    return SharedLkg(
        service, "shop", f"app:{image_id}", image_id, f"c-{image_id}", at(minutes), instance
    )


def bad(service: str, image_id: str, instance: str = "a") -> SharedBadImage:
    return SharedBadImage(service, image_id, f"app:{image_id}", at(1), "it crash-looped", instance)


def run(run_id: str, instance: str, status: str = "succeeded") -> SharedRollback:
    return SharedRollback(run_id, "web", instance, status, at(5), at(6), "app:v2", "app:v1")


def test_a_freeze_holds_until_a_lift_reaches_it() -> None:
    """An unlifted freeze is in force; a lift of it (or of a later one) ends it."""
    assert freezes_in_force([freeze("web", 1)], []) == {"web": freeze("web", 1)}
    assert freezes_in_force([freeze("web", 1)], [lift("web", 1, 2)]) == {}
    assert freezes_in_force([freeze("web", 1)], [lift("web", 3, 4)]) == {}


def test_a_freeze_made_after_a_lift_holds() -> None:
    """A new failed rollback after an unfreeze freezes again: the old lift does not reach it."""
    found = freezes_in_force([freeze("web", 1), freeze("web", 5)], [lift("web", 1, 2)])
    assert found == {"web": freeze("web", 5)}


def test_a_peers_freeze_is_adopted_and_a_peers_lift_ends_ours() -> None:
    """B takes A's freeze over; A, whose freeze B lifted, lifts it too and keeps the lift."""
    a_state = GuardState(freezes=(freeze("web", 1, "a"),))
    b_adopts = plan(GuardState(), a_state, "b")
    assert b_adopts.freezes == (freeze("web", 1, "a"),)

    b_lift = lift("web", 1, 3, "b")
    a_adopts = plan(a_state, GuardState(freezes=a_state.freezes, lifts=(b_lift,)), "a")
    assert [u.service for u in a_adopts.unfreezes] == ["web"]
    assert a_adopts.lifts == (b_lift,)
    assert a_adopts.freezes == ()


def test_an_old_shared_freeze_does_not_come_back_after_a_local_unfreeze() -> None:
    """This instance lifted a newer freeze: an older one from the store stays lifted."""
    local = GuardState(lifts=(lift("web", 5, 6, "b"),))
    shared = GuardState(freezes=(freeze("web", 1, "a"),))
    assert plan(local, shared, "b").freezes == ()


def test_of_two_unlifted_freezes_the_newest_is_kept() -> None:
    """Our newer freeze stays; an older one from the store changes nothing."""
    local = GuardState(freezes=(freeze("web", 5, "b"),))
    assert plan(local, GuardState(freezes=(freeze("web", 1, "a"),)), "b").freezes == ()
    newer = plan(
        GuardState(freezes=(freeze("web", 1, "b"),)),
        GuardState(freezes=(freeze("web", 5, "a"),)),
        "b",
    )
    assert newer.freezes == (freeze("web", 5, "a"),)


def test_bad_images_are_the_union() -> None:
    """Bad images another instance marked are taken over once; ours are not repeated."""
    local = GuardState(bad_images=(bad("web", "v2", "b"),))
    shared = GuardState(
        bad_images=(bad("web", "v2", "a"), bad("web", "v3", "a"), bad("api", "v9", "a"))
    )
    adopted = plan(local, shared, "b").bad_images
    assert {(b.service, b.image_id) for b in adopted} == {("web", "v3"), ("api", "v9")}


def test_the_last_known_good_promoted_last_wins() -> None:
    """A newer LKG elsewhere replaces ours; an older one does not; an equal time keeps ours."""
    ours = lkg("web", "v1", 10, "b")
    assert plan(GuardState(lkgs=(ours,)), GuardState(lkgs=(lkg("web", "v2", 20),)), "b").lkgs == (
        lkg("web", "v2", 20),
    )
    assert plan(GuardState(lkgs=(ours,)), GuardState(lkgs=(lkg("web", "v0", 5),)), "b").lkgs == ()
    assert plan(GuardState(lkgs=(ours,)), GuardState(lkgs=(lkg("web", "v2", 10),)), "b").lkgs == ()
    assert plan(GuardState(), GuardState(lkgs=(lkg("web", "v1", 10),)), "b").lkgs == (
        lkg("web", "v1", 10),
    )


def test_the_same_image_is_not_adopted_again_and_a_bad_one_never() -> None:
    """Our LKG of the same image (with its settings here) stays; an image bad anywhere is
    never adopted as last known good."""
    ours = lkg("web", "v1", 10, "b")
    assert plan(GuardState(lkgs=(ours,)), GuardState(lkgs=(lkg("web", "v1", 30),)), "b").lkgs == ()
    shared = GuardState(lkgs=(lkg("web", "v2", 20),), bad_images=(bad("web", "v2"),))
    assert plan(GuardState(lkgs=(ours,)), shared, "b").lkgs == ()
    assert latest_lkgs([lkg("web", "v2", 20)], [bad("web", "v2")]) == {}


def test_others_rollbacks_are_taken_over_and_ours_are_not() -> None:
    """The rollbacks of other instances are adopted (history); our own rows are skipped."""
    shared = GuardState(rollbacks=(run("r1", "a"), run("r2", "b"), run("r3", "a", "in_progress")))
    assert [r.id for r in plan(GuardState(), shared, "b").rollbacks] == ["r1", "r3"]


def test_only_what_changed_is_written_again() -> None:
    """A row written last round is not written again; a changed one is."""
    first = GuardState(rollbacks=(run("r1", "a", "verifying"),), freezes=(freeze("web", 1),))
    assert unwritten(first, first).empty()
    changed = GuardState(rollbacks=(run("r1", "a", "succeeded"),), freezes=(freeze("web", 1),))
    assert unwritten(changed, first) == GuardState(rollbacks=(run("r1", "a", "succeeded"),))


def test_reasons_pass_through_the_redactor() -> None:
    """Free text (freeze and bad-image reasons) is redacted before it is shared."""
    secret = "s3cr3t-canary"
    state = GuardState(
        freezes=(SharedFreeze("web", at(1), f"failed: token={secret}", "a"),),
        bad_images=(SharedBadImage("web", "v2", "app:v2", at(1), f"said {secret}", "a"),),
    )
    clean = redacted(state, lambda text: text.replace(secret, "***"))
    assert secret not in repr(clean) and "***" in clean.freezes[0].reason
