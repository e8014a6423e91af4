"""Incidents: a check turning UNHEALTHY opens one (firing), HEALTHY resolves it. They live in
SQLite, so after a restart an open incident is still open (no second FIRING) and a check that
recovered meanwhile resolves it on its first healthy result."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from monitor import runbooks
from monitor.alerting.model import Incident, Status
from monitor.alerting.naming import AlertContent, describe_failure
from monitor.alerting.store import AlertingStore
from monitor.config import Config
from monitor.core.health import Health, Transition
from monitor.core.result import CheckResult
from monitor.core.spec import CheckSpec
from monitor.logs import get_logger
from monitor.metrics import Metrics
from monitor.redaction import Redactor

Describe = Callable[[CheckSpec, CheckResult], AlertContent]


class IncidentTracker:
    """Turns transitions into incident records."""

    def __init__(
        self,
        store: AlertingStore,
        metrics: Metrics,
        redactor: Redactor,
        public_url: str,
        runbook_template: str | None = None,
        describe: Describe = describe_failure,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._redactor = redactor
        self.public_url = public_url
        self.runbook_template = runbook_template
        self._describe = describe
        self._log = get_logger("alerting")
        self.update_gauge()

    def on_transition(self, transition: Transition, spec: CheckSpec) -> Incident | None:
        """Open or resolve the check's incident; return it if anything changed."""
        if transition.current is Health.UNHEALTHY:
            if self._store.open_incident(spec.name) is not None:
                return None  # still the same outage (e.g. across a restart)
            return self.open_for(spec, self._describe(spec, transition.result), transition.at)
        if transition.current is Health.HEALTHY:
            return self.resolve(spec.name, transition.at)
        return None

    def open_for(self, spec: CheckSpec, content: AlertContent, at: datetime) -> Incident | None:
        """Open the incident of a check with this content, unless one is open already."""
        labels = {"alertname": content.alertname, "severity": content.severity}
        labels["check"] = spec.name
        if spec.service:
            labels["service"] = spec.service
        return self.open(spec.name, content, labels, at)

    def open(
        self, source: str, content: AlertContent, labels: dict[str, str], at: datetime
    ) -> Incident | None:
        """Open an incident for `source` unless one is open already."""
        if self._store.open_incident(source) is not None:
            return None
        incident = Incident(
            id=uuid.uuid4().hex,
            source=source,
            alertname=content.alertname,
            severity=content.severity,
            summary=self._redactor.text(content.summary),
            description=self._redactor.text(content.description),
            runbook_url=self.runbook_link(content.alertname),
            labels=labels,
            started_at=at,
        )
        self._store.add_incident(incident)
        self._log.info(
            "incident_opened",
            incident=incident.id,
            alertname=incident.alertname,
            source=source,
            reason=incident.description,
        )
        self.update_gauge()
        return incident

    def resolve(self, source: str, at: datetime, note: str = "") -> Incident | None:
        """Resolve the open incident of `source`, if any."""
        incident = self._store.open_incident(source)
        if incident is None:
            return None
        self._store.resolve_incident(incident.id, at, note)
        incident.status, incident.ended_at = Status.RESOLVED, at
        if incident.notified is None and incident.suppressed is None:
            # Over before its group was due: the grouping saved a FIRING/RESOLVED pair.
            self._metrics.alerts_suppressed.labels("grouped").inc()
        self._log.info("incident_resolved", incident=incident.id, source=source)
        self.update_gauge()
        return incident

    def runbook_link(self, alertname: str) -> str:
        """The runbook URL of an alert (built where every emitter builds it)."""
        where = Config.model_construct(
            public_url=self.public_url, runbook_url_template=self.runbook_template
        )
        return runbooks.runbook_url(where, alertname)

    def update_gauge(self) -> None:
        """Set opsmon_incidents_open from the store."""
        self._metrics.incidents_open.set(self._store.count_firing())
