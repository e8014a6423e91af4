"""Adapters from the daemon's records to what the status pages and the API read: check states,
incidents (alerting's records in the state store) and silences (the same store as
`opsmon silence`). Decisions are pure functions; the classes only fetch and convert."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from monitor.alerting.model import Incident, Silence, Status
from monitor.alerting.silence_cli import silence_rows
from monitor.alerting.store import AlertingStore
from monitor.alertnames import AlertName
from monitor.config import Config
from monitor.redaction import Redactor
from monitor.state import CheckState
from monitor.status.data import Cursor
from monitor.status.view import CheckInfo, IncidentRecord

ROLLBACK_ALERT = AlertName.ROLLBACK_PERFORMED.value


class RunnerLike(Protocol):
    """What a check's info is read from: its spec and its state machine."""

    @property
    def state(self) -> CheckState:
        """The check's health state."""
        ...

    @property
    def spec(self) -> Any:
        """The check's validated config (name, type, service)."""
        ...


class RunnerChecks:
    """Check states from the daemon's runners, with errors redacted, and (sharding) the
    checks other instances run, as their owners judge them."""

    def __init__(
        self,
        runners: Callable[[], Mapping[str, RunnerLike]],
        redactor: Redactor,
        elsewhere: Callable[[], Sequence[Mapping[str, object]]] = list,
    ) -> None:
        self._runners = runners
        self._redactor = redactor
        self._elsewhere = elsewhere

    def checks(self) -> list[CheckInfo]:
        """Every check as it is now."""
        result = []
        for runner in list(self._runners().values()):
            state, spec = runner.state, runner.spec
            error = state.last_failure.reason if state.last_failure else None
            result.append(
                CheckInfo(
                    name=spec.name,
                    type=spec.type,
                    service=spec.service,
                    state=state.health.value,
                    since=state.since,
                    last_error=self._redactor.text(error) if error else None,
                )
            )
        result.extend(owned_elsewhere(entry) for entry in self._elsewhere())
        return result


def owned_elsewhere(entry: Mapping[str, object]) -> CheckInfo:
    """A check another instance runs (its /api/status entry, cluster/shards.py), with the
    health its owner judged (already redacted by the owner)."""
    since, error = entry.get("since"), entry.get("last_error")
    return CheckInfo(
        name=str(entry["name"]),
        type=str(entry["type"]),
        service=str(entry["service"]) if entry.get("service") else None,
        state=str(entry.get("health") or "unknown"),
        since=datetime.fromisoformat(since) if isinstance(since, str) else None,
        last_error=str(error) if error else None,
    )


def rolled_back(incident: Incident, rollbacks: Sequence[Incident], now: datetime) -> bool:
    """Whether a rollback of the incident's service was performed while it lasted."""
    service = incident.labels.get("service")
    if incident.alertname == ROLLBACK_ALERT:
        return True
    if not service:
        return False
    end = incident.ended_at or now
    return any(
        r.labels.get("service") == service and incident.started_at <= r.started_at <= end
        for r in rollbacks
    )


def incident_record(
    incident: Incident, rollbacks: Sequence[Incident], now: datetime
) -> IncidentRecord:
    """An alerting incident as the page and the API show it."""
    return IncidentRecord(
        id=incident.id,
        check=incident.labels.get("check"),
        service=incident.labels.get("service"),
        alertname=incident.alertname,
        severity=incident.severity,
        summary=incident.summary,
        description=incident.description,
        runbook_url=incident.runbook_url,
        started_at=incident.started_at,
        ended_at=incident.ended_at if incident.status is Status.RESOLVED else None,
        acked_by=incident.acked_by,
        acked_at=incident.acked_at,
        rolled_back=rolled_back(incident, rollbacks, now),
    )


class StoreIncidents:
    """Incidents from the state store (alerting writes them; summaries are redacted there)."""

    def __init__(self, store: AlertingStore, now: Callable[[], datetime]) -> None:
        self._store = store
        self._now = now

    def _records(self, incidents: Sequence[Incident]) -> list[IncidentRecord]:
        if not incidents:
            return []
        oldest = min(i.started_at for i in incidents)
        rollbacks = self._store.incidents_named(ROLLBACK_ALERT, oldest)
        now = self._now()
        return [incident_record(i, rollbacks, now) for i in incidents]

    def page(
        self, limit: int, after: Cursor | None = None, status: str | None = None
    ) -> list[IncidentRecord]:
        """Up to `limit` incidents, newest first, older than `after`."""
        before = (after.started_at, after.id) if after is not None else None
        wanted = Status(status) if status else None
        return self._records(self._store.incidents_page(limit, before, wanted))

    def get(self, incident_id: str) -> IncidentRecord | None:
        """One incident."""
        incident = self._store.incident(incident_id)
        return self._records([incident])[0] if incident is not None else None

    def acknowledge(self, incident_id: str, by: str, at: datetime) -> IncidentRecord | None:
        """Record the ack; None when the incident is not firing (or was acked meanwhile)."""
        if not self._store.acknowledge(incident_id, by, at):
            return None
        return self.get(incident_id)


class StoreSilences:
    """The silences of the state store (shared with `opsmon silence`) and the config's."""

    def __init__(self, store: AlertingStore, config: Callable[[], Config]) -> None:
        self._store = store
        self._config = config

    def listing(self, now: datetime, show_all: bool) -> list[dict[str, Any]]:
        """Rows as `opsmon silence list --json` prints them."""
        return silence_rows(self._config(), self._store, now, show_all)

    def add(self, silence: Silence) -> None:
        """Store a new silence (the running daemon's alerting picks it up within a second)."""
        self._store.add_silence(silence)

    def expire(self, silence_id: str, now: datetime) -> Silence | None:
        """End a stored silence now; None if no active or pending one has that id."""
        if not self._store.expire_silence(silence_id, now):
            return None
        return next((s for s in self._store.silences() if s.id == silence_id), None)
