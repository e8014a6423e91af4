"""Checks from container labels: `opsmon.enable=true` gives a container check without config,
`opsmon.http.url` (with `opsmon.http.conditions`, `;`-separated) an HTTP check as well."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from monitor.checks import CHECK_TYPES
from monitor.core.spec import CheckSpec
from monitor.docker.lifecycle import ONEOFF_LABEL, PROJECT_LABEL, SERVICE_LABEL
from monitor.docker.selection import is_retired_name

ENABLE_LABEL = "opsmon.enable"
NAME_LABEL = "opsmon.name"
HTTP_URL_LABEL = "opsmon.http.url"
HTTP_CONDITIONS_LABEL = "opsmon.http.conditions"
# What to ask the engine for: any container carrying one of these labels.
DISCOVERY_FILTERS = ({"label": [ENABLE_LABEL]}, {"label": [HTTP_URL_LABEL]})
_NAME_MAX = 63
_SUFFIX_ROOM = 8
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}

Identity = tuple[str, str, str]  # ("compose", project, service) or ("name", "", container name)


def check_name(text: str) -> str:
    """`text` made into a check name: lower case, `[a-z0-9-]`, at most 63 characters."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower())
    name = re.sub(r"-{2,}", "-", name).strip("-")
    return name[: _NAME_MAX - _SUFFIX_ROOM].rstrip("-") or "container"


def is_discovery_label(key: str) -> bool:
    """Whether a label is one that discovery reads."""
    return key.startswith("opsmon.")


@dataclass
class Plan:
    """The checks the labelled containers ask for, and the labels that could not be used."""

    specs: dict[str, CheckSpec] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _validation_text(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {str(error['msg']).removeprefix('Value error, ')}")
    return "; ".join(parts)


class Discovery:
    """Turns container listings into check specs with names that stay the same across scans."""

    def __init__(self, defaults: Mapping[str, object]) -> None:
        self._defaults = dict(defaults)
        self._names: dict[Identity, str] = {}

    def update_defaults(self, defaults: Mapping[str, object]) -> None:
        """Use new defaults (interval, thresholds) for the checks planned from now on."""
        self._defaults = dict(defaults)

    def _name_for(self, identity: Identity, labels: Mapping[str, str], taken: set[str]) -> str:
        known = self._names.get(identity)
        if known is not None and known not in taken:
            return known
        kind, project, base = identity
        wanted = check_name(labels.get(NAME_LABEL) or base)
        candidates = [wanted]
        if kind == "compose" and project:
            candidates.append(check_name(f"{project}-{base}"))
        name = next((c for c in candidates if c not in taken), None)
        number = 2
        while name is None or name in taken:
            name = f"{candidates[-1]}-{number}"
            number += 1
        self._names[identity] = name
        return name

    def plan(self, summaries: Iterable[Mapping[str, Any]], reserved: Iterable[str]) -> Plan:
        """The specs for every labelled container in `summaries` (from `GET /containers/json`);
        `reserved` are names already used by configured checks."""
        plan = Plan()
        taken = set(reserved)
        seen: set[Identity] = set()
        ordered = sorted(summaries, key=lambda s: (float(s.get("Created") or 0), str(s.get("Id"))))
        for summary in ordered:
            labels = {str(k): str(v) for k, v in (summary.get("Labels") or {}).items()}
            names = [str(n).lstrip("/") for n in summary.get("Names") or []]
            container = names[0] if names else str(summary.get("Id", ""))[:12]
            if labels.get(ONEOFF_LABEL, "").lower() == "true" or is_retired_name(container):
                continue  # a one-off `run`, or a container rollback took out of service
            enable = labels.get(ENABLE_LABEL, "").strip().lower()
            url = labels.get(HTTP_URL_LABEL, "").strip()
            if enable and enable not in _TRUE | _FALSE:
                plan.problems.append(
                    f"container {container}: label {ENABLE_LABEL}={enable!r} is not true/false"
                )
                continue
            if enable in _FALSE or (enable not in _TRUE and not url):
                continue
            project, service = labels.get(PROJECT_LABEL, ""), labels.get(SERVICE_LABEL, "")
            identity: Identity = (
                ("compose", project, service) if service else ("name", "", container)
            )
            if identity in seen:
                continue  # another replica of a service already planned
            seen.add(identity)
            name = self._name_for(identity, labels, taken)
            taken.add(name)
            selection: dict[str, object] = (
                {"project": project or None, "service": service}
                if service
                else {"container": container}
            )
            if enable in _TRUE:
                self._add(plan, container, {"name": name, "type": "container", **selection})
            if url:
                http_name = f"{name}-http"
                taken.add(http_name)
                raw_conditions = labels.get(HTTP_CONDITIONS_LABEL, "")
                conditions = [c.strip() for c in raw_conditions.split(";") if c.strip()]
                http: dict[str, object] = {
                    "name": http_name,
                    "type": "http",
                    "url": url,
                    "service": service or None,
                    "conditions": conditions,
                }
                if enable in _TRUE:
                    http["depends_on"] = [name]
                self._add(plan, container, http)
        return plan

    def _add(self, plan: Plan, container: str, raw: dict[str, Any]) -> None:
        entry = CHECK_TYPES[raw["type"]]
        raw = {**self._defaults, **raw}
        try:
            spec = entry.validate(raw)
        except ValidationError as exc:
            plan.problems.append(
                f"container {container}: cannot make a {raw['type']} check from its labels: "
                f"{_validation_text(exc)}"
            )
            return
        if spec.timeout > spec.interval:
            spec = spec.model_copy(update={"timeout": spec.interval})
        plan.specs[spec.name] = spec
