"""Gauge, counter and histogram families for series that exist once per check.

With thousands of checks these families hold most of /metrics (a duration histogram alone is 16
samples per check). prometheus_client builds every sample of every child as an object on each
scrape, behind a lock per value: for 2,000 checks a scrape held the event loop for ~0.5 s and
delayed the checks due meanwhile. These families keep plain floats (they are updated from the
event loop only) and write their text straight from per-series line prefixes made once.

They produce the same families, samples and text as prometheus_client's Gauge, Counter and
Histogram (including the `_created` series), so dashboards, `get_sample_value` and
`generate_latest` see no difference; `TextExposition` uses the fast path.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client import metrics as client_metrics
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from monitor.exposition import FastFamily, go_float, help_text, label_block, metric_name


def _created_enabled() -> bool:
    # prometheus_client's switch (PROMETHEUS_DISABLE_CREATED_SERIES, disable_created_metrics()).
    return bool(getattr(client_metrics, "_use_created", True))


class _Child:
    __slots__ = ("created", "created_line", "labels")

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.created = time.time()
        self.created_line = ""


class LeanFamily(Collector):
    """Shared parts: label handling, children in creation order, registration."""

    kind = ""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry | None,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], Any] = {}
        if registry is not None:
            registry.register(self)

    def labels(self, *values: object, **named: object) -> Any:
        """The child for these label values (created on first use), as prometheus_client's."""
        if values and named:
            raise ValueError("Can't pass both *args and **kwargs")
        if named:
            if sorted(named) != sorted(self.labelnames):
                raise ValueError("Incorrect label names")
            values = tuple(named[name] for name in self.labelnames)
        if len(values) != len(self.labelnames):
            raise ValueError("Incorrect label count")
        key = tuple(str(value) for value in values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new_child(
                dict(zip(self.labelnames, key, strict=True))
            )
        return child

    def remove(self, *values: Any) -> None:
        """Forget one child; KeyError if it does not exist."""
        del self._children[tuple(str(value) for value in values)]

    def label_sets(self) -> list[tuple[str, ...]]:
        """The label values of every child."""
        return list(self._children)

    def clear(self) -> None:
        """Forget every child."""
        self._children.clear()

    def describe(self) -> Iterator[Metric]:
        yield Metric(self.name, self.documentation, self.kind)

    def collect(self) -> Iterator[Metric]:
        yield FastFamily(self)

    def _new_child(self, labels: dict[str, str]) -> Any:
        raise NotImplementedError

    def samples(self) -> Iterator[Sample]:
        raise NotImplementedError

    def write_text(self, output: list[str]) -> None:
        raise NotImplementedError

    def _head(self, name: str, kind: str) -> str:
        escaped = metric_name(name)
        return f"# HELP {escaped} {help_text(self.documentation)}\n# TYPE {escaped} {kind}\n"

    def _created_lines(self, children: list[Any], output: list[str]) -> None:
        if not children or not _created_enabled():
            return
        output.append(self._head(self.name + "_created", "gauge"))
        for child in children:
            if not child.created_line:
                child.created_line = (
                    metric_name(self.name + "_created")
                    + label_block(child.labels)
                    + f" {go_float(child.created)}\n"
                )
            output.append(child.created_line)


class _GaugeChild:
    __slots__ = ("labels", "prefix", "value")

    def __init__(self, labels: dict[str, str], prefix: str) -> None:
        self.labels = labels
        self.prefix = prefix
        self.value = 0.0

    def set(self, value: float) -> None:
        """Set the gauge."""
        self.value = float(value)

    def inc(self, amount: float = 1) -> None:
        """Add to the gauge."""
        self.value += amount


class LeanGauge(LeanFamily):
    """A gauge family (as prometheus_client.Gauge, no multiprocess modes)."""

    kind = "gauge"

    def _new_child(self, labels: dict[str, str]) -> _GaugeChild:
        return _GaugeChild(labels, metric_name(self.name) + label_block(labels) + " ")

    def samples(self) -> Iterator[Sample]:
        for child in list(self._children.values()):
            yield Sample(self.name, dict(child.labels), child.value, None, None)

    def write_text(self, output: list[str]) -> None:
        output.append(self._head(self.name, "gauge"))
        for child in list(self._children.values()):
            output.append(f"{child.prefix}{go_float(child.value)}\n")


class _CounterChild(_Child):
    __slots__ = ("prefix", "value")

    def __init__(self, labels: dict[str, str], prefix: str) -> None:
        super().__init__(labels)
        self.prefix = prefix
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        """Add `amount` (>= 0)."""
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self.value += amount


class LeanCounter(LeanFamily):
    """A counter family: `<name>_total` and `<name>_created`, as prometheus_client.Counter."""

    kind = "counter"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry | None,
    ) -> None:
        # As prometheus_client: the family is named without `_total`.
        super().__init__(name.removesuffix("_total"), documentation, labelnames, registry)

    def _new_child(self, labels: dict[str, str]) -> _CounterChild:
        return _CounterChild(labels, metric_name(self.name + "_total") + label_block(labels) + " ")

    def samples(self) -> Iterator[Sample]:
        created = _created_enabled()
        for child in list(self._children.values()):
            yield Sample(self.name + "_total", dict(child.labels), child.value, None, None)
            if created:
                yield Sample(self.name + "_created", dict(child.labels), child.created, None, None)

    def write_text(self, output: list[str]) -> None:
        children = list(self._children.values())
        output.append(self._head(self.name + "_total", "counter"))
        for child in children:
            output.append(f"{child.prefix}{go_float(child.value)}\n")
        self._created_lines(children, output)


