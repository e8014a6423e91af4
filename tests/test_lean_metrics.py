"""Lean per-check families: the same /metrics text and samples as prometheus_client's own."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from monitor.exposition import TextExposition
from monitor.lean_metrics import LeanCounter, LeanGauge, LeanHistogram

BUCKETS = (0.005, 0.1, 1, 30)
CREATED = re.compile(rb"^(\S+_created(?:\{.*\})?) \S+$", re.MULTILINE)


def _without_created_times(text: bytes) -> bytes:
    return CREATED.sub(rb"\1 <t>", text)


def _exercise(registry: CollectorRegistry, lean: bool) -> None:
    gauge_type, counter_type, histogram_type = (
        (LeanGauge, LeanCounter, LeanHistogram) if lean else (Gauge, Counter, Histogram)
    )
    gauge = gauge_type("demo_up", "Up\nor not", ("check", "type"), registry=registry)
    counter = counter_type("demo_runs_total", "Runs", ("check", "result"), registry=registry)
    histogram = histogram_type(
        "demo_seconds", "Durations", ("check",), buckets=BUCKETS, registry=registry
    )
    for name in ("b-check", 'we"ird\\name\n', "a-check"):
        gauge.labels(name, "http").set(1)
        counter.labels(name, "success").inc()
        histogram.labels(name).observe(0.05)
    gauge.labels("a-check", "http").set(0)
    gauge.labels(check="kw", type="http").inc(2.5)
    counter.labels("a-check", "failure").inc(3)
    for seconds in (0.001, 0.005, 0.5, 31, 1e9):
        histogram.labels("a-check").observe(seconds)
    counter.remove("b-check", "success")
    histogram.remove("b-check")


def test_text_matches_prometheus_client() -> None:
    """Same operations, same /metrics bytes (up to the creation times of _created)."""
    reference, lean = CollectorRegistry(), CollectorRegistry()
    _exercise(reference, lean=False)
    _exercise(lean, lean=True)
    expected = _without_created_times(generate_latest(reference))
    assert _without_created_times(TextExposition().render(lean)) == expected
    assert _without_created_times(generate_latest(lean)) == expected


def test_samples_answer_get_sample_value() -> None:
    """Tests and tools that read samples (get_sample_value) see the values."""
    registry = CollectorRegistry()
    _exercise(registry, lean=True)
    value = registry.get_sample_value
    assert value("demo_runs_total", {"check": "a-check", "result": "failure"}) == 3
    assert value("demo_seconds_bucket", {"check": "a-check", "le": "0.005"}) == 2
    assert value("demo_seconds_count", {"check": "a-check"}) == 6
    assert value("demo_up", {"check": "kw", "type": "http"}) == 2.5
    assert value("demo_runs_total", {"check": "b-check", "result": "success"}) is None


def test_misuse_is_refused_like_prometheus_client() -> None:
    """Wrong label counts, negative increments and clashing names raise as the library does."""
    registry = CollectorRegistry()
    counter = LeanCounter("demo_total", "Demo", ("a",), registry=registry)
    with pytest.raises(ValueError, match="Incorrect label count"):
        counter.labels("x", "y")
    with pytest.raises(ValueError, match="non-negative"):
        counter.labels("x").inc(-1)
    with pytest.raises(KeyError):
        counter.remove("never")
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Gauge("demo_total", "Clash", registry=registry)


def test_created_switch_is_followed_like_prometheus_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """With prometheus_client's _created series turned off (its private `_use_created` switch,
    which lean_metrics reads), the lean families drop theirs too: same bytes either way."""
    from prometheus_client import metrics as client_metrics

    assert hasattr(client_metrics, "_use_created"), "prometheus_client renamed its switch"
    monkeypatch.setattr(client_metrics, "_use_created", False)
    reference, lean = CollectorRegistry(), CollectorRegistry()
    _exercise(reference, lean=False)
    _exercise(lean, lean=True)
    expected = generate_latest(reference)
    assert b"_created" not in expected
    assert TextExposition().render(lean) == expected
