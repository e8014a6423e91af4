"""The provisioned Grafana dashboard and its provisioning files: what an operator sees and clicks.

(Every query is also evaluated against a real Prometheus in test_promql_live.py.)
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
import yaml

from tests.support.deploy_artifacts import (
    DASHBOARD_FILE,
    GRAFANA_DIR,
    ROOT,
    dashboard,
    dashboard_panels,
    dashboard_queries,
    runbooks,
    substitute,
)
from tests.support.promql import impossible_values, known_series, selectors, unknown_names

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _metrics_of(panel: dict[str, Any]) -> set[str]:
    return {s.name for t in panel["targets"] for s in selectors(substitute(t["expr"]))}


def _rows() -> dict[str, list[dict[str, Any]]]:
    """Row title -> the panels under it, in layout order."""
    rows: dict[str, list[dict[str, Any]]] = {}
    current = ""
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            current = panel["title"]
            rows[current] = list(panel.get("panels", []))
        else:
            rows.setdefault(current, []).append(panel)
    return rows


def test_dashboard_has_a_stable_uid() -> None:
    """The uid is fixed, so links and provisioning updates keep pointing at the same dashboard."""
    assert dashboard()["uid"] == "opsmon-overview"
    assert dashboard()["title"]


def test_datasource_is_a_variable_not_an_import_placeholder() -> None:
    """The data source is chosen with a variable; no `${DS_...}` import placeholders remain."""
    text = DASHBOARD_FILE.read_text()
    assert "__inputs" not in text and "${DS_" not in text
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard_panels():
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE


def test_health_row_has_one_stat_per_check() -> None:
    """The first row shows each check as its own stat tile, green when healthy, red when not."""
    first_row, panels = next(iter(_rows().items()))
    assert first_row == "Health"
    checks = panels[0]
    assert checks["type"] == "stat"
    (target,) = checks["targets"]
    assert re.search(r"by \(check\)", target["expr"])
    assert _metrics_of(checks) == {"opsmon_check_healthy"}
    assert target["legendFormat"] == "{{check}}"
    mapping = checks["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert mapping["1"]["color"] == "green" and mapping["0"]["color"] == "red"


@pytest.mark.parametrize(
    ("area", "metrics"),
    [
        ("latency per check", {"opsmon_check_duration_seconds_bucket"}),
        ("container state", {"opsmon_container_up"}),
        ("container restarts", {"opsmon_container_restarts"}),
        ("PostgreSQL up", {"opsmon_postgres_up"}),
        ("PostgreSQL connection use", {"opsmon_postgres_connections_used_ratio"}),
        ("alerts sent", {"opsmon_alerts_sent_total"}),
        ("alert delivery failures", {"opsmon_alert_delivery_failures_total"}),
        ("rollbacks", {"opsmon_rollbacks_total"}),
        ("opsmon scraped", {"up"}),
    ],
)
def test_dashboard_shows(area: str, metrics: set[str]) -> None:
    """The dashboard has a panel for each area an operator looks for."""
    assert any(metrics <= _metrics_of(panel) for panel in dashboard_panels()), area


def test_latency_is_per_check() -> None:
    """Latency is drawn per check (one series per check), not as one blended line."""
    (panel,) = [
        p for p in dashboard_panels() if "opsmon_check_duration_seconds_bucket" in _metrics_of(p)
    ]
    assert "by (check, le)" in panel["targets"][0]["expr"]
    assert panel["fieldConfig"]["defaults"]["unit"] == "s"


@pytest.mark.parametrize("panel", dashboard_panels(), ids=lambda p: p["title"])
def test_panel_links_its_runbook(panel: dict[str, Any]) -> None:
    """Each panel links to the runbook for what it shows, on the opsmon that serves runbooks."""
    known = set(runbooks())
    assert panel["links"], "no runbook link"
    for link in panel["links"]:
        match = re.fullmatch(r"\$\{opsmon_url\}/runbooks/([a-z0-9-]+)", link["url"])
        assert match, link["url"]
        assert match[1] in known
        assert link["title"].startswith("Runbook: ")
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["opsmon_url"]["type"] == "textbox"


@pytest.mark.parametrize("query", dashboard_queries(), ids=lambda q: q.where)
def test_query_reads_only_metrics_and_labels_opsmon_has(query: Any) -> None:
    """Every metric and label the dashboard selects is defined in monitor/metrics.py (or `up`)."""
    assert unknown_names(query.expr, known_series()) == []
    assert impossible_values(query.expr) == []


def test_panels_do_not_overlap() -> None:
    """The layout fits the 24-column grid and no panel hides another."""
    boxes = []
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        boxes.append((panel["title"], grid))
    for (a, ga), (b, gb) in itertools.combinations(boxes, 2):
        overlap_x = ga["x"] < gb["x"] + gb["w"] and gb["x"] < ga["x"] + ga["w"]
        overlap_y = ga["y"] < gb["y"] + gb["h"] and gb["y"] < ga["y"] + ga["h"]
        assert not (overlap_x and overlap_y), f"{a} overlaps {b}"
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(ids) == len(set(ids))


def test_provisioning_loads_the_dashboard_and_the_datasource() -> None:
    """Grafana's provisioning files name a Prometheus data source and the dashboards folder."""
    datasources = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    assert datasources["apiVersion"] == 1
    assert [d["type"] for d in datasources["datasources"]] == ["prometheus"]
    providers = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "dashboards" / "opsmon.yml").read_text()
    )
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    # The deploy guide mounts the dashboards folder exactly there.
    assert f"./config/grafana/dashboards:{path}" in (ROOT / "docs" / "deploy.md").read_text()
