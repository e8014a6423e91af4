"""Which containers a check watches: by Compose project and service, by name, or by labels."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.docker.lifecycle import ONEOFF_LABEL, PROJECT_LABEL, SERVICE_LABEL

# The names rollback gives the containers it takes out of service (monitor/rollback/recreate.py):
# the bad one kept for inspection, and a replacement set aside by an undo.
_RETIRED_NAME = re.compile(r".+_(?:failed|unused)_[0-9a-f]{12}")


def is_retired_name(name: str) -> bool:
    """Whether a container name is one rollback gave a container it took out of service. Such a
    container keeps its Compose labels (the engine cannot change labels), but it is no longer
    one of the service's containers."""
    return _RETIRED_NAME.fullmatch(name.lstrip("/")) is not None


@dataclass(frozen=True)
class Selector:
    """A container selection. With a name, only that container; otherwise every container whose
    labels match (Compose one-off `run` containers and containers rollback retired excluded)."""

    project: str | None = None
    service: str | None = None
    name: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def _wanted(self) -> dict[str, str]:
        wanted = dict(self.labels)
        if self.project:
            wanted[PROJECT_LABEL] = self.project
        if self.service:
            wanted[SERVICE_LABEL] = self.service
        return wanted

    def filters(self) -> dict[str, list[str]]:
        """Filters for `GET /containers/json` (the engine ANDs label filters)."""
        if self.name:
            return {"name": [self.name]}
        return {"label": [f"{k}={v}" if v else k for k, v in sorted(self._wanted().items())]}

    def matches(self, labels: Mapping[str, str], name: str) -> bool:
        """Whether a container with these labels (or event attributes) and name is selected."""
        if self.name:
            return name.lstrip("/") == self.name
        if labels.get(ONEOFF_LABEL, "").lower() == "true" or is_retired_name(name):
            return False
        return all(
            labels.get(key) == value if value else key in labels
            for key, value in self._wanted().items()
        )

    def describe(self) -> str:
        """The selection as a person reads it: `project=shop service=backend`."""
        if self.name:
            return f"name={self.name}"
        parts = []
        if self.project:
            parts.append(f"project={self.project}")
        if self.service:
            parts.append(f"service={self.service}")
        parts.extend(
            f"label {k}={v}" if v else f"label {k}" for k, v in sorted(self.labels.items())
        )
        return " ".join(parts)


_STATE_RANK = {"running": 0, "restarting": 1, "paused": 2}


def best_candidate(summaries: Iterable[Mapping[str, Any]], selector: Selector) -> str | None:
    """The id of the container to report among `GET /containers/json` results: a running one
    first, then the most recently created (a scaled service or an old exited copy left behind)."""
    chosen: tuple[int, float, str] | None = None
    for summary in summaries:
        names = [str(n).lstrip("/") for n in summary.get("Names") or []]
        labels = summary.get("Labels") or {}
        if not any(selector.matches(labels, n) for n in names or [""]):
            continue
        rank = _STATE_RANK.get(str(summary.get("State")), 3)
        created = float(summary.get("Created") or 0)
        key = (rank, -created, str(summary.get("Id")))
        if chosen is None or key < chosen:
            chosen = key
    return chosen[2] if chosen else None
