"""The result of one run of one check: plain data, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from monitor.conditions import ConditionResult


class Outcome(StrEnum):
    """How one run ended, as a person reads it."""

    OK = "ok"  # the target is healthy
    FAILED = "failed"  # the target answered wrong, or not at all
    UNKNOWN = "unknown"  # the target cannot be observed (e.g. the Docker engine is down)


class FailureKind(StrEnum):
    """Why a run failed, bounded: the `kind` label of the failure metrics, `kind` in
    `/api/status` and `opsmon check --json`. Values are the strings they always were (a
    StrEnum compares equal to its value), so adding a member is the only way to add a kind."""

    OK = "ok"  # not a failure: the kind of a passing result
    # Every check type.
    CONDITION = "condition"  # a condition (or the default 2xx / expect) did not hold
    TIMEOUT = "timeout"
    ERROR = "error"  # the check itself crashed: a bug in opsmon, not the target
    CONFIG = "config"  # the spec cannot be used (e.g. a URL or DSN the library refuses)
    # Network (monitor/net/errors.py) and HTTP.
    DNS = "dns"
    CONNECT = "connect"
    CONNECTION_REFUSED = "connection_refused"
    CONNECTION_RESET = "connection_reset"
    TLS = "tls"
    PROTOCOL = "protocol"
    REDIRECTS = "redirects"
    NETWORK = "network"
    BODY_TOO_LARGE = "body_too_large"
    # Docker engine and containers.
    DOCKER_UNAVAILABLE = "docker_unavailable"
    DOCKER_EVENTS = "docker_events"
    MISSING = "missing"
    NOT_RUNNING = "not_running"
    PAUSED = "paused"
    EXITED = "exited"
    STOPPED = "stopped"
    OOM = "oom"
    CRASH_LOOP = "crash_loop"
    ENVIRONMENT = "environment"
    UNHEALTHY = "unhealthy"
    # PostgreSQL.
    HOST_NOT_FOUND = "host_not_found"
    AUTH_FAILED = "auth_failed"
    DATABASE_MISSING = "database_missing"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    SHUTTING_DOWN = "shutting_down"
    STARTING_UP = "starting_up"
    SSL_REQUIRED = "ssl_required"
    SSL_UNSUPPORTED = "ssl_unsupported"
    SSL_FAILED = "ssl_failed"
    CONNECTION_LOST = "connection_lost"
    CONNECT_FAILED = "connect_failed"
    QUERY_ERROR = "query_error"
    UNEXPECTED_RESULT = "unexpected_result"


@dataclass(frozen=True)
class CheckResult:
    """One run of one check. `reason` says, for a person, why it failed; `kind` is bounded."""

    ok: bool
    reason: str = ""
    kind: FailureKind = FailureKind.OK
    duration: float = 0.0
    facts: Mapping[str, Any] = field(default_factory=dict)
    failed_conditions: tuple[ConditionResult, ...] = ()
    connected: bool = False
    unknown: bool = False

    @classmethod
    def failure(cls, kind: FailureKind, reason: str, **extra: Any) -> CheckResult:
        """A failed run with a bounded `kind` and a readable `reason`."""
        return cls(ok=False, kind=kind, reason=reason, **extra)

    @property
    def outcome(self) -> Outcome:
        """OK, FAILED, or UNKNOWN when the target could not be observed at all."""
        if self.unknown:
            return Outcome.UNKNOWN
        return Outcome.OK if self.ok else Outcome.FAILED
