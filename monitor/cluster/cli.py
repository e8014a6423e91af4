"""`opsmon cluster status`: the lease and the members, read from the cluster store."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime

from monitor.cluster.share import owners
from monitor.cluster.store import ClusterStatus, ClusterStore, StoreUnavailable

EXIT_OK, EXIT_NO_LEADER, EXIT_CONFIG = 0, 1, 2


def cmd_cluster_status(args: argparse.Namespace) -> int:
    """Print the cluster as the store has it; exit 1 without a live leader."""
    from monitor.config import load_for_command

    loaded = load_for_command(args.config, sys.stderr)
    if loaded is None:
        return EXIT_CONFIG
    cluster = loaded.config.cluster
    if cluster is None:
        print(f"not clustered: this opsmon runs alone (no `cluster:` section in {loaded.path})")
        return EXIT_OK
    store = ClusterStore(cluster.store, cluster.instance, timeout=max(5.0, cluster.lease))

    async def read() -> ClusterStatus:
        try:
            return await store.status()
        finally:
            await store.close()

    try:
        status = asyncio.run(read())
    except StoreUnavailable as exc:
        print(f"cannot read the cluster: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    document = status_document(status, cluster.lease, cluster.sharding)
    print(json.dumps(document, indent=2) if args.json else render(document))
    return EXIT_OK if document["leader"] is not None else EXIT_NO_LEADER


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def status_document(
    status: ClusterStatus, lease: float, sharding: bool = False
) -> dict[str, object]:
    """The status as plain data; the leader only while its lease is unexpired; with
    sharding, each member's count of owned checks and every shard row."""
    live_lease = status.remaining is not None and status.remaining > 0
    counts = owners(status.shards)
    return {
        "leader": status.holder if live_lease else None,
        "epoch": status.epoch,
        "lease_s": lease,
        "lease_expires_in_s": round(status.remaining, 2) if status.remaining is not None else None,
        "lease_renewed_at": _iso(status.renewed_at),
        "leader_since": _iso(status.acquired_at),
        "members": [
            {
                "instance": m.instance,
                "live": m.age <= 2 * lease,
                "last_seen_s_ago": round(m.age, 2),
                "started_at": _iso(m.started_at),
                "version": m.version,
                **({"shards": counts.get(m.instance, 0)} if sharding else {}),
            }
            for m in status.members
        ],
        "sharding": sharding,
        "shards": [
            {
                "check": row.check,
                "owner": row.owner if row.live else None,
                "generation": row.generation,
                "expired": not row.live,
            }
            for row in status.shards
        ]
        if sharding
        else [],
    }


def render(document: dict[str, object]) -> str:
    """The status for people."""
    leader = document["leader"]
    lines = [
        f"leader: {leader} (epoch {document['epoch']}, lease expires in "
        f"{document['lease_expires_in_s']}s, leader since {document['leader_since']})"
        if leader is not None
        else f"leader: none (last epoch {document['epoch']}; the lease has expired or was never "
        "taken)",
        "members:",
    ]
    members = document["members"]
    assert isinstance(members, list)
    for member in members:
        state = "live" if member["live"] else "gone"
        count = member.get("shards")
        shards = "" if count is None else f", {count} shard{'' if count == 1 else 's'}"
        lines.append(
            f"  {member['instance']}: {state}, last seen {member['last_seen_s_ago']}s ago, "
            f"opsmon {member['version']}{shards}"
        )
    if not members:
        lines.append("  (none)")
    if document["sharding"]:
        rows = document["shards"]
        assert isinstance(rows, list)
        unowned = sum(1 for row in rows if row["owner"] is None)
        lines.append(f"shards: {len(rows)} checks, {unowned} without a live owner")
    else:
        lines.append("shards: none (every instance runs every check)")
    return "\n".join(lines)
