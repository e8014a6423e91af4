"""The /api/v1/ routes: status, history, incidents (paged), acks, silences, the OpenAPI document.

Every route is listed in `monitor.api.openapi.ROUTES` with the scope it needs; the handler
checks the request's bearer token against that scope before anything else (401 without a
valid token, 403 without the scope), and answers 422 with the field and the reason for bad
input. Writes are logged with the token's name, never its value.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from monitor.alerting.config import check_label_names
from monitor.alerting.model import Silence
from monitor.alerting.silences import new_silence_id
from monitor.api.auth import Outcome, Principal, TokenTable, authorize
from monitor.api.openapi import PREFIX, ROUTES, Operation, openapi_document
from monitor.core.durations import parse_duration
from monitor.logs import get_logger
from monitor.status.data import Cursor, StatusData
from monitor.status.rollup import PERCENTILE_ERROR, Period, Windows, percentile, windows
from monitor.status.view import IncidentRecord

Handler = Callable[[Request, Principal | None], Awaitable[Response]]
MAX_PAGE = 200
DEFAULT_PAGE = 50


class SilenceSource(Protocol):
    """The silences `opsmon silence` manages (stored), plus the config's (listed only)."""

    def listing(self, now: datetime, show_all: bool) -> list[dict[str, object]]:
        """Rows as `opsmon silence list --json` prints them."""
        ...

    def add(self, silence: Silence) -> None:
        """Store a new silence."""
        ...

    def expire(self, silence_id: str, now: datetime) -> Silence | None:
        """End a stored silence now; None if no active or pending silence has that id."""
        ...


class NewSilence(BaseModel):
    """The body of `POST /api/v1/silences`."""

    model_config = ConfigDict(extra="forbid")

    matchers: dict[str, str] = Field(min_length=1)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    duration: str | None = None
    comment: str = Field(min_length=1, max_length=500)

    @field_validator("matchers")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        check_label_names(value)
        empty = [k for k, v in value.items() if not v.strip()]
        if empty:
            raise ValueError(f"matcher {empty[0]!r} needs a value (a|b matches either)")
        return value

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _zoned(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-12-01T02:00:00Z")
        return value.astimezone(UTC) if value is not None else None

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) <= 0:
            raise ValueError("must be longer than 0s")
        return value

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """Start and end; ValueError when they make no sense."""
        if self.ends_at is not None and self.duration is not None:
            raise ValueError("give ends_at or duration, not both")
        starts = self.starts_at or now
        if self.ends_at is not None:
            ends = self.ends_at
        else:
            ends = starts + timedelta(seconds=parse_duration(self.duration or "1h"))
        if ends <= max(starts, now):
            raise ValueError("the silence would end before it starts (or in the past)")
        return starts, ends


class AckBody(BaseModel):
    """The (optional) body of `POST /api/v1/incidents/<id>/ack`."""

    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=500)


def _time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def incident_json(incident: IncidentRecord) -> dict[str, object]:
    """An incident as the API shows it."""
    return {
        "id": incident.id,
        "status": "firing" if incident.ongoing else "resolved",
        "alertname": incident.alertname,
        "severity": incident.severity,
        "check": incident.check,
        "service": incident.service,
        "summary": incident.summary,
        "description": incident.description,
        "runbook_url": incident.runbook_url,
        "started_at": _time(incident.started_at),
        "ended_at": _time(incident.ended_at),
        "acked_by": incident.acked_by,
        "acked_at": _time(incident.acked_at),
        "rolled_back": incident.rolled_back,
    }


def uptime_json(uptime: Windows) -> dict[str, float | None]:
    """Uptime windows as the API shows them."""
    return {"24h": uptime.day, "7d": uptime.week, "30d": uptime.month, "90d": uptime.quarter}


