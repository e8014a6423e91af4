"""The cluster's tables in PostgreSQL: the leader lease, members, the notification log, fenced
actions. Every statement is one autocommit round trip (no session state, no prepared
statements), so a PgBouncer in transaction mode in front of PostgreSQL is fine.

Fencing: a claim or an action is an INSERT whose rows come from the lease row *only while it
names this instance, with this epoch, unexpired by the database's clock*. A leader paused past
its lease (SIGSTOP, a VM freeze) wakes up with a stale epoch and its writes insert nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from monitor.alerting.model import Ack, Incident, Silence, Status
from monitor.alerting.store import PeerIncident
from monitor.checks.postgres import parse_dsn, password_candidates
from monitor.cluster.claims import Logged, PagedAlert
from monitor.cluster.rollback_share import (
    GuardState,
    SharedBadImage,
    SharedFreeze,
    SharedLift,
    SharedLkg,
    SharedRollback,
)
from monitor.cluster.share import Judgement, ShardRow
from monitor.core.health import Health
from monitor.redaction import Redactor
from monitor.status.rollup import Period, Rollup, retention_cutoffs
from monitor.status.store import PeerRollup, decode_histogram, encode_histogram

if TYPE_CHECKING:
    import psycopg

LEASE_NAME = "leader"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# libpq's connect_timeout is whole seconds, at least 2 (1 is rounded up by libpq anyway).
_MIN_CONNECT_TIMEOUT = 2

# Versioned, append-only: a new step is a new item, never an edited one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS opsmon_cluster_lease (
        name text PRIMARY KEY,
        holder text NOT NULL,
        epoch bigint NOT NULL,
        acquired_at timestamptz NOT NULL,
        renewed_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
    );
    CREATE TABLE IF NOT EXISTS opsmon_cluster_members (
        instance text PRIMARY KEY,
        run_id text NOT NULL,
        started_at timestamptz NOT NULL,
        last_seen timestamptz NOT NULL,
        version text NOT NULL
    );
    CREATE TABLE IF NOT EXISTS opsmon_cluster_notifications (
        channel text NOT NULL,
        group_key text NOT NULL,
        content text NOT NULL,
        notification_id text NOT NULL,
        epoch bigint NOT NULL,
        instance text NOT NULL,
        claimed_at timestamptz NOT NULL,
        delivered_at timestamptz,
        PRIMARY KEY (channel, group_key)
    );
    CREATE TABLE IF NOT EXISTS opsmon_cluster_actions (
        id bigserial PRIMARY KEY,
        action text NOT NULL,
        instance text NOT NULL,
        epoch bigint NOT NULL,
        at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS opsmon_cluster_silences (
        id text PRIMARY KEY,
        matchers text NOT NULL,
        starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL,
        comment text NOT NULL,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL,
        instance text NOT NULL
    );
    """,
    # Each instance's judgement of each check (cluster/verdicts.py).
    """
    CREATE TABLE IF NOT EXISTS opsmon_cluster_views (
        instance text NOT NULL,
        check_name text NOT NULL,
        health text NOT NULL,
        kind text NOT NULL,
        reason text NOT NULL,
        changed_at timestamptz NOT NULL,
        PRIMARY KEY (instance, check_name)
    );
    -- Each round reads only the failing views: without this it reads every view.
    CREATE INDEX IF NOT EXISTS opsmon_cluster_views_failing
        ON opsmon_cluster_views (instance) WHERE health = 'unhealthy';
    """,
    # 3: sharding (monitor/cluster/shards.py). One row per check name; `generation` comes from
    # one sequence, so a takeover of any check gets a number above every earlier one (the
    # notification log compares it like a lease epoch).
    """
    CREATE SEQUENCE IF NOT EXISTS opsmon_cluster_shard_generation;
    CREATE TABLE IF NOT EXISTS opsmon_cluster_shards (
        check_name text PRIMARY KEY,
        owner text,
        generation bigint NOT NULL DEFAULT 0,
        claimed_at timestamptz,
        expires_at timestamptz NOT NULL DEFAULT '-infinity'
    );
    CREATE INDEX IF NOT EXISTS opsmon_cluster_shards_owner ON opsmon_cluster_shards (owner);
    """,
    # 4: acks (monitor/alerting/store.py adopt_ack). One row per ack as made; an instance
    # that adopts one shares the same row again, which changes nothing.
    """
    CREATE TABLE IF NOT EXISTS opsmon_cluster_acks (
        source text NOT NULL,
        acked_at timestamptz NOT NULL,
        acked_by text NOT NULL,
        instance text NOT NULL,
        PRIMARY KEY (source, acked_at, acked_by)
    );
    """,
    # 5: check history (monitor/cluster/history.py): each instance's hour and day rows as
    # they stand, read by the others by the time they changed.
    """
    CREATE TABLE IF NOT EXISTS opsmon_cluster_history (
        instance text NOT NULL,
        check_name text NOT NULL,
        period text NOT NULL,
        start float8 NOT NULL,
        total integer NOT NULL,
        ok integer NOT NULL,
        unknown integer NOT NULL,
        histogram text NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (instance, period, check_name, start)
    );
    CREATE INDEX IF NOT EXISTS opsmon_cluster_history_updated
        ON opsmon_cluster_history (updated_at);
    CREATE INDEX IF NOT EXISTS opsmon_cluster_history_start
        ON opsmon_cluster_history (period, start);
    """,
    # 6: the firing alerts of each group's last delivered notification (claims.paged_alerts),
    # so the new owner of a moved check knows what the receivers believe.
    """
    ALTER TABLE opsmon_cluster_notifications
        ADD COLUMN IF NOT EXISTS delivered_alerts jsonb NOT NULL DEFAULT '[]';
    """,
    # 7: rollback guards (monitor/cluster/guard_sync.py, rules in cluster/rollback_share.py):
    # freezes and their lifts, bad images, the last known good per service (image and
    # container only: its settings hold environment values), rollbacks carried out.
    """
    CREATE TABLE IF NOT EXISTS opsmon_cluster_rollback_freezes (
        service text NOT NULL,
        since timestamptz NOT NULL,
        reason text NOT NULL,
        instance text NOT NULL,
        PRIMARY KEY (service, since)
    );
    CREATE TABLE IF NOT EXISTS opsmon_cluster_rollback_lifts (
        service text NOT NULL,
        upto timestamptz NOT NULL,
        lifted_at timestamptz NOT NULL,
        instance text NOT NULL,
        PRIMARY KEY (service, upto)
    );
    CREATE TABLE IF NOT EXISTS opsmon_cluster_rollback_bad_images (
        service text NOT NULL,
        image_id text NOT NULL,
        image text NOT NULL,
        marked_at timestamptz NOT NULL,
        reason text NOT NULL,
        instance text NOT NULL,
        PRIMARY KEY (service, image_id)
    );
    CREATE TABLE IF NOT EXISTS opsmon_cluster_rollback_lkg (
        service text PRIMARY KEY,
        project text NOT NULL,
        image text NOT NULL,
        image_id text NOT NULL,
        container_id text NOT NULL,
        promoted_at timestamptz NOT NULL,
        instance text NOT NULL
    );
    CREATE TABLE IF NOT EXISTS opsmon_cluster_rollbacks (
        id text PRIMARY KEY,
        service text NOT NULL,
        instance text NOT NULL,
        status text NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz,
        bad_image text NOT NULL,
        target_image text NOT NULL
    );
    CREATE INDEX IF NOT EXISTS opsmon_cluster_rollbacks_started
        ON opsmon_cluster_rollbacks (started_at);
    """,
    # 8: the per-service rollback leases and the deploy gates' runs (monitor/cluster/leases.py):
    # the leader, `opsmon gate` and `opsmon rollback` on any host exclude each other per service.
    """
    CREATE TABLE IF NOT EXISTS opsmon_cluster_service_leases (
        service text PRIMARY KEY,
        owner text NOT NULL,
        kind text NOT NULL,
        run text NOT NULL,
        instance text NOT NULL,
        boot text NOT NULL,
        acquired_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
    );
    CREATE TABLE IF NOT EXISTS opsmon_cluster_gate_runs (
        id text PRIMARY KEY,
        service text NOT NULL,
        owner text NOT NULL,
        instance text NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz,
        verdict text,
        report text
    );
    CREATE INDEX IF NOT EXISTS opsmon_cluster_gate_runs_started
        ON opsmon_cluster_gate_runs (started_at);
    """,
    # 9: incidents of checks (monitor/cluster/history.py), for every instance's status page
    # and API; read by the others by the time they changed.
    """
    CREATE TABLE IF NOT EXISTS opsmon_cluster_incidents (
        id text PRIMARY KEY,
        instance text NOT NULL,
        source text NOT NULL,
        status text NOT NULL,
        alertname text NOT NULL,
        severity text NOT NULL,
        summary text NOT NULL,
        description text NOT NULL,
        runbook_url text NOT NULL,
        labels text NOT NULL,
        started_at timestamptz NOT NULL,
        ended_at timestamptz,
        acked_by text,
        acked_at timestamptz,
        updated_at timestamptz NOT NULL
    );
    CREATE INDEX IF NOT EXISTS opsmon_cluster_incidents_updated
        ON opsmon_cluster_incidents (updated_at);
    """,
)

