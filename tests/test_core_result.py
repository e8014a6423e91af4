"""A check result's kind and outcome: enum members that read, compare and serialize as the
plain strings they replaced (the metric labels, /api/status and `check --json` unchanged)."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry, generate_latest

from monitor.checks.postgres import FAILURE_KINDS
from monitor.core.result import CheckResult, FailureKind, Outcome
from monitor.lean_metrics import LeanCounter


def test_a_kind_is_its_old_string_everywhere_it_shows() -> None:
    """JSON, f-strings, str() and == give the same text the free strings gave."""
    result = CheckResult.failure(FailureKind.CONNECTION_REFUSED, "refused")
    assert result.kind == "connection_refused"
    assert json.dumps({"kind": result.kind}) == '{"kind": "connection_refused"}'
    assert f"{result.kind}" == str(result.kind) == "connection_refused"
    assert CheckResult(ok=True).kind == "ok"


def test_a_kind_labels_a_metric_as_its_string() -> None:
    """The failure counter's `kind` label is the plain value, the same series as before."""
    registry = CollectorRegistry()
    counter = LeanCounter("opsmon_check_failures", "failures", ("kind",), registry=registry)
    counter.labels(FailureKind.TIMEOUT).inc()
    counter.labels("timeout").inc()
    text = generate_latest(registry).decode()
    assert 'opsmon_check_failures_total{kind="timeout"} 2.0' in text, text


def test_outcome_follows_ok_and_unknown() -> None:
    """A passing run is OK, a failed one FAILED, one that could not observe at all UNKNOWN."""
    assert CheckResult(ok=True).outcome is Outcome.OK
    assert CheckResult.failure(FailureKind.TIMEOUT, "slow").outcome is Outcome.FAILED
    unknown = CheckResult(ok=False, unknown=True, kind=FailureKind.DOCKER_UNAVAILABLE)
    assert unknown.outcome is Outcome.UNKNOWN


def test_every_postgres_failure_kind_is_a_member() -> None:
    """The bounded postgres kinds come from the one enum (a typo cannot add a label value)."""
    assert all(isinstance(kind, FailureKind) for kind in FAILURE_KINDS)
