"""The rollback journal and rollback's tables: durable, private, one rollback in flight."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.rollback.journal import (
    AlreadyInFlight,
    Journal,
    Rollback,
    Status,
    Step,
    hour_ago,
    new_id,
    owner_alive,
    owner_id,
)
from monitor.rollback.snapshot import Snapshot
from monitor.rollback.store import open_store
from monitor.store import DB_FILE

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SECRET = "canary-journal-secret"


def snapshot() -> Snapshot:
    """A small snapshot with a secret env value."""
    return Snapshot(
        container_id="c" * 64,
        name="shop_backend_1",
        image="app:v1",
        image_id="sha256:" + "1" * 64,
        config={"Env": [f"TOKEN={SECRET}"], "Labels": {"a": "b"}},
        host_config={"NetworkMode": "host"},
        networks={},
    )


def record(
    service: str = "backend", status: Status = Status.IN_PROGRESS, at: datetime = NOW
) -> Rollback:
    """A rollback record."""
    return Rollback(
        id=new_id(),
        service=service,
        project="shop",
        strategy="recreate",
        trigger="auto",
        status=status,
        step=Step.PLANNED,
        bad_image="app:v2",
        bad_image_id="sha256:" + "2" * 64,
        target_image="app:v1",
        target_image_id="sha256:" + "1" * 64,
        target_tag="v1",
        old_container_id="d" * 64,
        old_name="shop_backend_1",
        old_was_running=True,
        failed_name="shop_backend_1_failed_dddddddddddd",
        reason="backend is unhealthy",
        evidence=["backend-health: [STATUS] (404) == 200"],
        owner=owner_id(),
        started_at=at,
        updated_at=at,
        snapshot=snapshot(),
    )


def test_state_file_is_private_and_survives_reopening(tmp_path: Path) -> None:
    """The file holding snapshots (env values) is 0600, and a reopened store sees the
    rollback in flight with its step and snapshot."""
    store = open_store(tmp_path)
    journal = Journal(store)
    rollback = journal.begin(record())
    journal.step(rollback, Step.STOP_OLD, NOW)
    store.close()

    assert stat.S_IMODE(os.stat(tmp_path / DB_FILE).st_mode) == 0o600
    again = open_store(tmp_path)
    [found] = Journal(again).in_flight("backend")
    assert found.id == rollback.id and found.step is Step.STOP_OLD
    assert found.snapshot == snapshot()
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_one_rollback_in_flight_per_service(tmp_path: Path) -> None:
    """A second rollback of the same service is refused while one is in flight; another
    service, or the same one after it finished, is fine."""
    store = open_store(tmp_path)
    journal = Journal(store)
    first = journal.begin(record())
    with pytest.raises(AlreadyInFlight):
        journal.begin(record())
    journal.begin(record(service="frontend"))
    journal.finish(first, Status.SUCCEEDED, Step.VERIFIED, "done", NOW)
    journal.begin(record())
    store.close()


def test_steps_are_kept_in_order(tmp_path: Path) -> None:
    """Each step is a row of its own, in the order it was written."""
    store = open_store(tmp_path)
    journal = Journal(store)
    rollback = journal.begin(record())
    for index, step in enumerate((Step.STOP_OLD, Step.RENAME_OLD, Step.CREATE_NEW)):
        journal.step(rollback, step, NOW + timedelta(seconds=index))
    journal.verifying(rollback, NOW + timedelta(minutes=5), NOW + timedelta(seconds=4))
    journal.finish(rollback, Status.SUCCEEDED, Step.VERIFIED, "ok", NOW + timedelta(seconds=9))
    steps = [s for s, _ in journal.steps(rollback.id)]
    assert steps == [
        Step.PLANNED,
        Step.STOP_OLD,
        Step.RENAME_OLD,
        Step.CREATE_NEW,
        Step.VERIFYING,
        Step.VERIFIED,
    ]
    done = journal.get(rollback.id)
    assert done is not None and done.duration == 9.0 and done.status is Status.SUCCEEDED
    store.close()


def test_only_executed_rollbacks_count_against_max_per_hour(tmp_path: Path) -> None:
    """Dry runs and skipped ones do not count; rollbacks older than an hour do not either."""
    store = open_store(tmp_path)
    journal = Journal(store)
    journal.note(record(status=Status.DRY_RUN))
    journal.note(record(status=Status.SKIPPED))
    old = journal.begin(record(at=NOW - timedelta(minutes=90)))
    journal.finish(old, Status.SUCCEEDED, Step.VERIFIED, "ok", NOW - timedelta(minutes=80))
    assert journal.executed_since("backend", hour_ago(NOW)) == 0
    recent = journal.begin(record(at=NOW - timedelta(minutes=10)))
    journal.finish(recent, Status.FAILED, Step.VERIFY_FAILED, "no", NOW - timedelta(minutes=5))
    assert journal.executed_since("backend", hour_ago(NOW)) == 1
    assert len(journal.recent("backend")) == 4
    store.close()


def test_owner_of_a_dead_process_is_not_alive() -> None:
    """A rollback claimed by a process that has exited can be taken over."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    host = owner_id().partition("@")[2]
    assert owner_alive(owner_id())
    assert not owner_alive(f"{child.stdout.strip()}@{host}")
    assert not owner_alive(f"{os.getpid()}@another-host")


def test_freeze_lkg_and_bad_images_are_stored(tmp_path: Path) -> None:
    """Freezes, the LKG snapshot and bad images are kept per service."""
    store = open_store(tmp_path)
    store.freeze("backend", "rollback x failed", NOW)
    store.save_lkg("backend", "shop", snapshot(), NOW)
    store.mark_bad("backend", "sha256:" + "2" * 64, "app:v2", "unhealthy", NOW)
    assert store.frozen("backend") is not None and store.frozen("frontend") is None
    lkg = store.lkg("backend")
    assert lkg is not None and lkg.snapshot.env["TOKEN"] == SECRET
    assert store.bad_image("backend", "sha256:" + "2" * 64) is not None
    assert store.unfreeze("backend") and not store.unfreeze("backend")
    store.close()