_MIGRATE = """
CREATE TABLE IF NOT EXISTS opsmon_cluster_schema (version integer NOT NULL);
"""

# One round trip per renewal: the membership heartbeat, then (only if it was written) the
# lease taken or renewed, and the count of live members. A member row of another process
# under the same name, seen lately, is not taken over: two processes with one name would
# both believe they hold the lease. The CTEs see the tables as they were before the
# statement, so the count takes this instance as live and counts the others.
_RENEW = """
WITH beat AS (
    INSERT INTO opsmon_cluster_members AS m (instance, run_id, started_at, last_seen, version)
    VALUES (%(me)s, %(run)s, now(), now(), %(version)s)
    ON CONFLICT (instance) DO UPDATE SET
        run_id = excluded.run_id, last_seen = now(), version = excluded.version,
        started_at = CASE WHEN m.run_id = excluded.run_id THEN m.started_at ELSE now() END
    WHERE m.run_id = excluded.run_id
       OR m.last_seen < now() - make_interval(secs => %(window)s)
    RETURNING instance
),
taken AS (
    INSERT INTO opsmon_cluster_lease AS l
        (name, holder, epoch, acquired_at, renewed_at, expires_at)
    SELECT %(name)s, %(me)s, 1, now(), now(), now() + make_interval(secs => %(lease)s)
    WHERE EXISTS (SELECT 1 FROM beat)
    ON CONFLICT (name) DO UPDATE SET
        holder = excluded.holder,
        epoch = CASE WHEN l.holder = excluded.holder AND l.expires_at > now()
                     THEN l.epoch ELSE l.epoch + 1 END,
        acquired_at = CASE WHEN l.holder = excluded.holder AND l.expires_at > now()
                           THEN l.acquired_at ELSE now() END,
        renewed_at = now(),
        expires_at = excluded.expires_at
    WHERE l.holder = excluded.holder OR l.expires_at <= now()
    RETURNING holder, epoch, expires_at
),
lease AS (
    SELECT holder, epoch, expires_at FROM taken
    UNION ALL
    SELECT holder, epoch, expires_at FROM opsmon_cluster_lease
    WHERE name = %(name)s AND NOT EXISTS (SELECT 1 FROM taken)
)
SELECT EXISTS (SELECT 1 FROM beat),
       1 + (SELECT count(*) FROM opsmon_cluster_members
            WHERE instance <> %(me)s
              AND last_seen > now() - make_interval(secs => %(window)s)),
       lease.holder, lease.epoch, extract(epoch FROM lease.expires_at - now())::float8
FROM (SELECT 1) AS one LEFT JOIN lease ON true
"""

# The lease row, only while it is ours: the source of every fenced write.
_OURS = """
SELECT epoch FROM opsmon_cluster_lease
WHERE name = %(name)s AND holder = %(me)s AND epoch = %(epoch)s AND expires_at > now()
"""

