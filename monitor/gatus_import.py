"""`opsmon import gatus GATUS_CONFIG [-o FILE]`: a Gatus `config.yaml` as an opsmon config.

The conversion is a pure function from the parsed Gatus document to an opsmon config (a plain
mapping) plus one note per thing that could not be carried over, with the reason: endpoint
types opsmon has no check for (DNS, ICMP, SSH, TCP, ...), alerting providers it has no channel
for, conditions that cannot work here. Nothing is dropped silently. Secrets (webhook URLs,
passwords, credential headers) are never copied: the output names an environment variable
(`${SLACK_WEBHOOK_URL}`) and a note says which Gatus key held its value. docs/conditions.md has
the condition differences; the command validates what it writes with opsmon's own loader.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import SupportsInt, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import yaml

from monitor.conditions import Condition, ConditionSyntaxError, PlaceholderTable, check_placeholders
from monitor.core.durations import is_duration, parse_duration

EXIT_OK, EXIT_INVALID_OUTPUT, EXIT_USAGE = 0, 1, 2
GATUS_INTERVAL = "60s"  # Gatus's default `interval`
GATUS_TIMEOUT = 10.0  # Gatus's default `client.timeout`, seconds
GATUS_FAILURE_THRESHOLD, GATUS_SUCCESS_THRESHOLD = 3, 2
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_NAME_CHARS = re.compile(r"[^a-z0-9]+")
_ENV_REFERENCE = re.compile(
    r"\$\$|\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
)
_HAS_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}")
_SECRET_HEADER = re.compile(r"authorization|cookie|token|secret|key|password|signature|auth", re.I)
_SECRET_QUERY = re.compile(r"token|key|secret|password|signature|sig|auth|code", re.I)
_STATIC_BODY_PLACEHOLDERS = ("[ENDPOINT_NAME]", "[ENDPOINT_GROUP]", "[ENDPOINT_URL]")
_WEEKDAYS = {
    "monday": "mon",
    "tuesday": "tue",
    "wednesday": "wed",
    "thursday": "thu",
    "friday": "fri",
    "saturday": "sat",
    "sunday": "sun",
}

# Endpoint kinds Gatus has and opsmon does not, by URL scheme (or a key of their own).
UNSUPPORTED_SCHEMES = {
    "tcp": "TCP endpoints",
    "udp": "UDP endpoints",
    "sctp": "SCTP endpoints",
    "icmp": "ICMP (ping) endpoints",
    "ssh": "SSH endpoints",
    "ws": "WebSocket endpoints",
    "wss": "WebSocket endpoints",
    "grpc": "gRPC health endpoints",
    "grpcs": "gRPC health endpoints",
    "starttls": "STARTTLS endpoints",
    "tls": "TLS endpoints",
}
# Top-level Gatus keys that have no counterpart, and why a user need not worry (or must).
TOP_LEVEL_REASONS = {
    "metrics": "opsmon always serves Prometheus metrics on /metrics",
    "storage": "opsmon keeps its state in SQLite under state_dir",
    "web": "opsmon listens on `listen` (default 127.0.0.1:9110)",
    "ui": "opsmon has no dashboard UI settings",
    "security": "opsmon's HTTP endpoints have no basic auth/OIDC settings",
    "announcements": "opsmon has no announcements",
    "external-endpoints": "opsmon has no push-based (external) endpoints",
    "suites": "opsmon has no multi-step suites",
    "remote": "opsmon has no remote instances",
    "connectivity": "opsmon has no connectivity checker; use depends_on for root causes",
    "concurrency": "opsmon runs every check on its own schedule",
    "disable-monitoring-lock": "opsmon runs every check on its own schedule",
    "skip-invalid-config-update": "opsmon always keeps the old config when a reload is invalid",
    "tunneling": "opsmon has no SSH tunnels",
}
ENDPOINT_KEYS_DROPPED = {
    "ui": "opsmon has no per-endpoint UI settings",
    "extra-labels": "opsmon's metric labels are fixed (check, type, service)",
    "store": "opsmon has no suites",
    "always-run": "opsmon has no suites",
}


@dataclass
class Conversion:
    """The opsmon config (a plain mapping, ready for YAML) and one note per thing not carried."""

    config: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)  # env var -> the Gatus key it replaces


def _env_references(value: object) -> object:
    """Gatus's `$VAR` written as opsmon's `${VAR}` (`${VAR}` and `$$` mean the same in both)."""
    if isinstance(value, str):
        return _ENV_REFERENCE.sub(
            lambda m: "${" + m.group(1) + "}" if m.group(1) else m.group(0), value
        )
    if isinstance(value, list):
        return [_env_references(v) for v in value]
    if isinstance(value, dict):
        return {k: _env_references(v) for k, v in value.items()}
    return value


def _slug(text: str) -> str:
    return _NAME_CHARS.sub("-", text.lower()).strip("-")[:63].strip("-")


def _env_name(*parts: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", "_".join(parts).upper()).strip("_")


def _duration(value: object) -> str | None:
    """A Gatus duration in opsmon's form, or None if opsmon cannot read it (`300us`)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value}s" if value else None
    if isinstance(value, str) and is_duration(value):
        return value.strip()
    return None


