"""Every opsmon metric, defined once, on a registry that the caller passes in.

Label values are bounded: check and service names from config, kinds and states from fixed
sets. Never URLs, error text or container ids.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor import __version__
from monitor.exposition import TextExposition
from monitor.lean_metrics import LeanCounter, LeanGauge, LeanHistogram

_CHECK_LABELS = ("check", "type", "service")
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


class Metrics:
    """The daemon's metrics, all registered on `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._exposition = TextExposition()
        r = self.registry
        self.build_info = Gauge("opsmon_build_info", "opsmon version", ["version"], registry=r)
        self.build_info.labels(version=__version__).set(1)
        # checks (core): one series each per check, so the lean families (see lean_metrics)
        self.check_success = LeanGauge(
            "opsmon_check_success",
            "Last raw result of the check (1 ok, 0 failed)",
            _CHECK_LABELS,
            registry=r,
        )
        self.check_healthy = LeanGauge(
            "opsmon_check_healthy",
            "Health after thresholds (1 healthy, 0 unhealthy or unknown)",
            _CHECK_LABELS,
            registry=r,
        )
        self.check_duration = LeanHistogram(
            "opsmon_check_duration_seconds",
            "Duration of check runs",
            ("check", "type"),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.check_runs = LeanCounter(
            "opsmon_check_runs_total",
            "Check runs by result",
            ("check", "type", "result"),
            registry=r,
        )
        # The kind lets alert rules tell causes apart (e.g. `environment` for missing variables).
        self.check_failures = LeanCounter(
            "opsmon_check_failures_total",
            "Failed check runs by bounded failure kind",
            ("check", "type", "kind"),
            registry=r,
        )
        self.tls_certificate_expiry = Gauge(
            "opsmon_tls_certificate_expiry_timestamp_seconds",
            "When the certificate served to an https check expires (Unix time)",
            ("check",),
            registry=r,
        )
        self.scheduler_lag = Histogram(
            "opsmon_scheduler_lag_seconds",
            "Delay between a check's scheduled and actual start",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        # postgres
        self.postgres_up = Gauge(
            "opsmon_postgres_up", "PostgreSQL reachable and answering", ("check",), registry=r
        )
        self.postgres_connect_duration = Histogram(
            "opsmon_postgres_connect_duration_seconds",
            "Time to open a PostgreSQL connection",
            ("check",),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.postgres_connections_used_ratio = Gauge(
            "opsmon_postgres_connections_used_ratio",
            "Backends / max_connections",
            ("check",),
            registry=r,
        )
        self.postgres_failures = Counter(
            "opsmon_postgres_failures_total",
            "PostgreSQL check failures by kind",
            ("check", "kind"),
            registry=r,
        )
        # containers
        self.docker_up = Gauge("opsmon_docker_up", "Docker API reachable", registry=r)
        self.docker_events = Counter(
            "opsmon_docker_events_total", "Container events received", ("action",), registry=r
        )
        self.container_up = Gauge(
            "opsmon_container_up", "Container running", ("project", "service"), registry=r
        )
        self.container_health_status = Gauge(
            "opsmon_container_health_status",
            "Docker health status, one-hot",
            ("project", "service", "status"),
            registry=r,
        )
        self.container_restarts = Gauge(
            "opsmon_container_restarts",
            "Container restart count",
            ("project", "service"),
            registry=r,
        )
        self.container_oom_kills = Counter(
            "opsmon_container_oom_kills_total",
            "OOM kills seen",
            ("project", "service"),
            registry=r,
        )
        # alerting
        self.alerts_sent = Counter(
            "opsmon_alerts_sent_total",
            "Notifications delivered",
            ("channel", "status"),
            registry=r,
        )
        self.alert_delivery_failures = Counter(
            "opsmon_alert_delivery_failures_total",
            "Failed delivery attempts",
            ("channel",),
            registry=r,
        )
        self.alert_outbox_pending = Gauge(
            "opsmon_alert_outbox_pending", "Notifications waiting for delivery", registry=r
        )
        self.incidents_open = Gauge("opsmon_incidents_open", "Open incidents", registry=r)
        self.alerts_suppressed = Counter(
            "opsmon_alerts_suppressed_total",
            "Notifications not sent, by reason",
            ("reason",),
            registry=r,
        )
        # rollback
        self.rollbacks = Counter(
            "opsmon_rollbacks_total", "Rollbacks by result", ("service", "result"), registry=r
        )
        self.rollback_duration = Histogram(
            "opsmon_rollback_duration_seconds",
            "Time from rollback start to verified",
            buckets=(1, 5, 10, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.service_lkg_info = Gauge(
            "opsmon_service_lkg_info",
            "Last known good image of a service",
            ("service", "image"),
            registry=r,
        )
        # the daemon's own faults (monitor.selfcheck, monitor.resilient_db, monitor.http_guard)
        self.state_write_failures = Counter(
            "opsmon_state_write_failures_total",
            "Writes the state store could not make (disk full, read-only, I/O error)",
            registry=r,
        )
        self.state_degraded = Gauge(
            "opsmon_state_degraded",
            "1 while the state store runs from memory because the disk cannot be written",
            registry=r,
        )
        # the cluster (monitor/cluster/): the lease and the shared store; labelled with the
        # instance's cluster name, so an instance without `cluster:` exports none of them
        self.cluster_leader = Gauge(
            "opsmon_cluster_leader",
            "1 while this instance holds the cluster's leader lease (it pages and rolls back)",
            ("member",),
            registry=r,
        )
        self.cluster_members = Gauge(
            "opsmon_cluster_members",
            "Instances that renewed their membership within two lease periods",
            ("member",),
            registry=r,
        )
        self.cluster_epoch = Gauge(
            "opsmon_cluster_epoch",
            "Epoch of the leader lease as this instance last saw it (grows on each takeover)",
            ("member",),
            registry=r,
        )
        self.cluster_store_up = Gauge(
            "opsmon_cluster_store_up",
            "1 while the cluster's PostgreSQL store answers",
            ("member",),
            registry=r,
        )
        self.cluster_shards = Gauge(
            "opsmon_cluster_shards",
            "Checks this instance owns and runs while cluster.sharding is on",
            ("member",),
            registry=r,
        )
        self.internal_task_failures = Counter(
            "opsmon_internal_task_failures_total",
            "Internal tasks of the daemon that died",
            registry=r,
        )
        self.check_stale = Gauge(
            "opsmon_check_stale",
            "1 while a check has not run for two intervals",
            ("check",),
            registry=r,
        )
        self.config_reloads = Counter(
            "opsmon_config_reloads_total",
            "Config reloads (SIGHUP) by result",
            ("result",),
            registry=r,
        )
        self.http_accept_failures = Counter(
            "opsmon_http_accept_failures_total",
            "Connections the HTTP server could not accept (out of descriptors or memory)",
            registry=r,
        )

        # status page and API: route is the route's template, never the requested path
        self.http_requests = Counter(
            "opsmon_http_requests_total",
            "Status page and /api/v1/ requests by route template, method and status code",
            ("route", "method", "code"),
            registry=r,
        )
        self.history_write_failures = Counter(
            "opsmon_history_write_failures_total",
            "Failed writes of check history to the state store (the results are kept in memory"
            " and written with the next flush)",
            registry=r,
        )

    def forget_check(self, check: str, check_type: str, service: str) -> None:
        """Drop the series of a check that left the config, so dashboards do not show ghosts."""
        with contextlib.suppress(KeyError):
            self.check_success.remove(check, check_type, service)
        with contextlib.suppress(KeyError):
            self.check_healthy.remove(check, check_type, service)
        with contextlib.suppress(KeyError):
            self.check_duration.remove(check, check_type)
        for result in ("success", "failure"):
            with contextlib.suppress(KeyError):
                self.check_runs.remove(check, check_type, result)
        # Failure kinds are open-ended, so look up which ones this check has used.
        for labels in self.check_failures.label_sets():
            if labels[:2] == (check, check_type):
                with contextlib.suppress(KeyError):
                    self.check_failures.remove(*labels)
        with contextlib.suppress(KeyError):
            self.tls_certificate_expiry.remove(check)
        with contextlib.suppress(KeyError):
            self.check_stale.remove(check)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return self._exposition.render(self.registry)