_CLAIM = f"""
INSERT INTO opsmon_cluster_notifications AS n
    (channel, group_key, content, notification_id, epoch, instance, claimed_at)
SELECT %(channel)s, %(group)s, %(content)s, %(id)s, ours.epoch, %(me)s, now()
FROM ({_OURS}) AS ours
ON CONFLICT (channel, group_key) DO UPDATE SET
    content = excluded.content, notification_id = excluded.notification_id,
    epoch = excluded.epoch, instance = excluded.instance, claimed_at = excluded.claimed_at,
    delivered_at = NULL
WHERE n.notification_id = excluded.notification_id
   OR (n.delivered_at IS NULL AND n.epoch < excluded.epoch)
   OR (n.claimed_at < %(created)s AND (n.content <> excluded.content OR %(reminder)s))
RETURNING n.notification_id
"""

_LOGGED = """
SELECT content, notification_id, claimed_at, delivered_at IS NOT NULL, instance
FROM opsmon_cluster_notifications WHERE channel = %(channel)s AND group_key = %(group)s
"""

_DELIVERED = """
UPDATE opsmon_cluster_notifications SET delivered_at = now(), delivered_alerts = %(alerts)s
WHERE channel = %(channel)s AND group_key = %(group)s AND notification_id = %(id)s
"""

# One row per check (any channel's will do: each says the same of it).
_PAGED_FIRING = """
SELECT DISTINCT ON (a->'labels'->>'check') a->'labels'->>'check', a, instance
FROM opsmon_cluster_notifications, jsonb_array_elements(delivered_alerts) AS a
WHERE delivered_at IS NOT NULL AND a->'labels'->>'check' = ANY(%(checks)s)
ORDER BY a->'labels'->>'check', delivered_at DESC
"""

_ACT = f"""
INSERT INTO opsmon_cluster_actions (action, instance, epoch)
SELECT %(action)s, %(me)s, ours.epoch FROM ({_OURS}) AS ours
RETURNING id
"""

# A silence is shared as made; ending it early anywhere ends it everywhere (the earliest end
# wins), so `opsmon silence expire` on any instance lifts it for the whole cluster.
_SHARE_SILENCE = """
INSERT INTO opsmon_cluster_silences AS s
    (id, matchers, starts_at, ends_at, comment, created_by, created_at, instance)
VALUES (%(id)s, %(matchers)s, %(starts)s, %(ends)s, %(comment)s, %(by)s, %(created)s, %(me)s)
ON CONFLICT (id) DO UPDATE SET
    ends_at = LEAST(s.ends_at, excluded.ends_at), starts_at = LEAST(s.starts_at, excluded.starts_at)
WHERE excluded.ends_at < s.ends_at
"""

_SHARED_SILENCES = """
SELECT id, matchers, starts_at, ends_at, comment, created_by, created_at
FROM opsmon_cluster_silences WHERE ends_at > %(since)s ORDER BY starts_at, id
"""

# Acks older than a month are of incidents long over: each share prunes them.
_SHARE_ACKS = """
WITH pruned AS (
    DELETE FROM opsmon_cluster_acks WHERE acked_at < now() - interval '30 days'
)
INSERT INTO opsmon_cluster_acks (source, acked_at, acked_by, instance)
SELECT s, a, b, %(me)s
FROM unnest(%(sources)s::text[], %(ats)s::timestamptz[], %(bys)s::text[]) AS u(s, a, b)
ON CONFLICT DO NOTHING
"""

_SHARED_ACKS = """
SELECT source, acked_by, acked_at FROM opsmon_cluster_acks
WHERE source = ANY(%(sources)s) ORDER BY acked_at
"""

# Rows past the status page's retention are pruned by every share; clock_timestamp() gives
# each row its own time, so a reader's mark falls between rows, not inside a batch.
_SHARE_HISTORY = """
WITH pruned AS (
    DELETE FROM opsmon_cluster_history
    WHERE (period = 'hour' AND start < %(hour_cutoff)s)
       OR (period = 'day' AND start < %(day_cutoff)s)
)
INSERT INTO opsmon_cluster_history AS h
    (instance, check_name, period, start, total, ok, unknown, histogram, updated_at)
SELECT %(me)s, c, p, s, t, o, u, g, clock_timestamp()
FROM unnest(%(checks)s::text[], %(periods)s::text[], %(starts)s::float8[],
            %(totals)s::int[], %(oks)s::int[], %(unknowns)s::int[], %(histograms)s::text[])
    AS x(c, p, s, t, o, u, g)
ON CONFLICT (instance, period, check_name, start) DO UPDATE SET
    total = excluded.total, ok = excluded.ok, unknown = excluded.unknown,
    histogram = excluded.histogram, updated_at = excluded.updated_at
"""

# A row that did not change keeps its time, so the others do not read it again; resolved
# incidents are kept as long as the status page keeps them.
_SHARE_INCIDENTS = """
WITH pruned AS (
    DELETE FROM opsmon_cluster_incidents
    WHERE status = 'resolved' AND ended_at < now() - interval '90 days'
)
INSERT INTO opsmon_cluster_incidents AS o
    (id, instance, source, status, alertname, severity, summary, description, runbook_url,
     labels, started_at, ended_at, acked_by, acked_at, updated_at)
SELECT id, %(me)s, source, status, alertname, severity, summary, description, runbook_url,
       labels, started_at, ended_at, acked_by, acked_at, clock_timestamp()
FROM unnest(%(ids)s::text[], %(sources)s::text[], %(statuses)s::text[], %(alertnames)s::text[],
            %(severities)s::text[], %(summaries)s::text[], %(descriptions)s::text[],
            %(runbooks)s::text[], %(labels)s::text[], %(starts)s::timestamptz[],
            %(ends)s::timestamptz[], %(ackers)s::text[], %(acked)s::timestamptz[])
    AS x(id, source, status, alertname, severity, summary, description, runbook_url, labels,
         started_at, ended_at, acked_by, acked_at)
ON CONFLICT (id) DO UPDATE SET
    status = excluded.status, description = excluded.description,
    ended_at = excluded.ended_at, acked_by = excluded.acked_by, acked_at = excluded.acked_at,
    updated_at = excluded.updated_at
WHERE (o.status, o.description, o.ended_at, o.acked_by)
    IS DISTINCT FROM (excluded.status, excluded.description, excluded.ended_at, excluded.acked_by)
"""

# Both read in pages by the time each row changed and its key (a whole key: no row is
# skipped or read twice within one pass, however many share a time).
_PEER_INCIDENTS = """
SELECT instance, id, source, status, alertname, severity, summary, description, runbook_url,
       labels, started_at, ended_at, acked_by, acked_at, updated_at
FROM opsmon_cluster_incidents
WHERE instance <> %(me)s AND (updated_at, id) > (%(at)s, %(k0)s)
ORDER BY updated_at, id LIMIT %(limit)s
"""

