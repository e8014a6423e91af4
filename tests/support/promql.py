"""PromQL taken apart with a real parser: the series an expression reads, and its "data form".

An alert expression such as `x == 0` returns nothing while all is well, so "returns data" can only
be asked of its data form: every comparison turned into a `bool` comparison (1 or 0 instead of a
filter), `absent(x)` turned into `x`, and the arms of `and` / `or` taken one by one (`unless`
keeps only its left arm: its right arm is a filter that may rightly be empty).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import promql_parser
from prometheus_client.metrics import MetricWrapperBase

from monitor.checks import CHECK_TYPES as REGISTERED_CHECK_TYPES
from monitor.lean_metrics import LeanFamily
from monitor.metrics import Metrics

COMPARISONS = frozenset({"==", "!=", ">", "<", ">=", "<="})
SET_OPERATORS = frozenset({"and", "or", "unless"})
# Series Prometheus makes itself for every target, with the labels it adds.
PROMETHEUS_SERIES = {"up": frozenset({"job", "instance"})}
TARGET_LABELS = frozenset({"job", "instance"})
_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


@dataclass(frozen=True)
class Selector:
    """One vector selector: a metric name and its label matchers, without offset or range."""

    name: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, value)

    @property
    def text(self) -> str:
        """The selector as an instant-vector query."""
        inner = ", ".join(f"{label}{op}{_quote(value)}" for label, op, value in self.matchers)
        return f"{self.name}{{{inner}}}"

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether a sample with these labels is selected (target labels are not judged)."""
        for label, op, value in self.matchers:
            if label in TARGET_LABELS:
                continue
            actual = labels.get(label, "")
            if op == "=" and actual != value:
                return False
            if op == "!=" and actual == value:
                return False
            if op == "=~" and not re.fullmatch(value, actual):
                return False
            if op == "!~" and re.fullmatch(value, actual):
                return False
        return True


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse(expr: str) -> Any:
    """The expression's syntax tree; raises ValueError on a syntax error."""
    return promql_parser.parse(expr)


def selectors(expr: str) -> list[Selector]:
    """Every vector selector in `expr`, in order."""
    found: list[Selector] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = tuple(
                (m.name, _OPS[str(m.op).rpartition(".")[2]], m.value)
                for m in node.matchers.matchers
                if m.name != "__name__"
            )
            found.append(Selector(node.name, matchers))

    promql_parser.walk(parse(expr), visit)
    return found


def _arms(node: Any) -> list[Any]:
    if isinstance(node, promql_parser.ParenExpr):
        return _arms(node.expr)
    if isinstance(node, promql_parser.BinaryExpr) and str(node.op) in SET_OPERATORS:
        if str(node.op) == "unless":
            return _arms(node.lhs)
        return [*_arms(node.lhs), *_arms(node.rhs)]
    return [node]


def _to_data_form(node: Any) -> Any:
    if isinstance(node, promql_parser.BinaryExpr) and str(node.op) in COMPARISONS:
        if node.modifier is not None and node.modifier.return_bool:
            return None
        modifier = str(node.modifier) if node.modifier is not None else ""
        return promql_parser.parse(f"({node.lhs}) {node.op} bool {modifier} ({node.rhs})")
    if isinstance(node, promql_parser.Call) and node.func.name == "absent":
        return node.args[0]
    if isinstance(node, promql_parser.Call) and node.func.name == "absent_over_time":
        return promql_parser.parse(f"count_over_time({node.args[0]})")
    return None


def data_arms(expr: str) -> list[str]:
    """The data forms of the expression's arms: each returns series whenever its inputs exist."""
    return [
        str(promql_parser.transform(arm, post_visit=_to_data_form)) for arm in _arms(parse(expr))
    ]


def known_series(metrics: Metrics | None = None) -> dict[str, frozenset[str]]:
    """Every series name opsmon can expose (from monitor/metrics.py) with its label names."""
    metrics = metrics or Metrics()
    known = dict(PROMETHEUS_SERIES)
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            name, kind, labelnames = value._name, value._type, value._labelnames
        elif isinstance(value, LeanFamily):
            name, kind, labelnames = value.name, value.kind, value.labelnames
        else:
            continue
        labels = frozenset(labelnames) | TARGET_LABELS
        if kind == "counter":
            known[f"{name}_total"] = labels
        elif kind == "histogram":
            known[f"{name}_bucket"] = labels | {"le"}
            known[f"{name}_count"] = labels
            known[f"{name}_sum"] = labels
        else:
            known[name] = labels
    return known


def unknown_names(expr: str, known: dict[str, frozenset[str]]) -> list[str]:
    """Metric and label names in `expr` that opsmon does not have (a typo or a renamed metric)."""
    problems = []
    for selector in selectors(expr):
        if selector.name not in known:
            problems.append(f"metric {selector.name}")
            continue
        for label, _, _ in selector.matchers:
            if label not in known[selector.name]:
                problems.append(f"label {label} on {selector.name}")
    return problems


# Bounded label values fixed by DESIGN.md and the issues: an equality matcher on one of these
# labels with another value selects nothing, forever.
KNOWN_LABEL_VALUES: dict[tuple[str, str], frozenset[str]] = {
    ("opsmon_check_runs_total", "result"): frozenset({"success", "failure"}),
    ("opsmon_alerts_sent_total", "status"): frozenset({"firing", "resolved"}),
    ("opsmon_container_health_status", "status"): frozenset(
        {"starting", "healthy", "unhealthy", "none"}
    ),
    ("opsmon_rollbacks_total", "result"): frozenset({"succeeded", "failed", "skipped", "dry_run"}),
}
CHECK_TYPES = frozenset(REGISTERED_CHECK_TYPES)
JOB = "opsmon"


def impossible_values(expr: str) -> list[str]:
    """Equality matchers in `expr` whose value the label can never have."""
    problems = []
    for selector in selectors(expr):
        for label, op, value in selector.matchers:
            if op != "=":
                continue
            allowed = KNOWN_LABEL_VALUES.get((selector.name, label))
            if label == "type" and selector.name.startswith("opsmon_check_"):
                allowed = CHECK_TYPES
            if label == "job":
                allowed = frozenset({JOB})
            if allowed is not None and value not in allowed:
                problems.append(f'{selector.name}{{{label}="{value}"}}')
    return problems
