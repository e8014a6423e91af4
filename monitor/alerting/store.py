"""Alerting's durable state in the daemon's SQLite file (monitor/store.py): incidents, alert
groups' timing, the notification outbox and silences. Alerting owns these tables and their
schema steps; the plumbing (connection, WAL, locking, file mode, migrations) is monitor.store."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from monitor.alerting.model import Ack, Incident, Notification, OutboxEntry, Silence, Status
from monitor.resilient_db import ResilientConnection, StoreHealth
from monitor.store import Store

TABLES: dict[str, tuple[str, ...]] = {
    "incidents": (
        """CREATE TABLE incidents (
            id TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            status TEXT NOT NULL,
            alertname TEXT NOT NULL,
            severity TEXT NOT NULL,
            summary TEXT NOT NULL,
            description TEXT NOT NULL,
            runbook_url TEXT NOT NULL,
            labels TEXT NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL,
            notified TEXT,
            suppressed TEXT
        );
        CREATE INDEX incidents_by_status ON incidents (status, notified);
        CREATE INDEX incidents_by_source ON incidents (source, status);""",
        """ALTER TABLE incidents ADD COLUMN acked_by TEXT;
        ALTER TABLE incidents ADD COLUMN acked_at REAL;
        CREATE INDEX incidents_by_start ON incidents (started_at, id);""",
    ),
    "alert_groups": (
        """CREATE TABLE alert_groups (
            key TEXT PRIMARY KEY,
            last_flush_at REAL,
            channel_sent TEXT NOT NULL DEFAULT '{}'
        );""",
    ),
    "outbox": (
        """CREATE TABLE outbox (
            id TEXT PRIMARY KEY,
            channel TEXT NOT NULL,
            group_key TEXT NOT NULL,
            payload TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            next_attempt_at REAL NOT NULL,
            last_error TEXT,
            finished_at REAL,
            seq INTEGER NOT NULL
        );
        CREATE INDEX outbox_pending ON outbox (state, channel, group_key, seq);""",
    ),
    "silences": (
        """CREATE TABLE silences (
            id TEXT PRIMARY KEY,
            matchers TEXT NOT NULL,
            starts_at REAL NOT NULL,
            ends_at REAL NOT NULL,
            comment TEXT NOT NULL DEFAULT '',
            created_by TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL
        );""",
    ),
    # The other instances' incidents of checks (a cluster's, cluster/history.py), as they
    # last shared them: the status page and the API list those this instance has no record of.
    "peer_incidents": (
        """CREATE TABLE peer_incidents (
            id TEXT PRIMARY KEY,
            instance TEXT NOT NULL,
            source TEXT NOT NULL,
            status TEXT NOT NULL,
            alertname TEXT NOT NULL,
            severity TEXT NOT NULL,
            summary TEXT NOT NULL,
            description TEXT NOT NULL,
            runbook_url TEXT NOT NULL,
            labels TEXT NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL,
            acked_by TEXT,
            acked_at REAL
        );
        CREATE INDEX peer_incidents_by_source ON peer_incidents (source, started_at);""",
    ),
}

_INCIDENT_COLUMNS = (
    "id, source, status, alertname, severity, summary, description, runbook_url, labels,"
    " started_at, ended_at, acked_by, acked_at"
)
# This instance's incidents, and the other instances' that it has no overlapping record of
# (of one outage seen by several, the one that lasted longest; a firing one lasts longest).
_SHOWN_INCIDENTS = f"""(
    SELECT {_INCIDENT_COLUMNS}, notified, suppressed FROM incidents
    UNION ALL
    SELECT {_INCIDENT_COLUMNS}, NULL, NULL FROM peer_incidents AS p
    WHERE NOT EXISTS (
        SELECT 1 FROM incidents AS i WHERE i.source = p.source
        AND i.started_at <= coalesce(p.ended_at, 1e300)
        AND coalesce(i.ended_at, 1e300) >= p.started_at
    ) AND NOT EXISTS (
        SELECT 1 FROM peer_incidents AS q WHERE q.source = p.source AND q.id != p.id
        AND q.started_at <= coalesce(p.ended_at, 1e300)
        AND coalesce(q.ended_at, 1e300) >= p.started_at
        AND (coalesce(q.ended_at, 1e300) > coalesce(p.ended_at, 1e300)
             OR (coalesce(q.ended_at, 1e300) = coalesce(p.ended_at, 1e300) AND q.id < p.id))
    )
)"""


@dataclass(frozen=True)
class PeerIncident:
    """Another instance's incident of a check, as it shared it."""

    instance: str
    incident: Incident