def _int(value: object) -> int:
    """`int()` of a parsed YAML scalar (raising as `int()` does on anything else)."""
    return int(cast("str | SupportsInt", value))


def _seconds(text: str) -> float:
    return parse_duration(text)


def _hhmm(value: object) -> str | None:
    """`23:00` (YAML 1.1 reads an unquoted one as the base-60 number 1380) as `HH:MM`."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return f"{value // 60:02d}:{value % 60:02d}"
    if isinstance(value, str) and re.match(r"^\d{1,2}:\d{2}$", value.strip()):
        return value.strip()
    return None


class _Converter:
    """One conversion: holds the notes and the env variables as it goes."""

    def __init__(self, http_placeholders: PlaceholderTable) -> None:
        self.result = Conversion()
        self._placeholders = http_placeholders
        self._names: set[str] = set()
        self.defaults: dict[str, dict[str, object]] = {}  # provider -> its default-alert
        self.check_of: dict[int, str] = {}  # endpoint index -> the check made from it
        self.mapped: set[str] = set()  # providers that became channels
        self.resolved: dict[str, bool] = {}  # provider -> some alert wants send-on-resolved
        self.reminders: set[str] = set()  # minimum-reminder-interval values seen

    def note(self, where: str, message: str) -> None:
        self.result.notes.append(f"{where}: {message}")

    def secret(self, value: object, variable: str, where: str) -> str:
        """An env reference in place of a secret value (kept if it already is one)."""
        text = str(value)
        if _HAS_REFERENCE.search(text):
            return text  # the secret part already comes from the environment
        name = variable
        suffix = 2
        while name in self.result.variables:
            name = f"{variable}_{suffix}"
            suffix += 1
        self.result.variables[name] = where
        return "${" + name + "}"

    # --- endpoints -------------------------------------------------------------------------

    def endpoints(self, endpoints: object) -> tuple[list[dict[str, object]], dict[str, list[str]]]:
        """Checks for the HTTP endpoints; per check the Gatus alert types it had."""
        checks: list[dict[str, object]] = []
        alerts: dict[str, list[str]] = {}
        if not isinstance(endpoints, list):
            if endpoints is not None:
                self.note("endpoints", "not converted: must be a list of endpoints")
            return checks, alerts
        for index, endpoint in enumerate(endpoints):
            where = f"endpoints[{index}]"
            if not isinstance(endpoint, dict):
                self.note(where, "not converted: not a mapping")
                continue
            where = f"{where} ({endpoint.get('name', '?')})"
            converted = self.endpoint(endpoint, where)
            if converted is not None:
                check, alert_types = converted
                checks.append(check)
                name = str(check["name"])
                self.check_of[index] = name
                alerts[name] = alert_types
        return checks, alerts

    def _unique_name(self, endpoint: Mapping[str, object], where: str) -> str:
        original = str(endpoint.get("name", ""))
        base = _slug(original) or "endpoint"
        name = base
        group = _slug(str(endpoint.get("group") or ""))
        if name in self._names and group:
            name = _slug(f"{group}-{base}")
        suffix = 2
        while name in self._names:
            name = f"{base[:60]}-{suffix}"
            suffix += 1
        self._names.add(name)
        if name != original:
            self.note(where, f"check named {name!r} (opsmon names are [a-z0-9-], unique)")
        return name

    def endpoint(
        self, endpoint: Mapping[str, object], where: str
    ) -> tuple[dict[str, object], list[str]] | None:
        """One endpoint as an http check, or None with a note saying why it cannot be one."""
        if endpoint.get("enabled") is False:
            self.note(where, "not converted: disabled in Gatus (enabled: false)")
            return None
        url = str(endpoint.get("url") or "")
        scheme = urlsplit(url).scheme.lower() if "://" in url else ""
        if "dns" in endpoint:
            self.note(where, "not converted: DNS endpoints have no opsmon check type")
            return None
        if scheme in UNSUPPORTED_SCHEMES or "ssh" in endpoint:
            kind = UNSUPPORTED_SCHEMES.get(scheme, "SSH endpoints")
            self.note(where, f"not converted: {kind} have no opsmon check type")
            return None
        if not scheme and _HAS_REFERENCE.match(url):
            scheme = "https" if url.startswith("https") else "http"
            self.note(where, f"url {url!r} comes from the environment: assumed to be http(s)")
        elif scheme not in ("http", "https"):
            self.note(
                where, f"not converted: url {scheme + '://' if scheme else url!r} is not http(s)"
            )
            return None
        method = str(endpoint.get("method") or "GET").upper()
        if method not in HTTP_METHODS:
            self.note(
                where, f"not converted: method {method} is not one of {', '.join(HTTP_METHODS)}"
            )
            return None
        name = self._unique_name(endpoint, where)
        check: dict[str, object] = {"name": name, "type": "http"}
        if endpoint.get("group"):
            check["service"] = str(endpoint["group"])[:63]
        check["url"] = self._url(url, name, f"{where}.url")
        if method != "GET":
            check["method"] = method
        headers = self._headers(endpoint.get("headers"), name, where)
        body = self._body(endpoint, where, headers)
        if headers:
            check["headers"] = headers
        if body is not None:
            check["body"] = body
        interval = _duration(endpoint.get("interval", GATUS_INTERVAL))
        if interval is None:
            self.note(
                where, f"interval {endpoint.get('interval')!r} unreadable; using {GATUS_INTERVAL}"
            )
            interval = GATUS_INTERVAL
        check["interval"] = interval
        check.update(self._client(endpoint.get("client"), interval, where))
        conditions = self._conditions(endpoint.get("conditions"), scheme, where)
        if conditions:
            check["conditions"] = conditions
        elif endpoint.get("conditions"):
            self.note(where, "no condition could be carried: the check passes on any 2xx status")
        alert_types = self._alerts(endpoint.get("alerts"), check, where)
        for key, reason in ENDPOINT_KEYS_DROPPED.items():
            if key in endpoint:
                self.note(where, f"{key} not carried over: {reason}")
        return check, alert_types

    def _url(self, url: str, name: str, where: str) -> str:
        """The URL with a password or a credential-looking query value moved to the environment."""
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password:
            secret = self.secret(parts.password, _env_name(name, "password"), f"{where} password")
            netloc = netloc.replace(f":{parts.password}@", f":{secret}@", 1)
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(_SECRET_QUERY.search(k) for k, _ in pairs):
                replaced = [
                    (k, self.secret(v, _env_name(name, k), f"{where} query {k}"))
                    if _SECRET_QUERY.search(k)
                    else (k, v)
                    for k, v in pairs
                ]
                query = urlencode(replaced, safe="${}")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))

    def _headers(self, headers: object, name: str, where: str) -> dict[str, str]:
        if not isinstance(headers, dict):
            return {}
        out: dict[str, str] = {}
        for key, value in headers.items():
            if _SECRET_HEADER.search(str(key)):
                out[str(key)] = self.secret(
                    value, _env_name(name, str(key)), f"{where}.headers.{key}"
                )
            else:
                out[str(key)] = str(value)
        return out

    def _body(
        self, endpoint: Mapping[str, object], where: str, headers: dict[str, str]
    ) -> str | None:
        body = endpoint.get("body")
        if body in (None, ""):
            return None
        text = str(body)
        values = {
            "[ENDPOINT_NAME]": str(endpoint.get("name", "")),
            "[ENDPOINT_GROUP]": str(endpoint.get("group") or ""),
            "[ENDPOINT_URL]": str(endpoint.get("url", "")),
        }
        for placeholder in _STATIC_BODY_PLACEHOLDERS:
            text = text.replace(placeholder, values[placeholder])
        for dynamic in re.findall(r"\[(?:LOCAL_ADDRESS|RANDOM_STRING_\d+)\]", text):
            self.note(
                where,
                f"body placeholder {dynamic} is sent literally (opsmon has no body templates)",
            )
        if _SECRET_HEADER.search(text) and not _HAS_REFERENCE.search(text):
            self.note(
                where,
                "body copied as written and it looks like it holds a credential:"
                " move the value to an environment variable (${VAR})",
            )
        if endpoint.get("graphql"):
            text = json.dumps({"query": text})
            headers.setdefault("Content-Type", "application/json")
        return text

    def _client(self, client: object, interval: str, where: str) -> dict[str, object]:
        out: dict[str, object] = {}
        timeout = GATUS_TIMEOUT
        if isinstance(client, dict):
            for key in client:
                if key == "timeout":
                    parsed = _duration(client["timeout"])
                    if parsed is None:
                        self.note(where, f"client.timeout {client['timeout']!r} unreadable")
                    else:
                        timeout = _seconds(parsed)
                elif key == "insecure":
                    if client["insecure"]:
                        out["verify_tls"] = False
                elif key == "ignore-redirect":
                    if client["ignore-redirect"]:
                        out["follow_redirects"] = False
                else:
                    self.note(
                        where,
                        f"client.{key} not carried over: opsmon's HTTP client has no such setting",
                    )
        seconds = min(timeout, _seconds(interval))
        out["timeout"] = f"{seconds:g}s"
        return out

    def _conditions(self, conditions: object, scheme: str, where: str) -> list[str]:
        if not isinstance(conditions, list):
            return []
        kept: list[str] = []
        for position, text in enumerate(conditions):
            at = f"{where}.conditions[{position}]"
            try:
                condition = Condition.parse(str(text))
                check_placeholders(condition, self._placeholders, "http")
            except ConditionSyntaxError as exc:
                self.note(at, f"{text!r} not carried over: {_condition_reason(str(text), exc)}")
                continue
            if scheme == "http" and "CERTIFICATE_EXPIRATION" in condition.placeholders:
                self.note(at, f"{text!r} not carried over: an http:// URL has no certificate")
                continue
            kept.append(str(text))
        return kept

    def _alerts(self, alerts: object, check: dict[str, object], where: str) -> list[str]:
        """The alert types of this endpoint; its thresholds go onto the check."""
        if not isinstance(alerts, list) or not alerts:
            return []
        merged: list[dict[str, object]] = []
        for alert in alerts:
            if not isinstance(alert, dict) or not alert.get("type"):
                self.note(where, "an alert without a type is not carried over")
                continue
            defaults = self.defaults.get(str(alert["type"]), {})
            entry = {**defaults, **alert}
            if entry.get("enabled") is False:
                self.note(where, f"{alert['type']} alert disabled in Gatus: not carried over")
                continue
            if "provider-override" in entry:
                self.note(
                    where,
                    f"{alert['type']} alert's provider-override not carried over"
                    " (one channel per provider)",
                )
            merged.append(entry)
        if not merged:
            return []
        # Thresholds come from the alerts that still alert here (a dropped provider's do not).
        alerting = [a for a in merged if str(a["type"]) in self.mapped] or merged
        for alert in alerting:
            kind = str(alert["type"])
            self.resolved[kind] = self.resolved.get(kind, False) or bool(
                alert.get("send-on-resolved")
            )
            if alert.get("minimum-reminder-interval") not in (None, "", 0, "0"):
                self.reminders.add(str(alert["minimum-reminder-interval"]))
        first = min(
            alerting, key=lambda a: _int(a.get("failure-threshold", GATUS_FAILURE_THRESHOLD))
        )
        check["failure_threshold"] = _int(first.get("failure-threshold", GATUS_FAILURE_THRESHOLD))
        check["success_threshold"] = _int(first.get("success-threshold", GATUS_SUCCESS_THRESHOLD))
        others = {
            (
                _int(a.get("failure-threshold", GATUS_FAILURE_THRESHOLD)),
                _int(a.get("success-threshold", GATUS_SUCCESS_THRESHOLD)),
            )
            for a in alerting
        }
        if len(others) > 1:
            self.note(
                where,
                f"alerts with different thresholds {sorted(others)}: opsmon has one per check; "
                f"using failure_threshold {check['failure_threshold']}, "
                f"success_threshold {check['success_threshold']}",
            )
        if any(a.get("description") for a in merged):
            self.note(
                where,
                "alert description not carried over: opsmon writes its own summary"
                " and links the runbook",
            )
        return [str(a["type"]) for a in merged]

    # --- alerting providers ----------------------------------------------------------------

    def providers(self, alerting: object) -> dict[str, dict[str, object]]:
        """Channels for the Gatus providers opsmon has (slack, email, custom), by provider."""
        channels: dict[str, dict[str, object]] = {}
        self.defaults = {}
        if not isinstance(alerting, dict):
            return channels
        builders: dict[str, Callable[[dict[str, object], str], dict[str, object] | None]] = {
            "slack": self._slack,
            "email": self._email,
            "custom": self._custom,
        }
        for provider, settings in alerting.items():
            where = f"alerting.{provider}"
            if not isinstance(settings, dict):
                self.note(where, "not converted: not a mapping")
                continue
            if isinstance(settings.get("default-alert"), dict):
                self.defaults[str(provider)] = settings["default-alert"]
            build = builders.get(str(provider))
            if build is None:
                self.note(
                    where,
                    "not converted: opsmon has no such channel (slack, email, webhook, "
                    "alertmanager); endpoint alerts of this type are dropped",
                )
                continue
            channel = build(settings, where)
            if channel is None:
                continue
            if settings.get("overrides"):
                self.note(
                    where,
                    "overrides (per group) not carried over: add a channel and a route per group",
                )
            channels[str(provider)] = channel
        self.mapped = set(channels)
        return channels

    def _slack(self, settings: dict[str, object], where: str) -> dict[str, object] | None:
        if not settings.get("webhook-url"):
            self.note(where, "not converted: webhook-url is missing")
            return None
        if settings.get("title"):
            self.note(where, "title not carried over: opsmon's Slack message has its own layout")
        url = self.secret(settings["webhook-url"], "SLACK_WEBHOOK_URL", f"{where}.webhook-url")
        return {"name": "slack", "type": "slack", "webhook_url": url}

    def _email(self, settings: dict[str, object], where: str) -> dict[str, object] | None:
        missing = [k for k in ("from", "host", "port", "to") if not settings.get(k)]
        if missing:
            self.note(where, f"not converted: {', '.join(missing)} missing")
            return None
        port = _int(settings["port"])
        smtp: dict[str, object] = {"host": str(settings["host"]), "port": port}
        if port == 465:
            smtp["tls"] = True
        elif port == 587:
            smtp["starttls"] = True
        else:
            self.note(
                where,
                f"port {port}: no TLS set (opsmon uses STARTTLS only when told, `starttls: true`)",
            )
        password = settings.get("password")
        if password:
            smtp["username"] = str(settings.get("username") or settings["from"])
            smtp["password"] = self.secret(password, "SMTP_PASSWORD", f"{where}.password")
        client = settings.get("client")
        if isinstance(client, dict) and client.get("insecure"):
            smtp["verify_tls"] = False
        to = [a.strip() for a in str(settings["to"]).split(",") if a.strip()]
        return {
            "name": "email",
            "type": "email",
            "smtp": smtp,
            "from": str(settings["from"]),
            "to": to,
        }

    def _custom(self, settings: dict[str, object], where: str) -> dict[str, object] | None:
        if not settings.get("url"):
            self.note(where, "not converted: url is missing")
            return None
        channel: dict[str, object] = {
            "name": "custom",
            "type": "webhook",
            "url": self.secret(settings["url"], "CUSTOM_WEBHOOK_URL", f"{where}.url"),
        }
        headers = settings.get("headers")
        if isinstance(headers, dict) and headers:
            channel["headers"] = {
                str(k): self.secret(v, _env_name("custom", str(k)), f"{where}.headers.{k}")
                for k, v in headers.items()
            }
        method = str(settings.get("method") or "GET").upper()
        if method != "POST":
            self.note(where, f"method {method} not carried over: opsmon's webhook always POSTs")
        if settings.get("body") or settings.get("placeholders"):
            self.note(
                where,
                "body template not carried over: opsmon posts its own JSON alert payload "
                "(docs/alerting.md); point the receiver at that shape",
            )
        return channel

    # --- maintenance -----------------------------------------------------------------------

    def maintenance(
        self, window: object, where: str, name: str, check: str | None
    ) -> dict[str, object] | None:
        """A Gatus maintenance window as an opsmon recurring window (None with a note if not)."""
        if not isinstance(window, dict):
            self.note(where, "not converted: not a mapping")
            return None
        if window.get("enabled") is False:
            self.note(where, "not converted: disabled in Gatus (enabled: false)")
            return None
        start = _hhmm(window.get("start"))
        duration = _duration(window.get("duration"))
        if start is None or duration is None:
            self.note(where, "not converted: start (HH:MM) and duration are required")
            return None
        out: dict[str, object] = {"name": name}
        if check is not None:
            out["match"] = {"check": check}
        every = window.get("every") or []
        days = [_WEEKDAYS.get(str(day).strip().lower()) for day in every]
        if None in days:
            self.note(where, f"not converted: unknown day in every: {every}")
            return None
        if days:
            out["weekdays"] = days
        out["start"] = start
        out["duration"] = duration
        out["timezone"] = str(window.get("timezone") or "UTC")
        out["comment"] = "imported from Gatus"
        return out


def _condition_reason(text: str, exc: ConditionSyntaxError) -> str:
    upper = text.upper()
    if "[DOMAIN_EXPIRATION]" in upper:
        return "opsmon does not look up domain expiry (WHOIS/RDAP)"
    if "[DNS_RCODE]" in upper:
        return "[DNS_RCODE] exists only on DNS endpoints"
    if "[CONTEXT]" in upper:
        return "[CONTEXT] exists only in suites"
    return str(exc)


def _routes(
    alerts: Mapping[str, list[str]],
    channels: Mapping[str, dict[str, object]],
    converter: _Converter,
) -> tuple[list[dict[str, object]], list[str]]:
    """Routes sending each check's alerts to its channels; the checks that had no alert."""
    by_channels: dict[tuple[str, ...], list[str]] = {}
    silent: list[str] = []
    for check, types in alerts.items():
        names = tuple(sorted({str(channels[t]["name"]) for t in types if t in channels}))
        for kind in sorted(set(types) - set(channels)):
            converter.note(f"check {check}", f"{kind} alert dropped: no {kind} channel")
        if names:
            by_channels.setdefault(names, []).append(check)
        else:
            silent.append(check)
    routes: list[dict[str, object]] = [
        {"match": {"check": "|".join(checks)}, "channels": list(names)}
        for names, checks in by_channels.items()
    ]
    return routes, silent


