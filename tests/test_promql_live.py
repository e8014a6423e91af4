"""A real Prometheus scrapes a running `opsmon run`; every PromQL expression shipped in the alert
rules and the Grafana dashboard is evaluated through Prometheus's HTTP API.

A query that returns nothing although opsmon exposes the series it reads means a wrong metric
name, label or join. A query reading a series this setup does not produce fails, naming the
series: the setup must be extended (as it was for the cluster series), never the query skipped.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.certs import self_signed
from tests.support.cli import running_daemon
from tests.support.deploy_artifacts import (
    SCRAPE_CONFIG,
    Query,
    alert_rules,
    dashboard_queries,
    rule_queries,
)
from tests.support.docker import Stack, nanoseconds, stack
from tests.support.environment import free_port, missing
from tests.support.http_target import Answer, serve
from tests.support.postgres import PostgresCluster
from tests.support.prometheus import Prometheus, running_prometheus
from tests.support.promql import PROMETHEUS_SERIES, Selector, data_arms, selectors
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

# Series the daemon below must expose: its checks, containers and channels produce them.
PRODUCED_BY_THIS_SETUP = (
    "opsmon_build_info",
    'opsmon_check_healthy{type="http"}',
    'opsmon_check_success{type="http", check=~".*ready.*"}',
    'opsmon_check_success{type="docker"}',
    "opsmon_check_duration_seconds_bucket",
    'opsmon_check_runs_total{result="failure"}',
    'opsmon_check_failures_total{kind="environment"}',
    "opsmon_tls_certificate_expiry_timestamp_seconds",
    "opsmon_postgres_up",
    "opsmon_postgres_connections_used_ratio",
    "opsmon_postgres_connect_duration_seconds_bucket",
    "opsmon_postgres_failures_total",
    "opsmon_container_up",
    'opsmon_container_health_status{status="healthy"}',
    "opsmon_container_restarts",
    "opsmon_container_oom_kills_total",
    "opsmon_docker_events_total",
    'opsmon_alerts_sent_total{status="firing"}',
    "opsmon_alert_delivery_failures_total",
    'opsmon_alerts_suppressed_total{reason="silenced"}',
    'opsmon_rollbacks_total{service="web", result="failed"}',
    'opsmon_service_lkg_info{service="web"}',
    'opsmon_cluster_leader{member="live"}',
    'opsmon_cluster_store_up{member="live"}',
)
SCRAPES_BEFORE_QUERYING = 8


@dataclass
class Live:
    """Prometheus scraping opsmon, and what opsmon's /metrics exposed."""

    prometheus: Prometheus
    exposed: list[tuple[str, dict[str, str]]]

    def exposes(self, selector: Selector) -> bool:
        """Whether opsmon exposes a sample this selector selects (Prometheus's own `up` too)."""
        if selector.name in PROMETHEUS_SERIES:
            return True
        return any(
            name == selector.name and selector.matches(labels) for name, labels in self.exposed
        )


def _exposition(port: int) -> list[tuple[str, dict[str, str]]]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return [
        (sample.name, dict(sample.labels))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def _daemon_config(tmp: Path, web: str, tls: str, project: str, hooks: str) -> Path:
    closed_port = free_port()  # nothing listens there: connection failures
    http = {"type": "http"}
    container = {"type": "container", "project": project}
    config = {
        "state_dir": str(tmp / "state"),
        "defaults": {
            "interval": "1s",
            "timeout": "1s",
            "failure_threshold": 1,
            "success_threshold": 1,
        },
        "checks": [
            {"name": "web-health", **http, "service": "web", "url": f"{web}/health"},
            {"name": "web-ready", **http, "service": "web", "url": f"{web}/ready"},
            {
                "name": "api-health",
                **http,
                "service": "api",
                "url": f"http://127.0.0.1:{closed_port}/api/health",
            },
            {
                "name": "edge-tls",
                **http,
                "service": "edge",
                "url": f"{tls}/",
                "ca_file": str(tmp / "certs" / "cert.pem"),
            },
            {"name": "database", "type": "postgres", "service": "db", "dsn": "${LIVE_DSN}"},
            {
                "name": "replica",
                "type": "postgres",
                "service": "replica",
                "dsn": f"postgresql://app@127.0.0.1:{closed_port}/app",
            },
            {"name": "web-container", **container, "service": "web"},
            {
                "name": "worker-container",
                **container,
                "service": "worker",
                "required_env": ["DATABASE_URL"],
            },
            {"name": "hog-container", **container, "service": "hog"},
        ],
        "alerting": {
            "group_wait": "0s",
            "channels": [
                {"name": "hooks", "type": "webhook", "url": hooks},
                {
                    "name": "broken-hook",
                    "type": "webhook",
                    "url": f"http://127.0.0.1:{closed_port}/hook",
                },
            ],
            "delivery": {"timeout": "1s", "initial_backoff": "1s", "max_backoff": "2s"},
        },
        # The healthy web service is opted in: its image becomes last known good within a
        # second, and its result counters start at 0.
        "rollback": {"stable_after": "1s", "services": {"web": {"strategy": "recreate"}}},
        # A cluster of one on the test's PostgreSQL: the cluster series exist.
        "cluster": {"store": "${LIVE_DSN}", "instance": "live", "lease": "3s"},
        # The replica's alerts are silenced: suppressed notifications are counted.
        "silences": [
            {
                "match": {"service": "replica"},
                "ends": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                "comment": "replica rebuild",
            }
        ],
    }
    path = tmp / "opsmon.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _start_containers(compose: Stack) -> None:
    """A healthy service, one started without its required variable."""
    compose.run(
        "web",
        "sleep 600",
        healthcheck={"test": ["CMD-SHELL", "true"], "interval": nanoseconds(0.5), "retries": 1},
    )
    compose.run("worker", "sleep 600")


def _start_oom_killed_container(compose: Stack) -> None:
    """A service that runs out of memory, after opsmon watches: events and an OOM kill."""
    compose.run("hog", 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo "$x"', mem_limit="16m")


def _prometheus_config(opsmon_port: int) -> dict[str, object]:
    """The shipped scrape config, pointed at the test's opsmon and scraping every second."""
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config.pop("alerting", None)
    config["rule_files"] = [str((SCRAPE_CONFIG.parent / f).resolve()) for f in config["rule_files"]]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "opsmon"]
    job.update(scrape_interval="1s", scrape_timeout="1s")
    job["static_configs"] = [{"targets": [f"127.0.0.1:{opsmon_port}"]}]
    return config


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresCluster) -> Iterator[Live]:
    """opsmon with healthy and failing HTTP, TLS, PostgreSQL and container checks and two alert
    channels (one broken), scraped by a real Prometheus every second."""
    if shutil.which("prometheus") is None:
        missing("prometheus (Debian package prometheus)")
    tmp = tmp_path_factory.mktemp("promql-live")
    (tmp / "certs").mkdir()
    tls_context = self_signed(tmp / "certs", days_valid=10)
    hooks = Receiver().start()
    try:
        with serve() as web, serve(tls_context) as tls, stack() as compose:
            web.routes["/health"] = Answer(200, {"status": "ok"})
            web.routes["/ready"] = Answer(200, {"ready": True})
            tls.routes["/"] = Answer(200, "ok")
            _start_containers(compose)
            config = _daemon_config(tmp, web.url(""), tls.url(""), compose.project, hooks.url())
            port = free_port()
            with (
                running_daemon(config, port, env={"LIVE_DSN": postgres.dsn()}),
                running_prometheus(_prometheus_config(port), tmp / "prometheus") as prometheus,
            ):
                _start_oom_killed_container(compose)

                def scraped_enough() -> bool:
                    result = prometheus.query(
                        f'count_over_time(up{{job="opsmon"}}[1m]) >= {SCRAPES_BEFORE_QUERYING}'
                    )
                    return bool(result)

                wait_until(scraped_enough, timeout=60, interval=0.5)
                live = Live(prometheus, [])

                def produced() -> bool:
                    live.exposed = _exposition(port)
                    return not _missing(live)

                try:
                    wait_until(produced, timeout=30, interval=0.5)
                    # Let Prometheus scrape the latest of them a few times more.
                    wait_until(lambda: _all_in_prometheus(live), timeout=15, interval=0.5)
                except AssertionError:
                    pass  # test_setup_produces_every_series names what is missing
                yield live
    finally:
        hooks.stop()