_PEER_HISTORY = """
SELECT instance, check_name, period, start, total, ok, unknown, histogram, updated_at
FROM opsmon_cluster_history
WHERE instance <> %(me)s
  AND (updated_at, instance, period, check_name, start)
      > (%(at)s, %(k0)s, %(k1)s, %(k2)s, %(k3)s)
ORDER BY updated_at, instance, period, check_name, start LIMIT %(limit)s
"""

# --- rollback guards (monitor/cluster/guard_sync.py) -------------------------------------
# Everything one instance has new in one statement (data-modifying CTEs). A freeze, a lift and
# a bad image are written once; the last known good promoted last wins; a rollback's row
# follows its status.
_SHARE_GUARDS = """
WITH freezes AS (
    INSERT INTO opsmon_cluster_rollback_freezes (service, since, reason, instance)
    SELECT s, t, r, %(me)s
    FROM unnest(%(f_service)s::text[], %(f_since)s::timestamptz[], %(f_reason)s::text[])
        AS u(s, t, r)
    ON CONFLICT (service, since) DO NOTHING
), lifts AS (
    INSERT INTO opsmon_cluster_rollback_lifts (service, upto, lifted_at, instance)
    SELECT s, t, a, %(me)s
    FROM unnest(%(l_service)s::text[], %(l_upto)s::timestamptz[], %(l_at)s::timestamptz[])
        AS u(s, t, a)
    ON CONFLICT (service, upto) DO NOTHING
), bad AS (
    INSERT INTO opsmon_cluster_rollback_bad_images
        (service, image_id, image, marked_at, reason, instance)
    SELECT s, i, n, t, r, %(me)s
    FROM unnest(%(b_service)s::text[], %(b_id)s::text[], %(b_image)s::text[],
                %(b_at)s::timestamptz[], %(b_reason)s::text[]) AS u(s, i, n, t, r)
    ON CONFLICT (service, image_id) DO NOTHING
), lkg AS (
    INSERT INTO opsmon_cluster_rollback_lkg AS k
        (service, project, image, image_id, container_id, promoted_at, instance)
    SELECT s, p, n, i, c, t, %(me)s
    FROM unnest(%(k_service)s::text[], %(k_project)s::text[], %(k_image)s::text[],
                %(k_id)s::text[], %(k_container)s::text[], %(k_at)s::timestamptz[])
        AS u(s, p, n, i, c, t)
    ON CONFLICT (service) DO UPDATE SET
        project = excluded.project, image = excluded.image, image_id = excluded.image_id,
        container_id = excluded.container_id, promoted_at = excluded.promoted_at,
        instance = excluded.instance
    WHERE excluded.promoted_at > k.promoted_at
), runs AS (
    INSERT INTO opsmon_cluster_rollbacks AS r
        (id, service, instance, status, started_at, finished_at, bad_image, target_image)
    SELECT i, s, %(me)s, st, t, f, b, g
    FROM unnest(%(r_id)s::text[], %(r_service)s::text[], %(r_status)s::text[],
                %(r_started)s::timestamptz[], %(r_finished)s::timestamptz[],
                %(r_bad)s::text[], %(r_target)s::text[]) AS u(i, s, st, t, f, b, g)
    ON CONFLICT (id) DO UPDATE SET status = excluded.status, finished_at = excluded.finished_at
    WHERE r.instance = excluded.instance
)
SELECT 1
"""

# The cluster's guard state in one round trip: per service the newest freeze and the lift
# that reaches furthest (enough for the rules), every bad image and last known good, and the
# rollbacks started since the given time.
_SHARED_GUARDS = """
SELECT
    (SELECT coalesce(json_agg(f), '[]') FROM (
        SELECT DISTINCT ON (service) service, since, reason, instance
        FROM opsmon_cluster_rollback_freezes ORDER BY service, since DESC) f),
    (SELECT coalesce(json_agg(l), '[]') FROM (
        SELECT DISTINCT ON (service) service, upto, lifted_at, instance
        FROM opsmon_cluster_rollback_lifts ORDER BY service, upto DESC) l),
    (SELECT coalesce(json_agg(b ORDER BY marked_at), '[]')
        FROM opsmon_cluster_rollback_bad_images b),
    (SELECT coalesce(json_agg(k ORDER BY service), '[]') FROM opsmon_cluster_rollback_lkg k),
    (SELECT coalesce(json_agg(r ORDER BY started_at), '[]') FROM opsmon_cluster_rollbacks r
        WHERE started_at >= %(since)s)
"""

_PUBLISH_VIEWS = """
INSERT INTO opsmon_cluster_views AS v (instance, check_name, health, kind, reason, changed_at)
SELECT %(me)s, c, h, k, r, now()
FROM unnest(%(checks)s::text[], %(healths)s::text[], %(kinds)s::text[], %(reasons)s::text[])
    AS u(c, h, k, r)
ON CONFLICT (instance, check_name) DO UPDATE SET
    health = excluded.health, kind = excluded.kind, reason = excluded.reason,
    changed_at = excluded.changed_at
"""

# The failing views of the other live instances, and how many instances are live.
_FAILING_VIEWS = """
WITH live AS (
    SELECT instance FROM opsmon_cluster_members
    WHERE last_seen > now() - make_interval(secs => %(window)s)
)
SELECT (SELECT count(*) FROM live), v.instance, v.check_name, v.kind, v.reason
FROM (SELECT 1) AS one
LEFT JOIN opsmon_cluster_views v
    ON v.health = 'unhealthy' AND v.instance <> %(me)s
   AND v.instance IN (SELECT instance FROM live)
"""

_RELEASE = """
UPDATE opsmon_cluster_lease SET expires_at = now()
WHERE name = %(name)s AND holder = %(me)s AND epoch = %(epoch)s
"""

_LEAVE = "DELETE FROM opsmon_cluster_members WHERE instance = %(me)s AND run_id = %(run)s"

# --- shards (monitor/cluster/shards.py) --------------------------------------------------
_SHARDS_ADD = """
INSERT INTO opsmon_cluster_shards (check_name)
SELECT unnest(%(names)s::text[]) ON CONFLICT (check_name) DO NOTHING
"""