class _HistogramChild(_Child):
    __slots__ = ("bounds", "counts", "prefixes", "sum")

    def __init__(self, labels: dict[str, str], bounds: tuple[float, ...], prefixes: Any) -> None:
        super().__init__(labels)
        self.bounds = bounds
        self.counts = [0.0] * len(bounds)
        self.sum = 0.0
        self.prefixes: tuple[tuple[str, ...], str, str] = prefixes

    def observe(self, amount: float) -> None:
        """Count one observation in the first bucket whose bound is >= amount."""
        self.sum += amount
        for index, bound in enumerate(self.bounds):
            if amount <= bound:
                self.counts[index] += 1
                break


class LeanHistogram(LeanFamily):
    """A histogram family (`_bucket`, `_count`, `_sum`, `_created`), as prometheus_client's."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry | None,
    ) -> None:
        bounds = [float(bound) for bound in buckets]
        if bounds != sorted(bounds):
            raise ValueError("Buckets not in sorted order")
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        self.bounds = tuple(bounds)
        self._le = tuple(go_float(bound) for bound in self.bounds)
        # As prometheus_client: no _sum when buckets start below zero (it would not be a counter).
        self._has_sum = self.bounds[0] >= 0
        super().__init__(name, documentation, labelnames, registry)

    def _new_child(self, labels: dict[str, str]) -> _HistogramChild:
        bucket = metric_name(self.name + "_bucket")
        buckets = tuple(bucket + label_block({**labels, "le": le}) + " " for le in self._le)
        block = label_block(labels)
        count = metric_name(self.name + "_count") + block + " "
        total = metric_name(self.name + "_sum") + block + " "
        return _HistogramChild(labels, self.bounds, (buckets, count, total))

    def samples(self) -> Iterator[Sample]:
        created = _created_enabled()
        for child in list(self._children.values()):
            labels = child.labels
            cumulative = 0.0
            for le, count in zip(self._le, child.counts, strict=True):
                cumulative += count
                yield Sample(self.name + "_bucket", {**labels, "le": le}, cumulative, None, None)
            yield Sample(self.name + "_count", dict(labels), cumulative, None, None)
            if self._has_sum:
                yield Sample(self.name + "_sum", dict(labels), child.sum, None, None)
            if created:
                yield Sample(self.name + "_created", dict(labels), child.created, None, None)

    def write_text(self, output: list[str]) -> None:
        children = list(self._children.values())
        output.append(self._head(self.name, "histogram"))
        for child in children:
            buckets, count, total = child.prefixes
            cumulative = 0.0
            for prefix, observed in zip(buckets, child.counts, strict=True):
                cumulative += observed
                output.append(f"{prefix}{go_float(cumulative)}\n")
            output.append(f"{count}{go_float(cumulative)}\n")
            if self._has_sum:
                output.append(f"{total}{go_float(child.sum)}\n")
        self._created_lines(children, output)
