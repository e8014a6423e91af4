"""The OpenAPI 3.1 document of /api/v1/ (served at /api/v1/openapi.json), built from ROUTES.

ROUTES is the one list of the API's operations: the server checks every request against the
scope listed here, and a test checks that every served route is documented and vice versa.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.api.config import Scope

PREFIX = "/api/v1"


@dataclass(frozen=True)
class Operation:
    """One method on one route template, the scope it needs (None: no token needed)."""

    method: str
    path: str  # template under PREFIX, e.g. /incidents/{id}/ack
    scope: Scope | None
    summary: str
    ok: int = 200
    parameters: tuple[dict[str, object], ...] = ()
    body: dict[str, object] | None = None
    response: dict[str, object] = field(default_factory=lambda: {"type": "object"})
    media_type: str = "application/json"
    errors: tuple[int, ...] = ()


def _query(name: str, schema: dict[str, object], description: str) -> dict[str, object]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path(name: str, description: str) -> dict[str, object]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


_UPTIME = {
    "type": "object",
    "description": "Share of healthy runs (0..1, null without runs): 24h from hour rows, "
    "7d/30d/90d from UTC day rows including today",
    "properties": {k: {"type": ["number", "null"]} for k in ("24h", "7d", "30d", "90d")},
}
_CHECK = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "type": {"type": "string"},
        "service": {"type": ["string", "null"]},
        "state": {"enum": ["healthy", "unhealthy", "unknown"]},
        "since": {"type": ["string", "null"], "format": "date-time"},
        "last_error": {"type": ["string", "null"]},
        "uptime": {"$ref": "#/components/schemas/Uptime"},
    },
}
_INCIDENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "status": {"enum": ["firing", "resolved"]},
        "alertname": {"type": "string"},
        "severity": {"type": "string"},
        "check": {"type": ["string", "null"]},
        "service": {"type": ["string", "null"]},
        "summary": {"type": "string", "description": "the diagnosis, with the root cause"},
        "description": {"type": "string"},
        "runbook_url": {"type": "string"},
        "started_at": {"type": "string", "format": "date-time"},
        "ended_at": {"type": ["string", "null"], "format": "date-time"},
        "acked_by": {"type": ["string", "null"]},
        "acked_at": {"type": ["string", "null"], "format": "date-time"},
        "rolled_back": {"type": "boolean"},
    },
}
_SILENCE = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "state": {"enum": ["pending", "active", "expired", "scheduled"]},
        "matchers": {"type": "object", "additionalProperties": {"type": "string"}},
        "starts_at": {"type": ["string", "null"], "format": "date-time"},
        "ends_at": {"type": ["string", "null"], "format": "date-time"},
        "origin": {"enum": ["cli", "config", "maintenance", "api"]},
        "created_by": {"type": "string"},
        "comment": {"type": "string"},
    },
}
_NEW_SILENCE = {
    "type": "object",
    "required": ["matchers", "comment"],
    "additionalProperties": False,
    "properties": {
        "matchers": {
            "type": "object",
            "description": "label -> value (a|b matches either); labels: alertname, severity,"
            " service, check, channel",
            "additionalProperties": {"type": "string"},
            "minProperties": 1,
        },
        "starts_at": {"type": "string", "format": "date-time", "description": "default: now"},
        "ends_at": {"type": "string", "format": "date-time"},
        "duration": {"type": "string", "description": "e.g. 30m, 2h (default 1h; or ends_at)"},
        "comment": {"type": "string", "minLength": 1},
    },
}
_ROLLUP = {
    "type": "object",
    "properties": {
        "start": {"type": "string", "format": "date-time"},
        "total": {"type": "integer"},
        "ok": {"type": "integer"},
        "unknown": {"type": "integer"},
        "uptime": {"type": ["number", "null"]},
        "p50_ms": {"type": ["number", "null"]},
        "p95_ms": {"type": ["number", "null"]},
    },
}
_SVG: dict[str, object] = {"type": "string", "description": "image/svg+xml"}

ROUTES: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/status",
        Scope.READ,
        "Every check with its state and uptime",
        response={
            "type": "object",
            "properties": {
                "now": {"type": "string", "format": "date-time"},
                "checks": {"type": "array", "items": {"$ref": "#/components/schemas/Check"}},
            },
        },
    ),
    Operation(
        "GET",
        "/checks/{name}/history",
        Scope.READ,
        "A check's hour or day rollups, with response time percentiles (within 9.1%)",
        parameters=(
            _path("name", "check name"),
            _query("period", {"enum": ["day", "hour"], "default": "day"}, "row length"),
            _query(
                "days",
                {"type": "integer", "minimum": 1, "maximum": 90, "default": 90},
                "how far back (day rows)",
            ),
        ),
        response={
            "type": "object",
            "properties": {
                "check": {"type": "string"},
                "period": {"enum": ["day", "hour"]},
                "uptime": {"$ref": "#/components/schemas/Uptime"},
                "percentile_error": {"type": "number"},
                "rows": {"type": "array", "items": {"$ref": "#/components/schemas/Rollup"}},
            },
        },
        errors=(404, 422),
    ),
    Operation(
        "GET",
        "/incidents",
        Scope.READ,
        "Incidents, newest first, a page at a time",
        parameters=(
            _query(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                "page size",
            ),
            _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
            _query("status", {"enum": ["firing", "resolved"]}, "only incidents in this status"),
        ),
        response={
            "type": "object",
            "properties": {
                "incidents": {"type": "array", "items": {"$ref": "#/components/schemas/Incident"}},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
        errors=(422,),
    ),
    Operation(
        "POST",
        "/incidents/{id}/ack",
        Scope.ACK,
        "Acknowledge a firing incident: no more reminders; the page and the next"
        " notification show who acknowledged it",
        parameters=(_path("id", "incident id"),),
        body={
            "type": "object",
            "additionalProperties": False,
            "properties": {"comment": {"type": "string"}},
        },
        response={"$ref": "#/components/schemas/Incident"},
        errors=(404, 409, 422),
    ),
    Operation(
        "GET",
        "/silences",
        Scope.READ,
        "Active and pending silences (stored, config and maintenance windows)",
        parameters=(_query("all", {"type": "boolean", "default": False}, "include expired ones"),),
        response={
            "type": "object",
            "properties": {
                "silences": {"type": "array", "items": {"$ref": "#/components/schemas/Silence"}}
            },
        },
    ),
    Operation(
        "POST",
        "/silences",
        Scope.SILENCE,
        "Add a silence (the same store as `opsmon silence add`)",
        ok=201,
        body={"$ref": "#/components/schemas/NewSilence"},
        response={"$ref": "#/components/schemas/Silence"},
        errors=(422,),
    ),
    Operation(
        "DELETE",
        "/silences/{id}",
        Scope.SILENCE,
        "Expire a stored silence now (like `opsmon silence expire`)",
        parameters=(_path("id", "silence id"),),
        response={"$ref": "#/components/schemas/Silence"},
        errors=(404, 422),
    ),
    Operation(
        "GET",
        "/badges/{check}/health.svg",
        None,
        "A badge with the check's state (token rules of the status page)",
        parameters=(_path("check", "check name"),),
        response=_SVG,
        media_type="image/svg+xml",
        errors=(404,),
    ),
    Operation(
        "GET",
        "/badges/{check}/uptime/{window}.svg",
        None,
        "A badge with the check's uptime over 7d, 30d or 90d",
        parameters=(_path("check", "check name"), _path("window", "7d, 30d or 90d")),
        response=_SVG,
        media_type="image/svg+xml",
        errors=(404, 422),
    ),
    Operation("GET", "/openapi.json", None, "This document"),
)

_ERROR_TEXT = {
    401: "missing or invalid bearer token",
    403: "the token lacks the scope",
    404: "not found",
    409: "conflict with the current state",
    422: "invalid input (the message says which field and why)",
}


def _operation(op: Operation) -> dict[str, object]:
    responses: dict[str, object] = {
        str(op.ok): {"description": "ok", "content": {op.media_type: {"schema": op.response}}}
    }
    codes = list(op.errors)
    if op.scope is not None:
        codes = [401, 403, *codes]
    for code in codes:
        responses[str(code)] = {
            "description": _ERROR_TEXT[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    doc: dict[str, object] = {
        "summary": op.summary,
        "operationId": (
            op.method.lower()
            + op.path.replace("/", "_").replace("{", "").replace("}", "").replace(".", "_")
        ),
        "responses": responses,
    }
    if op.scope is None:
        doc["security"] = []
    else:
        doc["security"] = [{"bearer": []}]
        doc["x-opsmon-scope"] = op.scope.value
    if op.parameters:
        doc["parameters"] = list(op.parameters)
    if op.body is not None:
        doc["requestBody"] = {
            "required": op.method == "POST" and op.path == "/silences",
            "content": {"application/json": {"schema": op.body}},
        }
    return doc


def openapi_document(version: str) -> dict[str, object]:
    """The OpenAPI document for this opsmon version."""
    paths: dict[str, dict[str, object]] = {}
    for op in ROUTES:
        paths.setdefault(PREFIX + op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "opsmon API",
            "version": version,
            "description": "Bearer tokens come from the `api.tokens` config section; each has"
            " scopes read, silence, ack or admin (admin may do everything).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}, "detail": {"type": "array"}},
                },
                "Uptime": _UPTIME,
                "Check": _CHECK,
                "Incident": _INCIDENT,
                "Silence": _SILENCE,
                "NewSilence": _NEW_SILENCE,
                "Rollup": _ROLLUP,
            },
        },
    }