_SHARDS_DROP = "DELETE FROM opsmon_cluster_shards WHERE check_name = ANY(%(names)s::text[])"

# Renewal keeps the generation: the row never left this instance.
_SHARDS_RENEW = """
UPDATE opsmon_cluster_shards SET expires_at = now() + make_interval(secs => %(lease)s)
WHERE owner = %(me)s AND check_name = ANY(%(names)s::text[])
RETURNING check_name, generation
"""

_SHARDS_RELEASE = """
UPDATE opsmon_cluster_shards SET owner = NULL, expires_at = now()
WHERE owner = %(me)s AND check_name = ANY(%(names)s::text[])
"""

# Rows locked by a concurrent claimer are skipped, never waited for or taken twice; a row
# claimed and committed meanwhile is no longer expired when re-checked, so it is left alone.
_SHARDS_CLAIM = """
WITH free AS (
    SELECT check_name FROM opsmon_cluster_shards
    WHERE (owner IS NULL OR expires_at <= now()) AND check_name = ANY(%(names)s::text[])
    ORDER BY random()
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE opsmon_cluster_shards AS s SET
    owner = %(me)s,
    generation = nextval('opsmon_cluster_shard_generation'),
    claimed_at = now(),
    expires_at = now() + make_interval(secs => %(lease)s)
FROM free WHERE s.check_name = free.check_name
RETURNING s.check_name, s.generation
"""

# With each row, its owner's judgement of the check (verdicts.py publishes it on change), so
# every instance can show the health of the checks it leaves to others.
_SHARDS_READ = """
SELECT s.check_name, s.owner, s.generation, s.expires_at > now(), v.health, v.reason,
       v.changed_at, v.kind
FROM opsmon_cluster_shards AS s
LEFT JOIN opsmon_cluster_views AS v ON v.instance = s.owner AND v.check_name = s.check_name
ORDER BY s.check_name
"""

_SHARDS_LIVE = """
SELECT instance FROM opsmon_cluster_members
WHERE last_seen > now() - make_interval(secs => %(window)s) ORDER BY instance
"""

# A copy about sharded checks is claimed in the notification log only while this instance
# owns every one of them, unexpired by the database's clock; the log row keeps the highest
# generation among them (a later owner's claim outranks an undelivered earlier one).
_OWNED = """
SELECT max(generation) AS epoch FROM opsmon_cluster_shards
WHERE check_name = ANY(%(checks)s::text[]) AND owner = %(me)s AND expires_at > now()
HAVING count(*) = %(count)s
"""

_SHARD_CLAIM = _CLAIM.replace(f"FROM ({_OURS}) AS ours", f"FROM ({_OWNED}) AS ours")

_STATUS_LEASE = """
SELECT holder, epoch, acquired_at, renewed_at, expires_at,
       extract(epoch FROM expires_at - now())::float8, now()
FROM opsmon_cluster_lease WHERE name = %(name)s
"""

_STATUS_MEMBERS = """
SELECT instance, started_at, last_seen, version,
       extract(epoch FROM now() - last_seen)::float8
FROM opsmon_cluster_members ORDER BY instance
"""


class StoreUnavailable(Exception):
    """The cluster store could not be asked; the message names no password."""


class NameTaken(Exception):
    """Another live process renews its membership under this instance's name."""


@dataclass(frozen=True)
class LeaseRow:
    """The lease as the store has it: who holds it, the epoch, seconds until it expires;
    and how many members are live (renewed within two leases, this one included)."""

    holder: str
    epoch: int
    remaining: float
    members: int = 1


@dataclass(frozen=True)
class ReadMark:
    """Where a reader of the rows other instances change goes on from: the time the last
    row it read changed (by the store's clock) and that row's key."""

    at: datetime
    key: tuple[str | float, ...]

    @classmethod
    def start(cls, size: int) -> ReadMark:
        """Before every row (a key of `size` parts)."""
        return cls(_EPOCH, _lowest(size))

    def back(self, seconds: float) -> ReadMark:
        """Before every row that changed less than `seconds` before this mark: a row written
        just before a read may commit just after it, so each pass looks back this far."""
        return ReadMark(self.at - timedelta(seconds=seconds), _lowest(len(self.key)))

    def params(self, limit: int) -> dict[str, object]:
        """The statement's parameters: `at`, `k0`, `k1`... and `limit`."""
        keys = {f"k{n}": part for n, part in enumerate(self.key)}
        return {"at": self.at, **keys, "limit": limit}


def _lowest(size: int) -> tuple[str | float, ...]:
    # Below every key: text sorts after '' and the history key ends with a float8 start.
    return ("",) if size == 1 else ("",) * (size - 1) + (float("-inf"),)


@dataclass(frozen=True)
class View:
    """One instance's judgement of one check (cluster/verdicts.py)."""

    instance: str
    check: str
    health: Health
    kind: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Member:
    """One instance that has renewed its membership."""

    instance: str
    started_at: datetime
    last_seen: datetime
    version: str
    age: float  # seconds since it was last seen


@dataclass(frozen=True)
class ClusterStatus:
    """What `opsmon cluster status` shows."""

    holder: str | None
    epoch: int | None
    acquired_at: datetime | None
    renewed_at: datetime | None
    expires_at: datetime | None
    remaining: float | None
    now: datetime | None
    members: tuple[Member, ...]
    shards: tuple[ShardRow, ...] = ()


