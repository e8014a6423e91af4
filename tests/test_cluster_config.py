"""The `cluster:` section: clear errors that name the key, the password never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config

CANARY = "cluster-canary-pw-5d1e"


def load(tmp_path: Path, cluster: str) -> str:
    path = tmp_path / "opsmon.yml"
    path.write_text("checks: []\ncluster:\n" + cluster)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"OPSMON_CLUSTER_DSN": f"postgresql://u:{CANARY}@127.0.0.1/db"})
    return str(caught.value)


def test_a_cluster_section_loads_with_its_defaults(tmp_path: Path) -> None:
    """`store` from the environment, `lease` 15s and the host name by default; the DSN's
    password is one of the config's secrets."""
    path = tmp_path / "opsmon.yml"
    path.write_text('cluster:\n  store: "${OPSMON_CLUSTER_DSN}"\n')
    loaded = load_config(path, {"OPSMON_CLUSTER_DSN": f"postgresql://u:{CANARY}@h/db"})
    cluster = loaded.config.cluster
    assert cluster is not None and cluster.lease == 15.0 and cluster.instance
    assert cluster.renew_every == 5.0 and cluster.act_within == 10.0
    assert CANARY in loaded.secrets


def test_sharding_is_accepted_and_off_by_default(tmp_path: Path) -> None:
    """`sharding: true` loads; without the key every instance runs every check; a value
    that is not a boolean is an error at its line naming the key."""
    path = tmp_path / "opsmon.yml"
    path.write_text('cluster:\n  store: "${OPSMON_CLUSTER_DSN}"\n  sharding: true\n')
    env = {"OPSMON_CLUSTER_DSN": "postgresql://u:p@h/db"}
    cluster = load_config(path, env).config.cluster
    assert cluster is not None and cluster.sharding
    path.write_text('cluster:\n  store: "${OPSMON_CLUSTER_DSN}"\n')
    cluster = load_config(path, env).config.cluster
    assert cluster is not None and not cluster.sharding
    message = load(tmp_path, '  store: "${OPSMON_CLUSTER_DSN}"\n  sharding: sometimes\n')
    assert "opsmon.yml:4: cluster.sharding:" in message


def test_sharding_needs_pages_grouped_by_check(tmp_path: Path) -> None:
    """With sharding, a notification group spanning checks of different owners is an error
    at `alerting.group_by`'s line, suggesting the fix; with `check` in it the config loads."""
    path = tmp_path / "opsmon.yml"
    body = (
        "alerting:\n  group_by: [service]\n"
        'cluster:\n  store: "postgresql://u:p@h/db"\n  sharding: true\n'
    )
    path.write_text(body)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert "opsmon.yml:2: alerting.group_by: must include `check` with cluster.sharding" in str(
        caught.value
    )
    assert "group_by: [service, check]" in str(caught.value)
    path.write_text(body.replace("[service]", "[service, check]"))
    cluster = load_config(path, {}).config.cluster
    assert cluster is not None and cluster.sharding


def test_sharding_refuses_a_majority_verdict(tmp_path: Path) -> None:
    """`aggregate: majority` with sharding is an error at its line: one instance runs each
    check, so no majority could ever see it fail (nothing would be paged)."""
    message = load(
        tmp_path, '  store: "${OPSMON_CLUSTER_DSN}"\n  sharding: true\n  aggregate: majority\n'
    )
    assert "opsmon.yml:5: cluster.aggregate: majority needs every instance to probe" in message


def test_a_lease_too_short_to_renew_is_refused(tmp_path: Path) -> None:
    """A lease under one second cannot be renewed three times in time: an error."""
    message = load(tmp_path, '  store: "${OPSMON_CLUSTER_DSN}"\n  lease: 300ms\n')
    assert "cluster.lease: must be at least 1s" in message


def test_a_bad_store_dsn_is_named_without_its_password(tmp_path: Path) -> None:
    """A DSN libpq cannot parse is an error at `cluster.store` that does not echo the
    password."""
    path = tmp_path / "opsmon.yml"
    path.write_text(f'cluster:\n  store: "host=h password={CANARY} nonsense=1"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert "cluster.store:" in str(caught.value) and CANARY not in str(caught.value)