def _missing(live: Live) -> list[str]:
    return [text for text in PRODUCED_BY_THIS_SETUP if not live.exposes(_selector(text))]


def _selector(text: str) -> Selector:
    (selector,) = selectors(text)
    return selector


def _all_in_prometheus(live: Live) -> bool:
    return all(
        live.prometheus.query(f"count_over_time({_selector(text).text}[1m]) >= 2")
        for text in PRODUCED_BY_THIS_SETUP
    )


def test_setup_produces_every_series(live: Live) -> None:
    """The checks, containers and channels of this test give the series the queries read."""
    assert _missing(live) == []


def test_prometheus_scrapes_opsmon_with_the_shipped_job(live: Live) -> None:
    """The shipped scrape config's `opsmon` job scrapes opsmon successfully."""
    targets = live.prometheus.targets()
    assert [(t["labels"]["job"], t["health"]) for t in targets] == [("opsmon", "up")]
    assert live.prometheus.query('opsmon_build_info{job="opsmon"}')


def test_prometheus_loads_and_evaluates_every_rule(live: Live) -> None:
    """A real Prometheus loads the rule file and evaluates each rule without an error."""

    def all_evaluated() -> list[dict[str, object]]:
        rules = [rule for group in live.prometheus.rule_groups() for rule in group["rules"]]
        evaluated = [r for r in rules if not str(r["lastEvaluation"]).startswith("0001-")]
        return rules if rules and len(evaluated) == len(rules) else []

    rules = wait_until(all_evaluated, timeout=20, interval=0.5)
    assert sorted(str(r["name"]) for r in rules) == sorted(r["alert"] for r in alert_rules())
    errors = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert errors == {}


def test_healthy_stack_fires_no_page(live: Live) -> None:
    """With opsmon up, no MonitorDown or Docker alert is pending or firing in Prometheus."""
    alerts = live.prometheus.query("ALERTS")
    names = {a["metric"]["alertname"] for a in alerts}
    assert names.isdisjoint({"MonitorDown", "DockerApiUnavailable"})


def _cases() -> list[Query]:
    return [*rule_queries(), *dashboard_queries()]


@pytest.mark.parametrize("query", _cases(), ids=lambda q: q.where)
def test_query_returns_data(live: Live, query: Query) -> None:
    """Each series the expression reads, and each arm of it, returns data from Prometheus."""
    live.prometheus.query(query.expr)  # accepted and evaluated without an error
    unverifiable = sorted({s.text for s in selectors(query.expr) if not live.exposes(s)})
    for selector in selectors(query.expr):
        if live.exposes(selector):
            assert live.prometheus.query(selector.text), (
                f"{selector.text}: no data in Prometheus although opsmon exposes it"
            )
    for arm in data_arms(query.expr):
        if all(live.exposes(s) for s in selectors(arm)):
            assert live.prometheus.query(arm), f"{arm}: no data (a wrong label or join?)"
    # A query this setup cannot feed would go unchecked: extend the setup instead.
    assert not unverifiable, f"the live setup produces no samples for {unverifiable}"