def convert(gatus: Mapping[str, object], http_placeholders: PlaceholderTable) -> Conversion:
    """The opsmon config for a parsed Gatus config, and a note for everything not carried."""
    converter = _Converter(http_placeholders)
    document = {key: _env_references(value) for key, value in gatus.items()}
    for key in document:
        if key in TOP_LEVEL_REASONS:
            converter.note(str(key), f"not carried over: {TOP_LEVEL_REASONS[key]}")
        elif key not in ("endpoints", "alerting", "maintenance"):
            converter.note(str(key), "not carried over: not a Gatus key opsmon knows")
    channels = converter.providers(document.get("alerting"))
    checks, alerts = converter.endpoints(document.get("endpoints"))
    config: dict[str, object] = {"checks": checks}
    windows: list[dict[str, object]] = []
    if "maintenance" in document:
        window = converter.maintenance(
            document["maintenance"], "maintenance", "gatus-maintenance", None
        )
        if window is not None:
            windows.append(window)
    for index, endpoint in enumerate(cast("list[object]", document.get("endpoints") or [])):
        if not isinstance(endpoint, dict) or not endpoint.get("maintenance-windows"):
            continue
        check = converter.check_of.get(index)
        if check is None:
            continue  # the endpoint itself was not converted, and said so
        for position, window in enumerate(endpoint["maintenance-windows"]):
            where = f"endpoints[{index}].maintenance-windows[{position}]"
            converted = converter.maintenance(window, where, f"{check}-{position + 1}", check)
            if converted is not None:
                windows.append(converted)
    if channels:
        for provider, channel in channels.items():
            # Gatus sends a resolved notice only when an alert asks (send-on-resolved: false).
            channel["send_resolved"] = converter.resolved.get(provider, False)
        routes, silent = _routes(alerts, channels, converter)
        alerting: dict[str, object] = {"channels": list(channels.values())}
        config["alerting"] = alerting
        if routes:
            alerting["routes"] = routes
        if silent:
            # Gatus alerts only for endpoints with `alerts`; opsmon would page for every check.
            windows.append(
                {
                    "name": "gatus-endpoints-without-alerts",
                    "match": {"check": "|".join(silent)},
                    "start": "00:00",
                    "duration": "24h",
                    "comment": "these endpoints had no alerts in Gatus",
                }
            )
            converter.note(
                "alerts",
                f"{len(silent)} check(s) had no alerts in Gatus; a maintenance window "
                "`gatus-endpoints-without-alerts` keeps them quiet (delete it to be paged)",
            )
        reminders = converter.reminders
        converter.note(
            "alerts",
            "opsmon repeats a firing alert every alerting.repeat_interval (default 4h)"
            + (
                f"; Gatus reminders ({', '.join(sorted(reminders))}) are not carried"
                if reminders
                else "; Gatus sent no reminders (no minimum-reminder-interval)"
            ),
        )
    elif any(alerts.values()):
        converter.note(
            "alerts", "endpoint alerts not carried over: no alerting provider opsmon has"
        )
    if windows:
        config["maintenance"] = windows
    converter.result.config = config
    for variable, where in converter.result.variables.items():
        converter.note(where, f"secret not copied: set ${{{variable}}} in the environment")
    return converter.result