class ClusterStore:
    """One autocommit connection to the cluster store, opened on demand and reopened after
    any failure. Calls on one store run one at a time (psycopg serialises them); the lease
    keeper uses a store of its own so a slow claim never delays a renewal."""

    def __init__(self, dsn: str, instance: str, timeout: float) -> None:
        params: dict[str, Any] = parse_dsn(dsn)
        params["connect_timeout"] = str(max(_MIN_CONNECT_TIMEOUT, round(timeout)))
        params.setdefault("application_name", f"opsmon cluster {instance}"[:63])
        self._params = params
        self._timeout = timeout
        self._target = f"{params.get('host', 'local socket')}:{params.get('port', '5432')}"
        password = params.get("password", "")
        self._redactor = Redactor(password_candidates(dsn) | ({password} if password else set()))
        self.instance = instance
        self._run = uuid.uuid4().hex
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._migrated = False

    @property
    def target(self) -> str:
        """`host:port` of the store (no credentials)."""
        return self._target

    async def close(self) -> None:
        """Close the connection (if open)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _rows(self, sql: str, params: dict[str, object]) -> list[tuple[Any, ...]]:
        """Run one statement; StoreUnavailable (scrubbed) on any failure or timeout."""
        import psycopg

        async with self._lock:
            try:
                async with asyncio.timeout(self._timeout):
                    conn = await self._connection()
                    cursor = await conn.execute(sql, params, prepare=False)
                    return await cursor.fetchall() if cursor.description else []
            except TimeoutError:
                await self.close()
                raise StoreUnavailable(
                    f"cluster store {self._target}: no answer within {self._timeout:g}s"
                ) from None
            except (psycopg.Error, OSError) as exc:
                await self.close()
                detail = (
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                )
                raise StoreUnavailable(
                    self._redactor.text(f"cluster store {self._target}: {detail}")
                ) from None

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                autocommit=True, prepare_threshold=None, **self._params
            )
        if not self._migrated:
            await self._migrate(self._conn)
            self._migrated = True
        return self._conn

    @staticmethod
    async def _migrate(conn: psycopg.AsyncConnection[Any]) -> None:
        # One transaction under an advisory lock: instances starting together migrate once.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('opsmon_cluster_schema'))")
            await conn.execute(_MIGRATE)
            cursor = await conn.execute("SELECT max(version) FROM opsmon_cluster_schema")
            row = await cursor.fetchone()
            done = int(row[0]) if row is not None and row[0] is not None else 0
            for version, step in enumerate(MIGRATIONS[done:], start=done + 1):
                await conn.execute(step)
                await conn.execute(
                    "INSERT INTO opsmon_cluster_schema (version) VALUES (%s)", (version,)
                )

    # --- the lease ------------------------------------------------------------------------
    async def renew(self, lease: float, version: str) -> LeaseRow:
        """Record this member alive and take or renew the leader lease (if free or ours), in
        one round trip; the lease as it stands afterwards, with the live members. NameTaken
        if another live process has this instance's name (then the lease is left alone)."""
        params = {
            "name": LEASE_NAME,
            "me": self.instance,
            "run": self._run,
            "version": version,
            "window": 2 * lease,
            "lease": lease,
        }
        [(beat, members, holder, epoch, remaining)] = await self._rows(_RENEW, params)
        if not beat:
            raise NameTaken(
                f"another opsmon process renews its membership as {self.instance!r}: give "
                "each instance its own `cluster.instance`"
            )
        if holder is None:  # nobody held it and the insert lost a race: look again next time
            return LeaseRow("", 0, 0.0, int(members))
        return LeaseRow(str(holder), int(epoch), float(remaining), int(members))

    async def release(self, epoch: int) -> None:
        """Give the lease up now (a clean stop) and leave the members."""
        await self._rows(_RELEASE, {"name": LEASE_NAME, "me": self.instance, "epoch": epoch})
        await self.leave()

    async def leave(self) -> None:
        """Leave the members (a clean stop of a follower)."""
        await self._rows(_LEAVE, {"me": self.instance, "run": self._run})

    # --- fenced writes --------------------------------------------------------------------
    async def claim(
        self,
        epoch: int,
        channel: str,
        group: str,
        content: str,
        notification_id: str,
        created_at: datetime,
        reminder: bool,
    ) -> bool:
        """Claim the group's next notification under `epoch`; granted only while the lease is
        ours and the receivers would learn something new (see `_CLAIM`)."""
        news = _news(channel, group, content, notification_id, created_at, reminder)
        params = {"name": LEASE_NAME, "me": self.instance, "epoch": epoch, **news}
        return bool(await self._rows(_CLAIM, params))

    async def logged(self, channel: str, group: str) -> Logged | None:
        """The group's row in the notification log."""
        rows = await self._rows(_LOGGED, {"channel": channel, "group": group})
        if not rows:
            return None
        content, notification_id, claimed_at, delivered, instance = rows[0]
        return Logged(str(content), str(notification_id), claimed_at, bool(delivered), instance)

    async def delivered(
        self, channel: str, group: str, notification_id: str, alerts: Sequence[object]
    ) -> None:
        """The receiver accepted the claimed notification, whose firing alerts about checks
        are `alerts` (claims.paged_alerts)."""
        params = {"channel": channel, "group": group, "id": notification_id}
        await self._rows(_DELIVERED, {**params, "alerts": json.dumps(list(alerts))})

    async def paged_firing(self, checks: Sequence[str]) -> list[PagedAlert]:
        """The alerts about `checks` that the receivers were last told are firing."""
        rows = await self._rows(_PAGED_FIRING, {"checks": list(checks)})
        return [
            PagedAlert(
                check=str(check),
                labels={str(k): str(v) for k, v in alert["labels"].items()},
                summary=str(alert["summary"]),
                description=str(alert["description"]),
                runbook_url=str(alert["runbook_url"]),
                starts_at=datetime.fromisoformat(alert["starts_at"]),
                paged_by=str(instance),
            )
            for check, alert, instance in rows
        ]

    async def act(self, epoch: int, action: str) -> bool:
        """Record `action` under `epoch`; False (nothing written) if the lease is not ours."""
        params = {"name": LEASE_NAME, "me": self.instance, "epoch": epoch, "action": action}
        return bool(await self._rows(_ACT, params))

    async def claim_sharded(
        self,
        checks: Sequence[str],
        channel: str,
        group: str,
        content: str,
        notification_id: str,
        created_at: datetime,
        reminder: bool,
    ) -> bool:
        """Claim the group's next notification for sharded `checks`: granted only while this
        instance owns every one of them (unexpired) and the receivers would learn something
        new (the same rules as `claim`)."""
        owned = sorted(set(checks))
        news = _news(channel, group, content, notification_id, created_at, reminder)
        params = {"checks": owned, "count": len(owned), "me": self.instance, **news}
        return bool(await self._rows(_SHARD_CLAIM, params))

    # --- shards ---------------------------------------------------------------------------
    async def add_shards(self, names: Sequence[str]) -> None:
        """Make sure every check in `names` has a row (new ones unowned)."""
        if names:
            await self._rows(_SHARDS_ADD, {"names": list(names)})

    async def drop_shards(self, names: Sequence[str]) -> None:
        """Delete the rows of checks that are no longer configured."""
        if names:
            await self._rows(_SHARDS_DROP, {"names": list(names)})

    async def renew_shards(self, names: Sequence[str], lease: float) -> dict[str, int]:
        """Extend this instance's rows among `names` by `lease`; name -> generation of those
        still ours."""
        if not names:
            return {}
        params = {"me": self.instance, "names": list(names), "lease": lease}
        return {str(n): int(g) for n, g in await self._rows(_SHARDS_RENEW, params)}

    async def release_shards(self, names: Sequence[str]) -> None:
        """Give these rows up now (another instance may claim them at once)."""
        if names:
            await self._rows(_SHARDS_RELEASE, {"me": self.instance, "names": list(names)})

    async def claim_shards(self, among: Sequence[str], limit: int, lease: float) -> dict[str, int]:
        """Take up to `limit` unowned or expired rows of the checks `among` (`FOR UPDATE
        SKIP LOCKED`); name -> new generation of those taken."""
        if limit <= 0 or not among:
            return {}
        params = {"me": self.instance, "limit": limit, "lease": lease, "names": list(among)}
        return {str(n): int(g) for n, g in await self._rows(_SHARDS_CLAIM, params)}

    async def shards(self) -> list[ShardRow]:
        """Every row of the shard table, by check name."""
        rows = await self._rows(_SHARDS_READ, {})
        return [
            ShardRow(
                str(n), o, int(g), bool(live), Judgement(h, r or "", at, k or "") if h else None
            )
            for n, o, g, live, h, r, at, k in rows
        ]

    async def live_member_names(self, window: float) -> list[str]:
        """The instances seen within `window` seconds."""
        return [str(n) for (n,) in await self._rows(_SHARDS_LIVE, {"window": window})]

    # --- shared silences -----------------------------------------------------------------
    async def share_silences(self, silences: Sequence[Silence]) -> None:
        """Put this instance's silences in the store (an earlier end wins)."""
        for silence in silences:
            await self._rows(
                _SHARE_SILENCE,
                {
                    "id": silence.id,
                    "matchers": json.dumps(dict(silence.matchers), sort_keys=True),
                    "starts": silence.starts_at,
                    "ends": silence.ends_at,
                    "comment": silence.comment,
                    "by": silence.created_by,
                    "created": silence.created_at or silence.starts_at,
                    "me": self.instance,
                },
            )

    async def shared_silences(self, since: datetime) -> list[Silence]:
        """Every silence in the store not ended before `since`."""
        rows = await self._rows(_SHARED_SILENCES, {"since": since})
        return [
            Silence(
                id=str(sid),
                matchers=json.loads(matchers),
                starts_at=starts,
                ends_at=ends,
                comment=str(comment),
                created_by=str(by),
                created_at=created,
            )
            for sid, matchers, starts, ends, comment, by, created in rows
        ]

    # --- shared acks ---------------------------------------------------------------------
    async def share_acks(self, acks: Sequence[Ack]) -> None:
        """Put acks made (or adopted) on this instance in the store (one round trip)."""
        await self._rows(
            _SHARE_ACKS,
            {
                "me": self.instance,
                "sources": [a.source for a in acks],
                "ats": [a.acked_at for a in acks],
                "bys": [a.acked_by for a in acks],
            },
        )

    async def shared_acks(self, sources: Sequence[str]) -> list[Ack]:
        """Every ack in the store of one of `sources`, oldest first."""
        rows = await self._rows(_SHARED_ACKS, {"sources": list(sources)})
        return [Ack(str(source), str(by), at) for source, by, at in rows]

    # --- shared history ------------------------------------------------------------------
    async def share_history(self, rows: Sequence[Rollup]) -> None:
        """Put this instance's history rows in the store as they stand (one round trip)."""
        cutoffs = retention_cutoffs(datetime.now(UTC).timestamp())
        await self._rows(
            _SHARE_HISTORY,
            {
                "me": self.instance,
                "hour_cutoff": cutoffs[Period.HOUR],
                "day_cutoff": cutoffs[Period.DAY],
                "checks": [r.check for r in rows],
                "periods": [r.period.value for r in rows],
                "starts": [r.start for r in rows],
                "totals": [r.total for r in rows],
                "oks": [r.ok for r in rows],
                "unknowns": [r.unknown for r in rows],
                "histograms": [encode_histogram(r.histogram) for r in rows],
            },
        )

    async def peer_history(
        self, after: ReadMark, limit: int
    ) -> tuple[list[PeerRollup], ReadMark | None]:
        """Up to `limit` rows of the other instances changed after `after`, in the order they
        changed, and the mark of the last one (None: none)."""
        rows = await self._rows(_PEER_HISTORY, {"me": self.instance, **after.params(limit)})
        found = [
            PeerRollup(
                str(instance),
                Rollup(
                    str(check),
                    Period(period),
                    float(start),
                    int(total),
                    int(ok),
                    int(unknown),
                    decode_histogram(histogram),
                ),
            )
            for instance, check, period, start, total, ok, unknown, histogram, _ in rows
        ]
        if not rows:
            return found, None
        instance, check, period, start = rows[-1][:4]
        return found, ReadMark(rows[-1][-1], (str(instance), str(period), str(check), start))

    # --- rollback guards --------------------------------------------------------------------
    async def share_guards(self, state: GuardState) -> None:
        """Put this instance's new guard state in the store (one round trip; none if there is
        nothing new). The rules are in cluster/rollback_share.py."""
        if not state.empty():
            await self._rows(_SHARE_GUARDS, {"me": self.instance, **_guard_params(state)})

    async def shared_guards(self, since: datetime) -> GuardState:
        """The cluster's guard state: freezes and lifts (the newest of each per service), bad
        images, last known goods, and the rollbacks started at `since` or later."""
        rows = await self._rows(_SHARED_GUARDS, {"since": since})
        freezes, lifts, bad, lkgs, runs = rows[0]
        return GuardState(
            tuple(
                SharedFreeze(r["service"], _time(r["since"]), r["reason"], r["instance"])
                for r in freezes
            ),
            tuple(
                SharedLift(r["service"], _time(r["upto"]), _time(r["lifted_at"]), r["instance"])
                for r in lifts
            ),
            tuple(
                SharedBadImage(
                    r["service"],
                    r["image_id"],
                    r["image"],
                    _time(r["marked_at"]),
                    r["reason"],
                    r["instance"],
                )
                for r in bad
            ),
            tuple(
                SharedLkg(
                    r["service"],
                    r["project"],
                    r["image"],
                    r["image_id"],
                    r["container_id"],
                    _time(r["promoted_at"]),
                    r["instance"],
                )
                for r in lkgs
            ),
            tuple(
                SharedRollback(
                    r["id"],
                    r["service"],
                    r["instance"],
                    r["status"],
                    _time(r["started_at"]),
                    _time(r["finished_at"]) if r["finished_at"] else None,
                    r["bad_image"],
                    r["target_image"],
                )
                for r in runs
            ),
        )

    # --- shared incidents ----------------------------------------------------------------
    async def share_incidents(self, incidents: Sequence[Incident]) -> None:
        """Put this instance's incidents of checks in the store as they stand (one round
        trip; unchanged ones are left as they are)."""
        await self._rows(
            _SHARE_INCIDENTS,
            {
                "me": self.instance,
                "ids": [i.id for i in incidents],
                "sources": [i.source for i in incidents],
                "statuses": [i.status.value for i in incidents],
                "alertnames": [i.alertname for i in incidents],
                "severities": [i.severity for i in incidents],
                "summaries": [i.summary for i in incidents],
                "descriptions": [i.description for i in incidents],
                "runbooks": [i.runbook_url for i in incidents],
                "labels": [json.dumps(i.labels, sort_keys=True) for i in incidents],
                "starts": [i.started_at for i in incidents],
                "ends": [i.ended_at for i in incidents],
                "ackers": [i.acked_by for i in incidents],
                "acked": [i.acked_at for i in incidents],
            },
        )

    async def peer_incidents(
        self, after: ReadMark, limit: int
    ) -> tuple[list[PeerIncident], ReadMark | None]:
        """Up to `limit` incidents of the other instances changed after `after`, in the order
        they changed, and the mark of the last one (None: none)."""
        rows = await self._rows(_PEER_INCIDENTS, {"me": self.instance, **after.params(limit)})
        found = [
            PeerIncident(
                str(row[0]),
                Incident(
                    id=str(row[1]),
                    source=str(row[2]),
                    status=Status(row[3]),
                    alertname=str(row[4]),
                    severity=str(row[5]),
                    summary=str(row[6]),
                    description=str(row[7]),
                    runbook_url=str(row[8]),
                    labels=json.loads(row[9]),
                    started_at=row[10],
                    ended_at=row[11],
                    acked_by=row[12],
                    acked_at=row[13],
                ),
            )
            for row in rows
        ]
        return found, (ReadMark(rows[-1][-1], (str(rows[-1][1]),)) if rows else None)

    # --- verdicts -------------------------------------------------------------------------
    async def publish_views(self, views: Sequence[View]) -> None:
        """Record this instance's judgement of each check in `views` (one round trip)."""
        await self._rows(
            _PUBLISH_VIEWS,
            {
                "me": self.instance,
                "checks": [v.check for v in views],
                "healths": [v.health.value for v in views],
                "kinds": [v.kind for v in views],
                "reasons": [v.reason for v in views],
            },
        )

    async def failing_views(self, window: float) -> tuple[int, list[View]]:
        """How many instances were seen within `window` seconds, and the failing views of
        the others among them."""
        rows = await self._rows(_FAILING_VIEWS, {"me": self.instance, "window": window})
        live = int(rows[0][0]) if rows else 0
        views = [
            View(str(instance), str(check), Health.UNHEALTHY, str(kind), str(reason))
            for _, instance, check, kind, reason in rows
            if instance is not None
        ]
        return live, views

    # --- status ---------------------------------------------------------------------------
    async def status(self) -> ClusterStatus:
        """The lease and every member, as the store has them."""
        lease = await self._rows(_STATUS_LEASE, {"name": LEASE_NAME})
        members = tuple(Member(*row) for row in await self._rows(_STATUS_MEMBERS, {}))
        shards = tuple(await self.shards())
        if not lease:
            return ClusterStatus(None, None, None, None, None, None, None, members, shards)
        holder, epoch, acquired, renewed, expires, remaining, now = lease[0]
        return ClusterStatus(
            holder, epoch, acquired, renewed, expires, remaining, now, members, shards
        )