def _ts(value: datetime) -> float:
    return value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _dt_required(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class AlertingStore:
    """Alerting's tables on a `Store` (the SQLite file); explicit methods per kind of record."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._db = store.connection
        # Alone, the lists read the incidents table only (no other instance's to add).
        self._shown = "incidents"
        if self._db.execute("SELECT 1 FROM peer_incidents LIMIT 1").fetchone():
            self._shown = _SHOWN_INCIDENTS

    @classmethod
    def open(cls, state_dir: Path, health: StoreHealth | None = None) -> AlertingStore:
        """Open (creating if needed) the state file in `state_dir` with alerting's tables;
        with `health` (the daemon) it keeps working from memory on disk faults."""
        return cls(Store.open(state_dir, TABLES, health))

    @property
    def path(self) -> Path:
        """The database file."""
        return self._store.path

    @property
    def connection(self) -> ResilientConnection:
        """The SQLite connection it shares with the other stores on the same `Store`."""
        return self._store.connection

    def close(self) -> None:
        """Close the connection."""
        self._store.close()

    def transaction(self) -> AbstractContextManager[None]:
        """Everything inside commits together or not at all (see `Store.transaction`)."""
        return self._store.transaction()

    # --- incidents -----------------------------------------------------------------------------
    def add_incident(self, incident: Incident) -> None:
        """Record a new incident."""
        self._db.execute(
            "INSERT INTO incidents (id, source, status, alertname, severity, summary, description,"
            " runbook_url, labels, started_at, ended_at, notified, suppressed)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                incident.id,
                incident.source,
                incident.status.value,
                incident.alertname,
                incident.severity,
                incident.summary,
                incident.description,
                incident.runbook_url,
                json.dumps(incident.labels),
                _ts(incident.started_at),
                _ts(incident.ended_at) if incident.ended_at else None,
                incident.notified.value if incident.notified else None,
                incident.suppressed,
            ),
        )

    def resolve_incident(self, incident_id: str, ended_at: datetime, note: str = "") -> None:
        """Mark an incident resolved (a note, if any, is appended to its description)."""
        self._db.execute(
            "UPDATE incidents SET status = 'resolved', ended_at = ?,"
            " description = description || ? WHERE id = ? AND status = 'firing'",
            (_ts(ended_at), note, incident_id),
        )

    def set_notified(self, incident_ids: Iterable[str], status: Status) -> None:
        """Record what the receivers were told about these incidents."""
        self._db.executemany(
            "UPDATE incidents SET notified = ? WHERE id = ?",
            [(status.value, i) for i in incident_ids],
        )

    def set_suppressed(self, incident_id: str, reason: str | None) -> None:
        """Record why an incident is held back (None: it is not)."""
        self._db.execute("UPDATE incidents SET suppressed = ? WHERE id = ?", (reason, incident_id))

    def open_incident(self, source: str) -> Incident | None:
        """The firing incident of `source`, if there is one."""
        row = self._db.execute(
            "SELECT * FROM incidents WHERE source = ? AND status = 'firing'"
            " ORDER BY started_at DESC LIMIT 1",
            (source,),
        ).fetchone()
        return self._incident(row) if row else None

    def incident(self, incident_id: str) -> Incident | None:
        """One incident by id (this instance's, or one another instance shared)."""
        row = self._db.execute(
            f"SELECT * FROM {self._shown} WHERE id = ?", (incident_id,)
        ).fetchone()
        return self._incident(row) if row else None

    def live_incidents(self) -> list[Incident]:
        """Firing incidents, and resolved ones whose FIRING went out but whose RESOLVED did not."""
        rows = self._db.execute(
            "SELECT * FROM incidents WHERE status = 'firing'"
            " OR (status = 'resolved' AND notified = 'firing') ORDER BY started_at, id"
        ).fetchall()
        return [self._incident(row) for row in rows]

    def recent_incidents(self, limit: int = 50) -> list[Incident]:
        """This instance's newest incidents, newest first."""
        rows = self._db.execute(
            "SELECT * FROM incidents ORDER BY started_at DESC LIMIT ?", (limit,)
        ).fetchall()
        return [self._incident(row) for row in rows]

    def incidents_page(
        self, limit: int, before: tuple[float, str] | None = None, status: Status | None = None
    ) -> list[Incident]:
        """Up to `limit` incidents, newest first, older than `before` (start time, id): this
        instance's, and those other instances shared of outages it has no record of."""
        query, args = f"SELECT * FROM {self._shown} WHERE 1 = 1", []
        if before is not None:
            query += " AND (started_at < ? OR (started_at = ? AND id < ?))"
            args.extend([before[0], before[0], before[1]])
        if status is not None:
            query += " AND status = ?"
            args.append(status.value)
        rows = self._db.execute(
            query + " ORDER BY started_at DESC, id DESC LIMIT ?", [*args, limit]
        ).fetchall()
        return [self._incident(row) for row in rows]

    def incidents_named(self, alertname: str, since: datetime) -> list[Incident]:
        """Incidents of one alert name that started at or after `since`."""
        rows = self._db.execute(
            "SELECT * FROM incidents WHERE alertname = ? AND started_at >= ? ORDER BY started_at",
            (alertname, _ts(since)),
        ).fetchall()
        return [self._incident(row) for row in rows]

    def acknowledge(self, incident_id: str, by: str, at: datetime) -> bool:
        """Record who acknowledged a firing incident (the first one wins)."""
        for table in ("incidents", "peer_incidents"):
            # Another instance's incident acknowledged here reaches it as a shared ack.
            cursor = self._db.execute(
                f"UPDATE {table} SET acked_by = ?, acked_at = ?"
                " WHERE id = ? AND status = 'firing' AND acked_by IS NULL",
                (by, _ts(at), incident_id),
            )
            if cursor.rowcount > 0:
                return True
        return False

    def firing_acks(self) -> list[Ack]:
        """The acks of the incidents that are still firing."""
        rows = self._db.execute(
            "SELECT source, acked_by, acked_at FROM incidents"
            " WHERE status = 'firing' AND acked_by IS NOT NULL"
            " UNION SELECT source, acked_by, acked_at FROM peer_incidents"
            " WHERE status = 'firing' AND acked_by IS NOT NULL ORDER BY acked_at"
        ).fetchall()
        return [Ack(row[0], row[1], _dt_required(row[2])) for row in rows]

    def unacked_sources(self) -> list[str]:
        """The sources of the firing incidents nobody has acknowledged."""
        rows = self._db.execute(
            "SELECT DISTINCT source FROM incidents WHERE status = 'firing' AND acked_by IS NULL"
            " ORDER BY source"
        ).fetchall()
        return [row[0] for row in rows]

    def adopt_ack(self, ack: Ack, slack: float) -> bool:
        """Hold to an ack made elsewhere: mark the firing, unacknowledged incident of its source
        acknowledged if it had started by the time of the ack, give or take `slack` seconds
        (the instances open their incidents of one outage up to a round apart). An incident
        that started later is a new outage, which nobody has acknowledged yet."""
        cursor = self._db.execute(
            "UPDATE incidents SET acked_by = ?, acked_at = ?"
            " WHERE source = ? AND status = 'firing' AND acked_by IS NULL AND started_at <= ?",
            (ack.acked_by, _ts(ack.acked_at), ack.source, _ts(ack.acked_at) + slack),
        )
        return cursor.rowcount > 0

    def incidents_to_share(self, since: datetime) -> list[Incident]:
        """This instance's incidents of checks (cluster/history.py) that fire, or ended at
        or after `since`."""
        rows = self._db.execute(
            # A check's name holds no colon; opsmon's own sources (channel:, store:, ...)
            # are about this instance.
            "SELECT * FROM incidents WHERE instr(source, ':') = 0"
            " AND (status = 'firing' OR ended_at >= ?) ORDER BY started_at, id",
            (_ts(since),),
        ).fetchall()
        return [self._incident(row) for row in rows]

    def adopt_peer_incidents(self, peers: Iterable[PeerIncident]) -> None:
        """Hold other instances' incidents as they shared them (each replaces its last copy)."""
        peers = list(peers)
        if not peers:
            return
        with self.transaction():
            for peer in peers:
                i = peer.incident
                # An ack made here stands until the owner's copy carries one (it adopts
                # ours through the shared acks).
                self._db.execute(
                    "INSERT INTO peer_incidents (id, instance, source, status, alertname,"
                    " severity, summary, description, runbook_url, labels, started_at,"
                    " ended_at, acked_by, acked_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
                    " description = excluded.description, ended_at = excluded.ended_at,"
                    " acked_by = coalesce(excluded.acked_by, acked_by),"
                    " acked_at = coalesce(excluded.acked_at, acked_at)",
                    (
                        i.id,
                        peer.instance,
                        i.source,
                        i.status.value,
                        i.alertname,
                        i.severity,
                        i.summary,
                        i.description,
                        i.runbook_url,
                        json.dumps(i.labels),
                        _ts(i.started_at),
                        _ts(i.ended_at) if i.ended_at else None,
                        i.acked_by,
                        _ts(i.acked_at) if i.acked_at else None,
                    ),
                )
        self._shown = _SHOWN_INCIDENTS

    def count_firing(self) -> int:
        """How many incidents are firing."""
        row = self._db.execute("SELECT count(*) FROM incidents WHERE status = 'firing'").fetchone()
        return int(row[0])

    @staticmethod
    def _incident(row: sqlite3.Row) -> Incident:
        return Incident(
            id=row["id"],
            source=row["source"],
            status=Status(row["status"]),
            alertname=row["alertname"],
            severity=row["severity"],
            summary=row["summary"],
            description=row["description"],
            runbook_url=row["runbook_url"],
            labels=json.loads(row["labels"]),
            started_at=_dt_required(row["started_at"]),
            ended_at=_dt(row["ended_at"]),
            notified=Status(row["notified"]) if row["notified"] else None,
            suppressed=row["suppressed"],
            acked_by=row["acked_by"],
            acked_at=_dt(row["acked_at"]),
        )

    # --- alert groups ----------------------------------------------------------------------------
    def group_state(self, key: str) -> tuple[datetime | None, dict[str, datetime]]:
        """When group `key` last sent anything, and when it last sent to each channel."""
        row = self._db.execute(
            "SELECT last_flush_at, channel_sent FROM alert_groups WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None, {}
        sent = {ch: _dt_required(ts) for ch, ts in json.loads(row["channel_sent"]).items()}
        return _dt(row["last_flush_at"]), sent

    def save_group_state(
        self, key: str, last_flush_at: datetime | None, channel_sent: Mapping[str, datetime]
    ) -> None:
        """Remember a group's timing."""
        self._db.execute(
            "INSERT OR REPLACE INTO alert_groups (key, last_flush_at, channel_sent)"
            " VALUES (?, ?, ?)",
            (
                key,
                _ts(last_flush_at) if last_flush_at else None,
                json.dumps({ch: _ts(at) for ch, at in channel_sent.items()}),
            ),
        )

    # --- outbox --------------------------------------------------------------------------------
    def enqueue(self, notification: Notification) -> None:
        """Accept a notification for delivery (before anything is sent)."""
        self._db.execute(
            "INSERT INTO outbox (id, channel, group_key, payload, created_at, next_attempt_at, seq)"
            " VALUES (?, ?, ?, ?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM outbox))",
            (
                notification.id,
                notification.channel,
                notification.group_key,
                notification.to_json(),
                _ts(notification.created_at),
                _ts(notification.created_at),
            ),
        )

    def outbox_heads(self) -> list[OutboxEntry]:
        """The oldest pending notification of each (channel, group): the next one to deliver."""
        rows = self._db.execute(
            "SELECT o.* FROM outbox o JOIN (SELECT channel, group_key, min(seq) AS seq FROM outbox"
            " WHERE state = 'pending' GROUP BY channel, group_key) h ON o.seq = h.seq"
            " ORDER BY o.next_attempt_at, o.seq"
        ).fetchall()
        return [self._entry(row) for row in rows]

    def pending(
        self, channel: str | None = None, group_key: str | None = None
    ) -> list[OutboxEntry]:
        """Pending notifications, oldest first (optionally of one channel and group)."""
        query = "SELECT * FROM outbox WHERE state = 'pending'"
        args: list[str] = []
        if channel is not None:
            query += " AND channel = ?"
            args.append(channel)
        if group_key is not None:
            query += " AND group_key = ?"
            args.append(group_key)
        rows = self._db.execute(query + " ORDER BY seq", args).fetchall()
        return [self._entry(row) for row in rows]

    def count_pending(self) -> int:
        """How many notifications wait for delivery."""
        row = self._db.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()
        return int(row[0])

    def mark_delivered(self, notification_id: str, at: datetime) -> None:
        """A receiver accepted it."""
        self._db.execute(
            "UPDATE outbox SET state = 'delivered', finished_at = ?, attempts = attempts + 1"
            " WHERE id = ?",
            (_ts(at), notification_id),
        )

    def mark_failed(self, notification_id: str, next_attempt_at: datetime, error: str) -> None:
        """An attempt failed; try again at `next_attempt_at`."""
        self._db.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
            " WHERE id = ?",
            (_ts(next_attempt_at), error, notification_id),
        )

    def mark_dropped(self, notification_id: str, at: datetime, why: str) -> None:
        """Give up on a notification (its channel is gone, or it is too old to matter)."""
        self._db.execute(
            "UPDATE outbox SET state = 'dropped', finished_at = ?, last_error = ? WHERE id = ?",
            (_ts(at), why, notification_id),
        )

    def prune(self, before: datetime, incidents_before: datetime | None = None) -> None:
        """Forget delivered or dropped notifications and silences that ended before `before`,
        and resolved incidents that ended before `incidents_before` (default: `before`)."""
        with self.transaction():
            self._db.execute(
                "DELETE FROM outbox WHERE state != 'pending' AND finished_at < ?", (_ts(before),)
            )
            self._db.execute(
                "DELETE FROM incidents WHERE status = 'resolved' AND notified IS NOT 'firing'"
                " AND ended_at < ?",
                (_ts(incidents_before or before),),
            )
            self._db.execute("DELETE FROM silences WHERE ends_at < ?", (_ts(before),))
            self._db.execute(
                "DELETE FROM peer_incidents WHERE status = 'resolved' AND ended_at < ?",
                (_ts(incidents_before or before),),
            )

    @staticmethod
    def _entry(row: sqlite3.Row) -> OutboxEntry:
        return OutboxEntry(
            notification=Notification.from_json(row["payload"]),
            attempts=row["attempts"],
            next_attempt_at=_dt_required(row["next_attempt_at"]),
            state=row["state"],
            last_error=row["last_error"],
        )

    # --- silences ------------------------------------------------------------------------------
    def add_silence(self, silence: Silence) -> None:
        """Store a silence (from `opsmon silence add`)."""
        created = silence.created_at or silence.starts_at
        self._db.execute(
            "INSERT INTO silences (id, matchers, starts_at, ends_at, comment, created_by,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                silence.id,
                json.dumps(dict(silence.matchers)),
                _ts(silence.starts_at),
                _ts(silence.ends_at),
                silence.comment,
                silence.created_by,
                _ts(created),
            ),
        )

    def silences(self, since: datetime | None = None) -> list[Silence]:
        """Stored silences, oldest first; with `since`, only those not ended before it."""
        query, args = "SELECT * FROM silences", []
        if since is not None:
            query += " WHERE ends_at > ?"
            args.append(_ts(since))
        rows = self._db.execute(query + " ORDER BY starts_at, id", args).fetchall()
        return [
            Silence(
                id=row["id"],
                matchers=json.loads(row["matchers"]),
                starts_at=_dt_required(row["starts_at"]),
                ends_at=_dt_required(row["ends_at"]),
                comment=row["comment"],
                created_by=row["created_by"],
                created_at=_dt(row["created_at"]),
            )
            for row in rows
        ]

    def expire_silence(self, silence_id: str, at: datetime) -> bool:
        """End a silence now; False if no unexpired silence has that id."""
        cursor = self._db.execute(
            "UPDATE silences SET ends_at = ?, starts_at = min(starts_at, ?)"
            " WHERE id = ? AND ends_at > ?",
            (_ts(at), _ts(at), silence_id, _ts(at)),
        )
        return cursor.rowcount > 0