def render(conversion: Conversion, source: str) -> str:
    """The opsmon config as YAML, with a header naming the source and the variables to set."""
    lines = [f"# Converted from the Gatus config {source} by `opsmon import gatus`."]
    if conversion.variables:
        lines.append("# Set these environment variables (secrets were not copied):")
        lines += [f"#   {name}: was {where}" for name, where in conversion.variables.items()]
    body = yaml.safe_dump(conversion.config, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(lines) + "\n" + body


def _placeholder_environment(text: str) -> dict[str, str]:
    """Stand-in values for every ${VAR} in `text`, to validate the shape of the output: a URL
    where the variable starts a value (`url: ${X}/health`), else a plain word."""
    names = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    leading = set(re.findall(r"(?:^|[:\-]\s|\s['\"])\$\{([A-Za-z_][A-Za-z0-9_]*)", text, re.M))
    return {
        name: "https://example.invalid" if name in leading or "URL" in name else f"stand-in-{name}"
        for name in names
    }


def _validation_problems(text: str) -> list[str]:
    """What opsmon's own loader says about the converted config (heavy imports: only here)."""
    import tempfile

    from monitor.config import ConfigError, load_config

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "opsmon.yml"
        path.write_text(text, encoding="utf-8")
        try:
            load_config(path, _placeholder_environment(text))
        except ConfigError as exc:
            return [str(p).replace(str(path), "output") for p in exc.problems]
    return []


def cmd_import_gatus(args: argparse.Namespace) -> int:
    """`opsmon import gatus GATUS_CONFIG [-o FILE]`."""
    from monitor.checks.http import PLACEHOLDERS

    source = Path(args.gatus_config)
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"{source}: cannot read: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        print(f"{source}: not a Gatus config: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not isinstance(document, dict):
        print(f"{source}: not a Gatus config: the top level must be a mapping", file=sys.stderr)
        return EXIT_USAGE
    conversion = convert(document, PLACEHOLDERS)
    text = render(conversion, str(source))
    for note in conversion.notes:
        print(f"{source}: {note}", file=sys.stderr)
    problems = _validation_problems(text)
    for problem in problems:
        print(f"converted config is invalid: {problem}", file=sys.stderr)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    count = len(cast("list[object]", conversion.config["checks"]))
    print(
        f"{source}: {count} check{'s' if count != 1 else ''} converted, "
        f"{len(conversion.notes)} note{'s' if len(conversion.notes) != 1 else ''}",
        file=sys.stderr,
    )
    return EXIT_INVALID_OUTPUT if problems else EXIT_OK


def add_import_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    with_config: Callable[[argparse.ArgumentParser], None],
) -> None:
    """`opsmon import gatus`: registered like the other command groups (imports stay lazy)."""
    del with_config  # the import reads a Gatus file, not opsmon's config
    parser = commands.add_parser("import", help="convert another monitor's config to opsmon's")
    kinds = parser.add_subparsers(dest="import_command", required=True, metavar="SOURCE")
    gatus = kinds.add_parser(
        "gatus",
        help="convert a Gatus config.yaml",
        description="Convert a Gatus config.yaml; prints a line for everything not carried over.",
    )
    gatus.add_argument("gatus_config", metavar="GATUS_CONFIG", help="the Gatus config file")
    gatus.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    gatus.set_defaults(func=cmd_import_gatus)
