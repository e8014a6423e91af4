"""The Prometheus text format, byte for byte what `prometheus_client.generate_latest` writes,
with the escaping of metric names and label sets remembered between scrapes.

With a few thousand checks /metrics holds tens of thousands of samples, and generate_latest
validates and escapes every name and label of every sample on every scrape; that was most of a
scrape's cost. Names and label sets repeat from one scrape to the next, so they are formatted
once. Values and timestamps are formatted as generate_latest does, on every scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

go_float: Callable[[float], str] = floatToGoString  # the library's own number format

# Bounds the memory of the cache (an entry is a label set seen in some scrape): far above
# what a config of a few thousand checks produces, cleared if reached (series that churn).
_MAX_CACHED = 100_000
_OPENMETRICS_SUFFIXES = ("_created", "_gsum", "_gcount")
_TYPE_RENAMES = {
    "info": "gauge",
    "stateset": "gauge",
    "gaugehistogram": "histogram",
    "unknown": "untyped",
}


def metric_name(name: str) -> str:
    """A metric name as the text format writes it."""
    return openmetrics.escape_metric_name(name, openmetrics.UNDERSCORES)


def escape_label_value(value: str) -> str:
    """A label value as the text format writes it (only these three are escaped)."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def label_block(labels: dict[str, str]) -> str:
    """`{a="1",b="2"}`, names sorted and escaped as generate_latest does; "" without labels."""
    if not labels:
        return ""
    escape_name = openmetrics.escape_label_name
    pairs = ",".join(
        f'{escape_name(name, openmetrics.UNDERSCORES)}="{escape_label_value(value)}"'
        for name, value in sorted(labels.items())
    )
    return "{" + pairs + "}"


def help_text(documentation: str) -> str:
    """A HELP text as the text format writes it."""
    return documentation.replace("\\", r"\\").replace("\n", r"\n")


class FamilySource(Protocol):
    """What a FastFamily is made from: its samples on demand, and its text directly."""

    name: str
    documentation: str
    kind: str

    def samples(self) -> Iterator[Sample]:
        """The samples, as prometheus_client's own family would hold them."""
        ...

    def write_text(self, output: list[str]) -> None:
        """Append the family's text-format lines (HELP, TYPE, samples) to `output`."""
        ...


class FastFamily(Metric):
    """A family whose samples are built only when someone reads them; /metrics writes its text
    directly (see TextExposition)."""

    def __init__(self, source: FamilySource) -> None:
        super().__init__(source.name, source.documentation, source.kind)
        self.source = source
        self._built = False

    @property
    def samples(self) -> list[Sample]:
        """The samples, built on first access."""
        if not self._built:
            self._built = True
            self._samples = list(self.source.samples())
        return self._samples

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        self._samples = value


class TextExposition:
    """Renders a registry in the text format 0.0.4 (what /metrics serves)."""

    def __init__(self) -> None:
        self._prefixes: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def render(self, registry: CollectorRegistry) -> bytes:
        """The exposition of every metric in `registry`."""
        if len(self._prefixes) > _MAX_CACHED:
            self._prefixes.clear()
        output: list[str] = []
        for metric in registry.collect():
            if isinstance(metric, FastFamily):
                metric.source.write_text(output)
                continue
            try:
                self._family(metric, output)
            except Exception as exc:
                exc.args = (*(exc.args or ("",)), metric)
                raise
        return "".join(output).encode("utf-8")

    def _family(self, metric: Metric, output: list[str]) -> None:
        name, kind = metric.name, metric.type
        if kind == "counter":
            name += "_total"
        elif kind == "info":
            name += "_info"
        kind = _TYPE_RENAMES.get(kind, kind)
        escaped = metric_name(name)
        documentation = help_text(metric.documentation)
        output.append(f"# HELP {escaped} {documentation}\n# TYPE {escaped} {kind}\n")
        special = {metric.name + suffix: suffix for suffix in _OPENMETRICS_SUFFIXES}
        trailing: dict[str, list[str]] = {}
        prefixes = self._prefixes
        for sample in metric.samples:
            key = (sample.name, tuple(sample.labels.items()))
            prefix = prefixes.get(key)
            if prefix is None:
                prefix = prefixes[key] = metric_name(sample.name) + label_block(sample.labels) + " "
            line = prefix + go_float(sample.value)
            if sample.timestamp is not None:
                line += f" {int(float(sample.timestamp) * 1000):d}"
            suffix = special.get(sample.name)
            if suffix is None:
                output.append(line + "\n")
            else:
                # OpenMetrics-only samples go to a gauge family of their own after this one.
                trailing.setdefault(suffix, []).append(line + "\n")
        for suffix, lines in sorted(trailing.items()):
            extra = metric_name(metric.name + suffix)
            output.append(f"# HELP {extra} {documentation}\n# TYPE {extra} gauge\n")
            output.extend(lines)