def encode_cursor(incident: IncidentRecord) -> str:
    """An opaque cursor for the page after `incident`."""
    raw = json.dumps([incident.started_at.timestamp(), incident.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """The inverse of `encode_cursor`; ValueError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        started, incident_id = json.loads(raw)
        return Cursor(float(started), str(incident_id))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise ValueError("cursor is not a next_cursor this API gave out") from None


def _error(status: int, message: str, detail: Sequence[Mapping[str, str]] = ()) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if detail:
        body["detail"] = list(detail)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _invalid(exc: ValidationError) -> JSONResponse:
    detail = [
        {
            "field": ".".join(str(p) for p in e["loc"]) or "body",
            "message": e["msg"].removeprefix("Value error, "),
        }
        for e in exc.errors(include_url=False, include_input=False)
    ]
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in detail)
    return _error(422, f"invalid input: {summary}", detail)


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {text!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, not {value}")
    return value


async def _json_body(request: Request, required: bool) -> object:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise ValueError("a JSON body is required")
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise ValueError("the body is not valid JSON") from None


class ApiRoutes:
    """The handlers of /api/v1/, each behind the scope ROUTES gives it."""

    def __init__(
        self,
        data: StatusData,
        silences: SilenceSource,
        tokens: Callable[[], TokenTable],
        version: str,
        on_ack: Callable[[], None] = lambda: None,
    ) -> None:
        self._data = data
        self._silences = silences
        self._tokens = tokens
        self._version = version
        self._on_ack = on_ack
        self._log = get_logger("api")
        self._handlers: dict[tuple[str, str], Handler] = {
            ("GET", "/status"): self.status,
            ("GET", "/checks/{name}/history"): self.history,
            ("GET", "/incidents"): self.incidents,
            ("POST", "/incidents/{id}/ack"): self.ack,
            ("GET", "/silences"): self.list_silences,
            ("POST", "/silences"): self.add_silence,
            ("DELETE", "/silences/{id}"): self.expire_silence,
            ("GET", "/openapi.json"): self.openapi,
        }

    def routes(self) -> list[BaseRoute]:
        """One starlette route per path, its methods from ROUTES (badges are served by the
        status pages)."""
        by_path: dict[str, list[Operation]] = {}
        for op in ROUTES:
            if (op.method, op.path) in self._handlers:
                by_path.setdefault(op.path, []).append(op)
        return [
            Route(PREFIX + path, self._endpoint(ops), methods=[op.method for op in ops])
            for path, ops in by_path.items()
        ]

    def _endpoint(self, ops: list[Operation]) -> Callable[[Request], Awaitable[Response]]:
        by_method = {op.method: op for op in ops}

        async def endpoint(request: Request) -> Response:
            op = by_method[request.method]
            principal = None
            if op.scope is not None:
                decision = authorize(request.headers.get("authorization"), self._tokens(), op.scope)
                if decision.outcome is not Outcome.ALLOWED:
                    return _error(decision.outcome.value, decision.message)
                principal = decision.principal
            try:
                return await self._handlers[(op.method, op.path)](request, principal)
            except ValidationError as exc:
                return _invalid(exc)
            except ValueError as exc:
                return _error(422, f"invalid input: {exc}")

        return endpoint

    # --- handlers --------------------------------------------------------------------------
    async def status(self, request: Request, who: Principal | None) -> Response:
        """Every check with its state and uptime."""
        now = self._data.clock.now()
        overview = self._data.overview(now.timestamp())
        none = Windows(None, None, None, None)
        checks = []
        for info in sorted(self._data.checks.checks(), key=lambda c: c.name):
            known = overview.get(info.name)
            uptime = known.uptime if known is not None else none
            checks.append(
                {
                    "name": info.name,
                    "type": info.type,
                    "service": info.service,
                    "state": info.state,
                    "since": _time(info.since),
                    "last_error": info.last_error,
                    "uptime": uptime_json(uptime),
                }
            )
        return JSONResponse({"now": _time(now), "checks": checks})

    async def history(self, request: Request, who: Principal | None) -> Response:
        """A check's rollup rows with percentiles."""
        name: str = request.path_params["name"]
        period_text = request.query_params.get("period", "day")
        if period_text not in ("day", "hour"):
            raise ValueError(f"period must be day or hour, not {period_text!r}")
        days_back = _int_param(request, "days", 90, 1, 90)
        now = self._data.clock.now().timestamp()
        if self._data.check(name) is None and name not in self._data.store.checks():
            return _error(404, f"no check called {name!r}")
        days, hours = self._data.history(now, name, histograms=True)
        period = Period(period_text)
        if period is Period.DAY:
            since = now - (now % 86400) - (days_back - 1) * 86400
            rows = [r for r in days.get(name, []) if r.start >= since]
        else:
            rows = hours.get(name, [])
        return JSONResponse(
            {
                "check": name,
                "period": period.value,
                "uptime": uptime_json(windows(hours.get(name, []), days.get(name, []), now)),
                "percentile_error": round(PERCENTILE_ERROR, 4),
                "rows": [
                    {
                        "start": _time(datetime.fromtimestamp(r.start, UTC)),
                        "total": r.total,
                        "ok": r.ok,
                        "unknown": r.unknown,
                        "uptime": r.ok / r.judged if r.judged else None,
                        "p50_ms": _round(percentile(r.histogram, 0.5)),
                        "p95_ms": _round(percentile(r.histogram, 0.95)),
                    }
                    for r in rows
                ],
            }
        )

    async def incidents(self, request: Request, who: Principal | None) -> Response:
        """A page of incidents, newest first."""
        limit = _int_param(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
        status = request.query_params.get("status")
        if status not in (None, "firing", "resolved"):
            raise ValueError(f"status must be firing or resolved, not {status!r}")
        cursor_text = request.query_params.get("cursor")
        cursor = decode_cursor(cursor_text) if cursor_text else None
        found = self._data.incidents.page(limit + 1, cursor, status)
        page, more = found[:limit], len(found) > limit
        return JSONResponse(
            {
                "incidents": [incident_json(i) for i in page],
                "next_cursor": encode_cursor(page[-1]) if more and page else None,
            }
        )

    async def ack(self, request: Request, who: Principal | None) -> Response:
        """Acknowledge a firing incident."""
        assert who is not None
        AckBody.model_validate(await _json_body(request, required=False))
        incident_id: str = request.path_params["id"]
        existing = self._data.incidents.get(incident_id)
        if existing is None:
            return _error(404, f"no incident {incident_id!r}")
        if not existing.ongoing:
            return _error(409, f"incident {incident_id!r} is resolved: nothing to acknowledge")
        if existing.acked_by:
            return JSONResponse(incident_json(existing))
        acked = self._data.incidents.acknowledge(incident_id, who.name, self._data.clock.now())
        if acked is None:
            return _error(409, f"incident {incident_id!r} is resolved: nothing to acknowledge")
        self._log.info("incident_acknowledged", incident=incident_id, by=who.name)
        self._on_ack()
        return JSONResponse(incident_json(acked))

    async def list_silences(self, request: Request, who: Principal | None) -> Response:
        """Silences as `opsmon silence list --json` shows them."""
        flag = request.query_params.get("all", "false").lower()
        if flag not in ("true", "false", "1", "0"):
            raise ValueError(f"all must be true or false, not {flag!r}")
        rows = self._silences.listing(self._data.clock.now(), flag in ("true", "1"))
        return JSONResponse({"silences": rows})

    async def add_silence(self, request: Request, who: Principal | None) -> Response:
        """Store a new silence, authored by the token's name."""
        assert who is not None
        body = NewSilence.model_validate(await _json_body(request, required=True))
        now = self._data.clock.now()
        starts, ends = body.window(now)
        silence = Silence(
            id=new_silence_id(),
            matchers=body.matchers,
            starts_at=starts,
            ends_at=ends,
            comment=body.comment,
            created_by=who.name,
            created_at=now,
        )
        self._silences.add(silence)
        self._log.info("silence_added", silence=silence.id, by=who.name, matchers=body.matchers)
        return JSONResponse(silence_json(silence, now), status_code=201)

    async def expire_silence(self, request: Request, who: Principal | None) -> Response:
        """End a stored silence now."""
        assert who is not None
        silence_id: str = request.path_params["id"]
        if silence_id.startswith(("config-", "maintenance-")):
            raise ValueError(
                f"{silence_id} is defined in the config file; remove it there and reload"
            )
        now = self._data.clock.now()
        expired = self._silences.expire(silence_id, now)
        if expired is None:
            return _error(404, f"no active or pending silence {silence_id!r}")
        self._log.info("silence_expired", silence=silence_id, by=who.name)
        return JSONResponse(silence_json(expired, now))

    async def openapi(self, request: Request, who: Principal | None) -> Response:
        """The OpenAPI document."""
        return JSONResponse(openapi_document(self._version))


def silence_json(silence: Silence, now: datetime) -> dict[str, object]:
    """A stored silence as the API shows it (the same fields as `silence list --json`)."""
    return {
        "id": silence.id,
        "state": silence.state(now),
        "matchers": dict(silence.matchers),
        "starts_at": _time(silence.starts_at),
        "ends_at": _time(silence.ends_at),
        "origin": silence.origin,
        "created_by": silence.created_by,
        "comment": silence.comment,
    }


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None
