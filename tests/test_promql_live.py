"""A real Prometheus scrapes a running `opsmon run`; every PromQL expression shipped in the alert
rules and the Grafana dashboard is evaluated through Prometheus's HTTP API.

A query that returns nothing although opsmon exposes the series it reads means a wrong metric
name, label or join. Series that the running daemon does not expose yet (check types or
components not built so far) cannot be verified: those cases are skipped with the series named,
and become real assertions as soon as opsmon exposes them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
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
from tests.support.environment import free_port, missing
from tests.support.http_target import Answer, serve
from tests.support.prometheus import Prometheus, running_prometheus
from tests.support.promql import PROMETHEUS_SERIES, Selector, data_arms, selectors
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

# Series the daemon below must expose: its checks are chosen to produce them.
PRODUCED_BY_THIS_CONFIG = (
    "opsmon_check_healthy",
    "opsmon_check_success",
    "opsmon_check_duration_seconds_bucket",
    "opsmon_check_runs_total",
    "opsmon_check_failures_total",
    "opsmon_tls_certificate_expiry_timestamp_seconds",
    "opsmon_build_info",
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


def _daemon_config(tmp: Path, web: str, tls: str, ca_file: Path) -> Path:
    closed_port = free_port()  # nothing listens there: a connection failure
    config = {
        "state_dir": str(tmp / "state"),
        "defaults": {
            "interval": "1s",
            "timeout": "1s",
            "failure_threshold": 1,
            "success_threshold": 1,
        },
        "checks": [
            {"name": "web-health", "type": "http", "service": "web", "url": f"{web}/health"},
            {"name": "web-ready", "type": "http", "service": "web", "url": f"{web}/ready"},
            {
                "name": "api-health",
                "type": "http",
                "service": "api",
                "url": f"http://127.0.0.1:{closed_port}/api/health",
            },
            {
                "name": "edge-tls",
                "type": "http",
                "service": "edge",
                "url": f"{tls}/",
                "ca_file": str(ca_file),
            },
        ],
    }
    path = tmp / "opsmon.yml"
    path.write_text(yaml.safe_dump(config))
    return path


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
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """opsmon with healthy, failing and TLS checks, scraped by Prometheus every second."""
    if shutil.which("prometheus") is None:
        missing("prometheus (Debian package prometheus)")
    tmp = tmp_path_factory.mktemp("promql-live")
    (tmp / "certs").mkdir()
    tls_context = self_signed(tmp / "certs", days_valid=10)
    with serve() as web, serve(tls_context) as tls:
        web.routes["/health"] = Answer(200, {"status": "ok"})
        web.routes["/ready"] = Answer(200, {"ready": True})
        tls.routes["/"] = Answer(200, "ok")
        config = _daemon_config(tmp, web.url(""), tls.url(""), tmp / "certs" / "cert.pem")
        port = free_port()
        with (
            running_daemon(config, port),
            running_prometheus(_prometheus_config(port), tmp / "prometheus") as prometheus,
        ):

            def scraped_enough() -> bool:
                result = prometheus.query(
                    f'count_over_time(up{{job="opsmon"}}[1m]) >= {SCRAPES_BEFORE_QUERYING}'
                )
                return bool(result)

            wait_until(scraped_enough, timeout=60, interval=0.5)

            def exposed() -> list[tuple[str, dict[str, str]]]:
                samples = _exposition(port)
                names = {name for name, _ in samples}
                return samples if names.issuperset(PRODUCED_BY_THIS_CONFIG) else []

            try:
                samples = wait_until(exposed, timeout=20, interval=0.5)
            except AssertionError:
                samples = _exposition(port)  # the test below names what is missing
            yield Live(prometheus, samples)


def test_opsmon_exposes_what_the_test_config_produces(live: Live) -> None:
    """Healthy, failing and TLS checks give the series the rules and the dashboard need."""
    names = {name for name, _ in live.exposed}
    assert set(PRODUCED_BY_THIS_CONFIG) - names == set()


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
    if unverifiable:
        pytest.skip(f"opsmon exposes no samples yet for {', '.join(unverifiable)}")
