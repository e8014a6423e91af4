"""The shipped deployment artifacts, loaded once: alert rules, dashboard queries, runbooks."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "config" / "prometheus"
RULES_FILE = PROMETHEUS_DIR / "rules" / "opsmon.rules.yml"
RULES_TEST_FILE = PROMETHEUS_DIR / "tests" / "opsmon.rules.test.yml"
SCRAPE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
GRAFANA_DIR = ROOT / "config" / "grafana"
DASHBOARD_FILE = GRAFANA_DIR / "dashboards" / "opsmon.json"
ALERTMANAGER_CONFIG = ROOT / "config" / "alertmanager" / "alertmanager.yml"
RUNBOOKS_DIR = ROOT / "runbooks"

# What Grafana puts in for its variables when the test asks Prometheus directly: every
# instance and check, and windows that hold several samples at the test's 1 s scrape interval.
GRAFANA_SUBSTITUTIONS = {
    "$__rate_interval": "15s",
    "$__interval": "5s",
    "$__range": "1m",
    "$instance": ".*",
    "$check": ".*",
}


@dataclass(frozen=True)
class Runbook:
    """A runbook's front matter."""

    id: str
    alerts: tuple[str, ...]
    severity: str
    title: str


@dataclass(frozen=True)
class Query:
    """One PromQL expression shipped in an artifact, with where it comes from."""

    where: str
    expr: str


def runbooks() -> dict[str, Runbook]:
    """Every runbook in runbooks/, by id."""
    found = {}
    for path in sorted(RUNBOOKS_DIR.glob("*.md")):
        text = path.read_text()
        if not text.startswith("---\n"):
            continue
        front = yaml.safe_load(text.split("---\n", 2)[1])
        found[front["id"]] = Runbook(
            front["id"], tuple(front["alerts"]), front["severity"], front["title"]
        )
    return found


def runbook_for_alert() -> dict[str, Runbook]:
    """Alert name -> its runbook."""
    return {alert: book for book in runbooks().values() for alert in book.alerts}


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule in the shipped rule file."""
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def rule_queries() -> list[Query]:
    """The expression of every alert rule."""
    return [Query(f"rule {rule['alert']}", rule["expr"]) for rule in alert_rules()]


def dashboard() -> dict[str, Any]:
    """The provisioned dashboard's JSON model."""
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return loaded


def dashboard_panels() -> list[dict[str, Any]]:
    """Every panel that shows data (rows left out), also those nested in collapsed rows."""
    panels = []
    for panel in dashboard()["panels"]:
        if panel["type"] == "row":
            panels.extend(panel.get("panels", []))
        else:
            panels.append(panel)
    return panels


def substitute(expr: str) -> str:
    """A dashboard expression as Grafana sends it, with the test's variable values."""
    for variable, value in GRAFANA_SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    return expr


_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.*),\s*\w+\)$")


def dashboard_queries() -> list[Query]:
    """Every PromQL expression of the dashboard: panel targets and variable queries."""
    queries = []
    for panel in dashboard_panels():
        for target in panel["targets"]:
            queries.append(Query(f"panel '{panel['title']}' {target['refId']}", target["expr"]))
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = _LABEL_VALUES.match(variable["definition"])
        assert match, f"variable {variable['name']}: unexpected query {variable['definition']}"
        queries.append(Query(f"variable ${variable['name']}", match["selector"]))
    return [Query(q.where, substitute(q.expr)) for q in queries]
