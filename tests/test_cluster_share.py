"""The share rules of sharding: fair share, keep/release/claim, which checks a page names."""

from __future__ import annotations

from monitor.cluster.share import (
    ShardRow,
    fair_share,
    owners,
    plan_share,
    sharded_checks,
)


def rows(**owned: int) -> list[ShardRow]:
    """Rows owned as given (`a=3, b=2, free=4`); `free` rows are unowned."""
    made: list[ShardRow] = []
    for owner, count in owned.items():
        for n in range(count):
            name = f"{owner}-{n:03d}"
            made.append(ShardRow(name, None if owner == "free" else owner, n + 1, True))
    return made


def test_the_fair_share_rounds_up_and_counts_at_least_the_asker() -> None:
    """600 checks over 3 members: 200 each; over 2: 300; 10 over 3: 4; no members: all."""
    assert fair_share(600, 3) == 200
    assert fair_share(600, 2) == 300
    assert fair_share(10, 3) == 4
    assert fair_share(7, 0) == 7


def test_a_fresh_table_is_claimed_up_to_the_share() -> None:
    """Nobody owns anything yet, three members live: each claims a third, keeps nothing."""
    plan = plan_share("a", rows(free=600), ["a", "b", "c"])
    assert plan.keep == () and plan.release == () and plan.claim == 200


def test_a_joining_member_makes_the_others_release_their_surplus() -> None:
    """Three own 200 each; a fourth joins: each keeps 150 (the same ones each round) and
    releases 50; the newcomer claims what is free, at most its share."""
    table = rows(a=200, b=200, c=200)
    live = ["a", "b", "c", "d"]
    plan = plan_share("a", table, live)
    assert len(plan.keep) == 150 and len(plan.release) == 50 and plan.claim == 0
    assert plan.keep == plan_share("a", table, live).keep
    assert set(plan.keep).isdisjoint(plan.release)
    released = [ShardRow(r.check, None, r.generation, False) for r in table[150:200]]
    assert plan_share("d", table[:150] + released + table[200:], live).claim == 50


def test_survivors_take_the_expired_rows_of_a_dead_member() -> None:
    """c died: its 200 rows expired and it dropped out of the live members; a and b keep
    theirs and each claims up to 300, never more than is free."""
    table = rows(a=200, b=200) + [ShardRow(f"c-{n}", "c", 1, False) for n in range(200)]
    plan = plan_share("a", table, ["a", "b"])
    assert len(plan.keep) == 200 and plan.release == () and plan.claim == 100
    assert plan_share("a", rows(a=299, b=300, free=1), ["a", "b"]).claim == 1


def test_live_rows_of_others_are_never_claimed() -> None:
    """Everything is owned and live: a member under its share claims nothing."""
    plan = plan_share("d", rows(a=200, b=200, c=200), ["a", "b", "c", "d"])
    assert plan.claim == 0 and plan.keep == ()


def test_an_own_expired_row_is_kept_not_reclaimed() -> None:
    """A row still naming this instance but past its expiry (a slow round) is renewed as
    its own: nobody else took it, so nobody else ran it."""
    table = [ShardRow("x", "a", 5, False), ShardRow("y", None, 0, False)]
    plan = plan_share("a", table, ["a"])
    assert plan.keep == ("x",) and plan.claim == 1


def test_a_page_is_sharded_by_the_configured_checks_it_names() -> None:
    """Only configured checks count: instance alerts (no check) and discovered checks go
    the leader's way."""
    configured = {"web", "db"}
    assert sharded_checks(["web", None, "web", "db"], configured) == ["db", "web"]
    assert sharded_checks([None, "container-x"], configured) == []


def test_owners_counts_live_rows_only() -> None:
    """`opsmon cluster status` counts each member's live rows; expired ones count for nobody."""
    table = [*rows(a=2, b=1), ShardRow("z", "c", 1, False)]
    assert owners(table) == {"a": 2, "b": 1}
