"""What is needed to recreate a container, read from `docker inspect`, and the diff of two.

A snapshot holds environment values (secrets among them): it is only ever stored in the state
file (mode 0600) and sent to the engine. Nothing of it is logged; `diff` names variables and
labels but never shows their values.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Container settings (`Config` of inspect) that a create request carries over. The inspect
# values are already merged with the image's defaults, which is what the LKG container ran.
CONFIG_KEYS = (
    "Hostname",
    "Domainname",
    "User",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ExposedPorts",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "NetworkDisabled",
    "MacAddress",
    "Labels",
    "StopSignal",
    "StopTimeout",
    "Shell",
)
# Network modes that are not a network of their own (no endpoint settings to carry over).
_SPECIAL_MODES = ("host", "none", "bridge", "default")
_SHORT_ID = 12


class SnapshotError(ValueError):
    """A container that cannot be recreated from what inspect shows."""


def short_id(value: str) -> str:
    """`sha256:0123456789abcdef...` -> `0123456789ab`."""
    return value.removeprefix("sha256:")[:_SHORT_ID]


def _network_mode_is_shared(mode: str) -> bool:
    return mode in ("host",) or mode.startswith("container:")


def _endpoint(settings: Mapping[str, Any], container_id: str) -> dict[str, object]:
    """The create/connect endpoint settings of one network (its own aliases only)."""
    own = container_id[:_SHORT_ID]
    aliases = [a for a in settings.get("Aliases") or [] if a != own and a != container_id]
    endpoint: dict[str, object] = {}
    if aliases:
        endpoint["Aliases"] = aliases
    ipam = settings.get("IPAMConfig")
    if ipam:
        endpoint["IPAMConfig"] = dict(ipam)
    if settings.get("Links"):
        endpoint["Links"] = list(settings["Links"])
    if settings.get("DriverOpts"):
        endpoint["DriverOpts"] = dict(settings["DriverOpts"])
    return endpoint


def _link(entry: str) -> str:
    """Inspect shows links as `/target:/this/alias`; create wants `target:alias`."""
    target, _, alias = entry.partition(":")
    return f"{target.lstrip('/')}:{alias.rsplit('/', 1)[-1]}" if alias else target.lstrip("/")


def _covered(destination: str, host_config: Mapping[str, Any]) -> bool:
    for bind in host_config.get("Binds") or []:
        parts = str(bind).split(":")
        if len(parts) >= 2 and parts[1] == destination:
            return True
    return any(m.get("Target") == destination for m in host_config.get("Mounts") or [])


@dataclass(frozen=True)
class Snapshot:
    """The configuration of one container, enough to create an identical one."""

    container_id: str
    name: str
    image: str  # the reference it was created from, e.g. registry/app:abc123
    image_id: str
    config: Mapping[str, Any] = field(repr=False)
    host_config: Mapping[str, Any] = field(repr=False)
    networks: Mapping[str, Mapping[str, Any]] = field(repr=False)

    @classmethod
    def from_inspect(cls, data: Mapping[str, Any]) -> Snapshot:
        """The snapshot of a container from the JSON of `GET /containers/{id}/json`."""
        container_id = str(data.get("Id") or "")
        name = str(data.get("Name") or "").lstrip("/")
        raw_config = data.get("Config") or {}
        raw_host = data.get("HostConfig") or {}
        if not container_id or not name or not raw_config.get("Image"):
            raise SnapshotError("the inspect data has no container id, name or image")
        host_config: dict[str, Any] = copy.deepcopy(dict(raw_host))
        mode = str(host_config.get("NetworkMode") or "default")
        config = {k: copy.deepcopy(raw_config[k]) for k in CONFIG_KEYS if k in raw_config}
        # Docker names a container's host after its short id unless told otherwise; a shared
        # network namespace (host, container:) brings its own name, which create refuses.
        if _network_mode_is_shared(mode) or config.get("Hostname") == container_id[:_SHORT_ID]:
            config.pop("Hostname", None)
            config.pop("Domainname", None)
        if _network_mode_is_shared(mode):
            config.pop("MacAddress", None)
        if host_config.get("Links"):
            host_config["Links"] = [_link(str(e)) for e in host_config["Links"]]
        # Anonymous volumes (image VOLUME, `-v /path`) are re-used by name, as Compose does.
        binds = list(host_config.get("Binds") or [])
        for mount in data.get("Mounts") or []:
            if mount.get("Type") != "volume" or not mount.get("Name"):
                continue
            destination = str(mount.get("Destination") or "")
            if destination and not _covered(destination, host_config):
                suffix = "" if mount.get("RW", True) else ":ro"
                binds.append(f"{mount['Name']}:{destination}{suffix}")
        if binds:
            host_config["Binds"] = binds
        networks: dict[str, dict[str, Any]] = {}
        if not _network_mode_is_shared(mode) and mode != "none":
            raw_networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
            for network, settings in raw_networks.items():
                networks[str(network)] = _endpoint(settings or {}, container_id)
        return cls(
            container_id=container_id,
            name=name,
            image=str(raw_config.get("Image")),
            image_id=str(data.get("Image") or ""),
            config=config,
            host_config=host_config,
            networks=networks,
        )

    # --- create request -------------------------------------------------------------------
    @property
    def primary_network(self) -> str | None:
        """The network the container is created on (the others are connected after create)."""
        mode = str(self.host_config.get("NetworkMode") or "default")
        if mode in self.networks:
            return mode
        named = sorted(n for n in self.networks if n not in _SPECIAL_MODES)
        return named[0] if named else None

    def create_body(self, image: str) -> dict[str, Any]:
        """The body of `POST /containers/create?name=<name>` that recreates this container on
        `image` (the body is a fresh copy each time)."""
        body: dict[str, Any] = copy.deepcopy(dict(self.config))
        body["Image"] = image
        body["HostConfig"] = copy.deepcopy(dict(self.host_config))
        primary = self.primary_network
        if primary is not None:
            body["NetworkingConfig"] = {
                "EndpointsConfig": {primary: copy.deepcopy(dict(self.networks[primary]))}
            }
        return body

    def extra_networks(self) -> dict[str, dict[str, Any]]:
        """Networks to connect after create (the API creates on one network only)."""
        primary = self.primary_network
        return {
            name: copy.deepcopy(dict(settings))
            for name, settings in sorted(self.networks.items())
            if name != primary and name not in _SPECIAL_MODES
        }

    # --- what a person may see --------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """Environment variables by name (values are secret: never print them)."""
        found: dict[str, str] = {}
        for entry in self.config.get("Env") or []:
            name, _, value = str(entry).partition("=")
            found[name] = value
        return found

    @property
    def labels(self) -> dict[str, str]:
        """The container's labels (Compose ones included)."""
        return {str(k): str(v) for k, v in (self.config.get("Labels") or {}).items()}

    def secret_values(self) -> list[str]:
        """Values a redactor must mask in anything derived from this snapshot."""
        return [v for v in self.env.values() if v]

    def summary(self) -> dict[str, str]:
        """One line of text per setting a person compares (no env or label values)."""
        config, host = self.config, self.host_config

        def words(value: object) -> str:
            if value is None:
                return "(image default)"
            if isinstance(value, list):
                return json.dumps(value)
            return str(value)

        restart = host.get("RestartPolicy") or {}
        restart_text = str(restart.get("Name") or "no")
        if restart.get("MaximumRetryCount"):
            restart_text += f":{restart['MaximumRetryCount']}"
        ports = []
        for port, bindings in sorted((host.get("PortBindings") or {}).items()):
            for binding in bindings or []:
                ip = binding.get("HostIp") or ""
                ports.append(f"{ip + ':' if ip else ''}{binding.get('HostPort')}->{port}")
        mounts = sorted(str(b) for b in host.get("Binds") or [])
        mounts += sorted(
            f"{m.get('Type')}:{m.get('Source', '')}:{m.get('Target')}"
            for m in host.get("Mounts") or []
        )
        mounts += sorted(f"tmpfs:{path}" for path in host.get("Tmpfs") or {})
        networks = [
            f"{name}" + (f" (aliases {', '.join(s['Aliases'])})" if s.get("Aliases") else "")
            for name, s in sorted(self.networks.items())
        ]
        health = config.get("Healthcheck") or {}
        health_text = " ".join(health.get("Test") or []) or "(image default)"
        return {
            "image": f"{self.image} ({short_id(self.image_id)})" if self.image_id else self.image,
            "entrypoint": words(config.get("Entrypoint")),
            "command": words(config.get("Cmd")),
            "working_dir": str(config.get("WorkingDir") or "/"),
            "user": str(config.get("User") or "(image default)"),
            "env": ", ".join(sorted(self.env)) or "(none)",
            "mounts": ", ".join(mounts) or "(none)",
            "network_mode": str(host.get("NetworkMode") or "default"),
            "networks": ", ".join(networks) or "(none)",
            "ports": ", ".join(ports) or "(none)",
            "restart_policy": restart_text,
            "healthcheck": health_text,
            "memory": str(host.get("Memory") or 0),
        }

    # --- storage ----------------------------------------------------------------------------
    def to_json(self) -> str:
        """Serialized for the state file (holds env values: never log it)."""
        return json.dumps(
            {
                "container_id": self.container_id,
                "name": self.name,
                "image": self.image,
                "image_id": self.image_id,
                "config": self.config,
                "host_config": self.host_config,
                "networks": self.networks,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        """The inverse of `to_json`."""
        data = json.loads(text)
        return cls(
            container_id=data["container_id"],
            name=data["name"],
            image=data["image"],
            image_id=data["image_id"],
            config=data["config"],
            host_config=data["host_config"],
            networks=data["networks"],
        )

    def __str__(self) -> str:
        return f"snapshot of {self.name} ({self.image})"


def diff(current: Snapshot, target: Snapshot) -> list[str]:
    """What changes when `current` is replaced by a container made from `target`, one line per
    setting; variables and labels are named, never shown with their values."""
    lines: list[str] = []
    before, after = current.summary(), target.summary()
    for key in before:
        if key in ("env",):
            continue
        if before[key] != after[key]:
            lines.append(f"{key}: {before[key]} -> {after[key]}")
    lines.extend(_named_changes("env", current.env, target.env))
    lines.extend(_named_changes("label", current.labels, target.labels))
    return lines


def _named_changes(what: str, before: Mapping[str, str], after: Mapping[str, str]) -> Iterable[str]:
    removed = sorted(set(before) - set(after))
    added = sorted(set(after) - set(before))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    if changed:
        yield f"{what} changed: {', '.join(changed)}"
    if added:
        yield f"{what} added: {', '.join(added)}"
    if removed:
        yield f"{what} removed: {', '.join(removed)}"
