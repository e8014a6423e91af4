"""/metrics text: byte for byte what generate_latest writes, scrape after scrape."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from monitor.exposition import TextExposition
from monitor.metrics import Metrics


class _Custom(Collector):
    """Families only a custom collector produces: timestamps, a gauge histogram, odd values."""

    def collect(self) -> Iterator[Metric]:
        stamped = GaugeMetricFamily("custom_stamped", "With a timestamp", labels=["k"])
        stamped.add_metric(["a"], 1.5, timestamp=1700000000.25)
        stamped.add_metric(["b"], float("nan"))
        stamped.add_metric(["c"], float("-inf"))
        stamped.add_metric(["d"], 123456789012.0)
        yield stamped
        histogram = GaugeHistogramMetricFamily(
            "custom_gauge_histogram",
            "A gauge histogram",
            buckets=[("1.0", 4), ("+Inf", 5)],
            gsum_value=3.0,
        )
        yield histogram


def _registry() -> tuple[CollectorRegistry, Counter, Gauge]:
    registry = CollectorRegistry()
    counter = Counter("demo_requests", "Requests\nwith a \\ in help", ["path"], registry=registry)
    counter.labels('/quote"d').inc()
    counter.labels("/new\nline\\slash").inc(3)
    counter.labels("/ünïcødé").inc()
    gauge = Gauge("demo_plain", "No labels", registry=registry)
    gauge.set(0.1 + 0.2)
    Histogram("demo_seconds", "Latency", ["check"], buckets=(0.005, 1e7), registry=registry).labels(
        "x"
    ).observe(0.5)
    Summary("demo_summary", "A summary", registry=registry).observe(2)
    Info("demo_build", "Build info", registry=registry).info({"version": "1.0"})
    Enum("demo_state", "A state set", states=["up", "down"], registry=registry).state("down")
    registry.register(_Custom())
    return registry, counter, gauge


def test_same_bytes_as_generate_latest() -> None:
    """Every family type, escaped label values, NaN/Inf, timestamps: identical to the library."""
    registry, _, _ = _registry()
    assert TextExposition().render(registry) == generate_latest(registry)


def test_later_scrapes_show_new_values_and_series() -> None:
    """Remembered label sets do not freeze values: changes, new and removed series all show."""
    registry, counter, gauge = _registry()
    exposition = TextExposition()
    exposition.render(registry)
    counter.labels('/quote"d').inc(41)
    counter.labels("/added").inc()
    counter.remove("/ünïcødé")
    gauge.set(7)
    text = exposition.render(registry)
    assert text == generate_latest(registry)
    assert b'demo_requests_total{path="/quote\\"d"} 42.0' in text
    assert b'path="/added"' in text and "ünïcødé".encode() not in text


def test_daemon_metrics_render_like_generate_latest(metrics: Metrics) -> None:
    """The daemon's own registry with check series renders exactly as generate_latest would."""
    for index in range(3):
        name = f"check-{index}"
        metrics.check_duration.labels(name, "http").observe(0.02 * index)
        metrics.check_runs.labels(name, "http", "success").inc()
        metrics.check_success.labels(name, "http", "web").set(1)
    metrics.scheduler_lag.observe(0.003)
    assert metrics.render() == generate_latest(metrics.registry)
    assert metrics.render() == generate_latest(metrics.registry)