def _time(value: str) -> datetime:
    """A timestamp as json_agg writes it (ISO 8601 with an offset)."""
    return datetime.fromisoformat(value)


def _guard_params(state: GuardState) -> dict[str, object]:
    """The arrays `_SHARE_GUARDS` unnests."""
    f, lf, b, k, r = state.freezes, state.lifts, state.bad_images, state.lkgs, state.rollbacks
    return {
        "f_service": [x.service for x in f],
        "f_since": [x.since for x in f],
        "f_reason": [x.reason for x in f],
        "l_service": [x.service for x in lf],
        "l_upto": [x.upto for x in lf],
        "l_at": [x.lifted_at for x in lf],
        "b_service": [x.service for x in b],
        "b_id": [x.image_id for x in b],
        "b_image": [x.image for x in b],
        "b_at": [x.marked_at for x in b],
        "b_reason": [x.reason for x in b],
        "k_service": [x.service for x in k],
        "k_project": [x.project for x in k],
        "k_image": [x.image for x in k],
        "k_id": [x.image_id for x in k],
        "k_container": [x.container_id for x in k],
        "k_at": [x.promoted_at for x in k],
        "r_id": [x.id for x in r],
        "r_service": [x.service for x in r],
        "r_status": [x.status for x in r],
        "r_started": [x.started_at for x in r],
        "r_finished": [x.finished_at for x in r],
        "r_bad": [x.bad_image for x in r],
        "r_target": [x.target_image for x in r],
    }


def _news(
    channel: str,
    group: str,
    content: str,
    notification_id: str,
    created_at: datetime,
    reminder: bool,
) -> dict[str, object]:
    """The parameters every claim of a group's next notification shares."""
    return {
        "channel": channel,
        "group": group,
        "content": content,
        "id": notification_id,
        "created": created_at,
        "reminder": reminder,
    }
