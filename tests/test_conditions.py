"""The condition language: placeholders, JSON paths, operators, functions, failure details, the
cases Gatus users rely on (ported from Gatus's condition_test.go / placeholder_test.go) and the
config-time checks against each check type's placeholders."""

from __future__ import annotations

import json
from typing import Any

import pytest

from monitor.checks import CHECK_TYPES
from monitor.conditions import (
    MAX_JSON_DEPTH,
    Condition,
    ConditionSyntaxError,
    Facts,
    check_placeholders,
    go_duration,
)

BODY = (
    '{"status": "ok", "services": {"database": "error", "mastra": "ok"},'
    ' "items": [{"id": 1}, {"id": 2}], "ready": true, "version": "1.4.2"}'
)
HOUR_MS = 3_600_000
JOHN = '{"name": "john.doe"}'
USER = '{"user": {"firstName": "john", "lastName": "doe"}}'
HTML = '<!DOCTYPE html><html lang="en"><head></head><body><div id="user">{}</div></body></html>'
ARTICLE = json.dumps(
    {"article": {"id": 123, "title": "Hello, world!", "tags": ["hello"]}}, indent=2
)


def check(text: str, **facts: Any) -> tuple[bool, str]:
    values = {"STATUS": 200, "BODY": BODY, "RESPONSE_TIME": 120.0} | facts
    result = Condition.parse(text).evaluate(Facts(values))
    return result.ok, result.detail


def evaluate(text: str, facts: dict[str, Any]) -> tuple[bool, str]:
    result = Condition.parse(text).evaluate(Facts(facts))
    return result.ok, result.detail


# (id, condition, facts, holds, detail when it fails). Most come from Gatus's own tests; where
# opsmon deliberately differs, the case says so (see docs/conditions.md, "Differences").
CASES: list[tuple[str, str, dict[str, Any], bool, str]] = [
    # [IP]
    ("ip", "[IP] == 127.0.0.1", {"IP": "127.0.0.1"}, True, ""),
    ("ip-failure", "[IP] == 127.0.0.1", {"IP": "10.0.0.1"}, False, "[IP] (10.0.0.1) == 127.0.0.1"),
    ("ip-lowercase", "[ip] == 127.0.0.1", {"IP": "127.0.0.1"}, True, ""),
    ("ip-mixed-case", "[Ip] != 10.0.0.1", {"IP": "127.0.0.1"}, True, ""),
    ("ip-any-v6", "[IP] == any(127.0.0.1, ::1)", {"IP": "::1"}, True, ""),
    ("pat-ip", "[IP] == pat(10.*)", {"IP": "10.0.0.0"}, True, ""),
    (
        "pat-ip-failure",
        "[IP] == pat(10.*)",
        {"IP": "255.255.255.255"},
        False,
        "[IP] (255.255.255.255) == pat(10.*)",
    ),
    # [STATUS]
    ("status", "[STATUS] == 200", {"STATUS": 200}, True, ""),
    ("status-failure", "[STATUS] == 200", {"STATUS": 500}, False, "[STATUS] (500) == 200"),
    ("status-lowercase", "[status] == 200", {"STATUS": 200}, True, ""),
    ("status-not-equal", "[STATUS] != 500", {"STATUS": 200}, True, ""),
    (
        "status-not-equal-failure",
        "[STATUS] != 500",
        {"STATUS": 500},
        False,
        "[STATUS] (500) != 500",
    ),
    ("status-less-than", "[STATUS] < 300", {"STATUS": 201}, True, ""),
    ("status-less-than-failure", "[STATUS] < 300", {"STATUS": 404}, False, "[STATUS] (404) < 300"),
    ("status-less-or-equal", "[STATUS] <= 299", {"STATUS": 299}, True, ""),
    (
        "status-less-or-equal-failure",
        "[STATUS] <= 299",
        {"STATUS": 301},
        False,
        "[STATUS] (301) <= 299",
    ),
    ("status-greater", "[STATUS] > 400", {"STATUS": 401}, True, ""),
    ("status-greater-failure", "[STATUS] > 400", {"STATUS": 400}, False, "[STATUS] (400) > 400"),
    ("status-greater-or-equal", "[STATUS] >= 500", {"STATUS": 503}, True, ""),
    ("status-hex-literal", "[STATUS] == 0xC8", {"STATUS": 200}, True, ""),
    ("status-reversed", "200 == [STATUS]", {"STATUS": 200}, True, ""),
    ("status-reversed-failure", "300 > [STATUS]", {"STATUS": 302}, False, "300 > [STATUS] (302)"),
    ("pat-status", "[STATUS] == pat(4*)", {"STATUS": 404}, True, ""),
    (
        "pat-status-failure",
        "[STATUS] == pat(4*)",
        {"STATUS": 200},
        False,
        "[STATUS] (200) == pat(4*)",
    ),
    ("pat-status-not", "[STATUS] != pat(5*)", {"STATUS": 200}, True, ""),
    ("pat-star", "[STATUS] == pat(*)", {"STATUS": 418}, True, ""),
    ("any-status-1", "[STATUS] == any(200, 429)", {"STATUS": 200}, True, ""),
    ("any-status-2", "[STATUS] == any(200, 429)", {"STATUS": 429}, True, ""),
    ("any-status-reverse", "any(200, 429) == [STATUS]", {"STATUS": 429}, True, ""),
    (
        "any-status-failure",
        "[STATUS] == any(200, 429)",
        {"STATUS": 404},
        False,
        "[STATUS] (404) == any(200, 429)",
    ),
    ("any-status-not", "[STATUS] != any(500, 503)", {"STATUS": 200}, True, ""),
    (
        "any-status-not-failure",
        "[STATUS] != any(500, 503)",
        {"STATUS": 503},
        False,
        "[STATUS] (503) != any(500, 503)",
    ),
    ("len-status", "len([STATUS]) == 3", {"STATUS": 200}, True, ""),
    ("has-status", "has([STATUS]) == true", {"STATUS": 200}, True, ""),
    # [RESPONSE_TIME]
    ("rt-less-than", "[RESPONSE_TIME] < 500", {"RESPONSE_TIME": 50}, True, ""),
    ("rt-less-than-duration", "[RESPONSE_TIME] < 1s", {"RESPONSE_TIME": 50}, True, ""),
    (
        "rt-less-than-duration-failure",
        "[RESPONSE_TIME] < 100ms",
        {"RESPONSE_TIME": 150},
        False,
        "[RESPONSE_TIME] (150) < 100ms",
    ),
    ("rt-greater-than", "[RESPONSE_TIME] > 500", {"RESPONSE_TIME": 750}, True, ""),
    ("rt-greater-than-duration", "[RESPONSE_TIME] > 1s", {"RESPONSE_TIME": 2000}, True, ""),
    ("rt-greater-or-equal-equal", "[RESPONSE_TIME] >= 500", {"RESPONSE_TIME": 500}, True, ""),
    (
        "rt-greater-or-equal-failure",
        "[RESPONSE_TIME] >= 500",
        {"RESPONSE_TIME": 499},
        False,
        "[RESPONSE_TIME] (499) >= 500",
    ),
    ("rt-less-or-equal-equal", "[RESPONSE_TIME] <= 500", {"RESPONSE_TIME": 500}, True, ""),
    ("rt-less-or-equal-less", "[RESPONSE_TIME] <= 500", {"RESPONSE_TIME": 25}, True, ""),
    (
        "rt-less-or-equal-failure",
        "[RESPONSE_TIME] <= 500",
        {"RESPONSE_TIME": 750},
        False,
        "[RESPONSE_TIME] (750) <= 500",
    ),
    ("rt-compound-duration", "[RESPONSE_TIME] < 1m30s", {"RESPONSE_TIME": 89_000}, True, ""),
    ("rt-fractional", "[RESPONSE_TIME] < 1.5s", {"RESPONSE_TIME": 1499.9}, True, ""),
    (
        "rt-fraction-shown",
        "[RESPONSE_TIME] < 100",
        {"RESPONSE_TIME": 120.5},
        False,
        "[RESPONSE_TIME] (120.5) < 100",
    ),
    # [BODY] as text
    ("body", "[BODY] == test", {"BODY": "test"}, True, ""),
    ("body-trailing-newline", "[BODY] == test", {"BODY": "test\n"}, True, ""),
    ("body-failure", "[BODY] == test", {"BODY": "nope"}, False, "[BODY] (nope) == test"),
    ("body-numerical-equal", "[BODY] == 123", {"BODY": "123"}, True, ""),
    ("body-numerical-less-than", "[BODY] < 124", {"BODY": "123"}, True, ""),
    ("body-numerical-greater-than", "[BODY] > 122", {"BODY": "123"}, True, ""),
    (
        "body-numerical-greater-than-failure",
        "[BODY] > 123",
        {"BODY": "100"},
        False,
        "[BODY] (100) > 123",
    ),
    ("body-quoted-literal", '[BODY] == "hello world"', {"BODY": "hello world"}, True, ""),
    ("pat-body-1", "[BODY] == pat(*john*)", {"BODY": JOHN}, True, ""),
    (
        "pat-body-html",
        '[BODY] == pat(*<div id="user">john.doe</div>*)',
        {"BODY": HTML.format("john.doe")},
        True,
        "",
    ),
    (
        "pat-body-html-failure",
        '[BODY] == pat(*<div id="user">john.doe</div>*)',
        {"BODY": HTML.format("jane.doe")},
        False,
        '[BODY] (<!DOCTYPE html><html lang="en"><head></head><body><div id="user">jane.doe</di...)'
        ' == pat(*<div id="user">john.doe</div>*)',
    ),
    (
        "pat-body-html-failure-alt",
        'pat(*<div id="user">john.doe</div>*) == [BODY]',
        {"BODY": HTML.format("jane.doe")},
        False,
        'pat(*<div id="user">john.doe</div>*) == [BODY] (<!DOCTYPE html><html lang="en"><head>'
        '</head><body><div id="user">jane.doe</di...)',
    ),
    ("has-body", "has([BODY]) == true", {"BODY": "x"}, True, ""),
    ("has-body-empty", "has([BODY]) == false", {"BODY": ""}, True, ""),
    # [BODY] JSON paths
    ("body-jsonpath", "[BODY].status == UP", {"BODY": '{"status":"UP"}'}, True, ""),
    (
        "body-jsonpath-failure",
        "[BODY].status == UP",
        {"BODY": '{"status":"DOWN"}'},
        False,
        "[BODY].status (DOWN) == UP",
    ),
    ("body-jsonpath-case-kept", "[body].Status == UP", {"BODY": '{"Status":"UP"}'}, True, ""),
    (
        "body-jsonpath-complex",
        "[BODY].data.name == john",
        {"BODY": '{"data": {"id": 1, "name": "john"}}'},
        True,
        "",
    ),
    (
        "body-jsonpath-complex-missing",
        "[BODY].data.name == john",
        {"BODY": '{"data": {"id": 1}}'},
        False,
        "[BODY].data.name (<missing>) == john",
    ),
    (
        "body-jsonpath-double-placeholder",
        "[BODY].user.firstName != [BODY].user.lastName",
        {"BODY": USER},
        True,
        "",
    ),
    (
        "body-jsonpath-double-placeholder-failure",
        "[BODY].user.firstName == [BODY].user.lastName",
        {"BODY": USER},
        False,
        "[BODY].user.firstName (john) == [BODY].user.lastName (doe)",
    ),
    (
        "body-jsonpath-equal-paths",
        "[BODY].age == [BODY].id",
        {"BODY": '{"age":1,"id":1}'},
        True,
        "",
    ),
    (
        "body-jsonpath-when-body-is-array",
        "[BODY][0].id == 1",
        {"BODY": '[{"id": 1}, {"id": 2}]'},
        True,
        "",
    ),
    (
        "body-jsonpath-null",
        "[BODY].data == OK",
        {"BODY": '{"data": null}'},
        False,
        "[BODY].data (null) == OK",
    ),
    ("body-jsonpath-null-equals-null", "[BODY].data == null", {"BODY": '{"data": null}'}, True, ""),
    (
        "body-jsonpath-array-with-null",
        "[BODY].items[0] == OK",
        {"BODY": '{"items": [null, null]}'},
        False,
        "[BODY].items[0] (null) == OK",
    ),
    (
        "body-jsonpath-body-is-null",
        "[BODY].data == OK",
        {"BODY": "null"},
        False,
        "[BODY].data (<missing>) == OK",
    ),
    (
        "body-jsonpath-array-expected-object-given",
        "[BODY][0].name == test",
        {"BODY": '{"statusCode": 500, "message": "Internal Server Error"}'},
        False,
        "[BODY][0].name (<missing>) == test",
    ),
    ("body-jsonpath-complex-int", "[BODY].data.id == 1", {"BODY": '{"data": {"id": 1}}'}, True, ""),
    (
        "body-jsonpath-complex-array-int",
        "[BODY].data[1].id == 2",
        {"BODY": '{"data": [{"id": 1}, {"id": 2}, {"id": 3}]}'},
        True,
        "",
    ),
    (
        "body-jsonpath-nested-array",
        "[BODY].m[1][0] == c",
        {"BODY": '{"m": [["a", "b"], ["c"]]}'},
        True,
        "",
    ),
    ("body-jsonpath-int-greater", "[BODY].data.id > 0", {"BODY": '{"data": {"id": 1}}'}, True, ""),
    (
        "body-jsonpath-int-greater-failure",
        "[BODY].data.id > 5",
        {"BODY": '{"data": {"id": 1}}'},
        False,
        "[BODY].data.id (1) > 5",
    ),
    ("body-jsonpath-int-less", "[BODY].data.id < 5", {"BODY": '{"data": {"id": 2}}'}, True, ""),
    (
        "body-jsonpath-int-less-failure",
        "[BODY].data.id < 5",
        {"BODY": '{"data": {"id": 10}}'},
        False,
        "[BODY].data.id (10) < 5",
    ),
    (
        "body-jsonpath-float-greater",
        "[BODY].balance > 100",
        {"BODY": '{"balance": "123.40000000000005"}'},
        True,
        "",
    ),
    (
        "body-jsonpath-float-fraction",
        "[BODY].ratio > 0",
        {"BODY": '{"ratio": 0.5}'},
        True,
        "",
    ),  # Gatus: int(0.5) > 0 fails
    ("body-jsonpath-float-equals-int", "[BODY].n == 1", {"BODY": '{"n": 1.0}'}, True, ""),
    ("body-jsonpath-bool", "[BODY].ready == true", {"BODY": '{"ready": true}'}, True, ""),
    (
        "body-jsonpath-bool-failure",
        "[BODY].ready == true",
        {"BODY": '{"ready": false}'},
        False,
        "[BODY].ready (false) == true",
    ),
    ("body-jsonpath-missing-not-equal", "[BODY].error != fatal", {"BODY": "{}"}, True, ""),
    (
        "body-jsonpath-missing-ordering",
        "[BODY].count < 5",
        {"BODY": "{}"},
        False,
        "[BODY].count (<missing>) < 5",
    ),
    (
        "body-jsonpath-object-shown",
        "[BODY].data == x",
        {"BODY": '{"data": {"b": 1, "a": 2}}'},
        False,
        '[BODY].data ({"a":2,"b":1}) == x',
    ),
    (
        "body-jsonpath-not-json",
        "[BODY].status == ok",
        {"BODY": "<html>502</html>"},
        False,
        "[BODY].status == ok: [BODY] is not JSON (Expecting value)",
    ),
    (
        "body-jsonpath-duration-literal",
        "[BODY].latency_ms < 1s",
        {"BODY": '{"latency_ms": 250}'},
        True,
        "",
    ),
    # numbers written in hex, octal, binary (in the body or the condition)
    ("hex-greater", "[BODY].data > 0", {"BODY": '{"data": "0x1"}'}, True, ""),
    ("hex-equal-1", "[BODY].data == 1", {"BODY": '{"data": "0x1"}'}, True, ""),
    ("hex-equals-hex", "[BODY].data == 0x1", {"BODY": '{"data": "0x1"}'}, True, ""),
    ("hex-equal-2", "[BODY].data == 2", {"BODY": '{"data": "0x2"}'}, True, ""),
    ("hex-equal-15", "[BODY].data == 15", {"BODY": '{"data": "0xF"}'}, True, ""),
    ("hex-mixed-case", "[BODY].data == 12648243", {"BODY": '{"data": "0xC0ff33"}'}, True, ""),
    ("hex-uppercase-literal", "[BODY].data == 0x1F", {"BODY": '{"data": 31}'}, True, ""),
    ("hex-len", "len([BODY].data) == 3", {"BODY": '{"data": "0x1"}'}, True, ""),
    ("hex-leading-zero", "[BODY].data >= 1", {"BODY": '{"data": "0x01"}'}, True, ""),
    ("hex-leading-zero-len", "len([BODY].data) == 4", {"BODY": '{"data": "0x01"}'}, True, ""),
    ("octal-greater", "[BODY].data > 0", {"BODY": '{"data": "0o1"}'}, True, ""),
    ("octal-equal", "[BODY].data == 2", {"BODY": '{"data": "0o2"}'}, True, ""),
    ("octal-equals-octal", "[BODY].data == 0o17", {"BODY": '{"data": 15}'}, True, ""),
    ("binary-greater", "[BODY].data > 0", {"BODY": '{"data": "0b1"}'}, True, ""),
    ("binary-equal", "[BODY].data == 2", {"BODY": '{"data": "0b0010"}'}, True, ""),
    ("binary-equals-binary", "[BODY].data == 0b101", {"BODY": '{"data": 5}'}, True, ""),
    ("not-a-number-is-text", "[BODY].data == 0xZZ", {"BODY": '{"data": "0xZZ"}'}, True, ""),
    # len()
    (
        "len-body-jsonpath-complex",
        "len([BODY].data.name) == 4",
        {"BODY": '{"data": {"name": "john"}}'},
        True,
        "",
    ),
    ("len-body-array", "len([BODY]) == 3", {"BODY": '[{"id": 1}, {"id": 2}, {"id": 3}]'}, True, ""),
    (
        "len-body-array-failure",
        "len([BODY]) > 3",
        {"BODY": "[1, 2, 3]"},
        False,
        "len([BODY]) (3) > 3",
    ),
    (
        "len-body-keyed-array",
        "len([BODY].data) == 3",
        {"BODY": '{"data": [{"id": 1}, {"id": 2}, {"id": 3}]}'},
        True,
        "",
    ),
    (
        "len-body-array-missing",
        "len([BODY].data) == 8",
        {"BODY": JOHN},
        False,
        "len([BODY].data) (<missing>) == 8",
    ),
    (
        "len-body-missing-zero",
        "len([BODY].errors) == 0",
        {"BODY": "{}"},
        False,
        "len([BODY].errors) (<missing>) == 0",
    ),
    ("len-body-string", "len([BODY]) == 8", {"BODY": "john.doe"}, True, ""),
    ("len-body-keyed-string", "len([BODY].name) == 8", {"BODY": JOHN}, True, ""),
    (
        "len-body-keyed-string-failure",
        "len([BODY].name) > 8",
        {"BODY": '{"name": "bob"}'},
        False,
        "len([BODY].name) (3) > 8",
    ),
    ("len-body-keyed-int", "len([BODY].age) == 2", {"BODY": '{"age":18}'}, True, ""),
    ("len-body-keyed-bool", "len([BODY].adult) == 4", {"BODY": '{"adult":true}'}, True, ""),
    (
        "len-body-object-inside-array",
        "len([BODY][0]) == 2",
        {"BODY": '[{"age":18,"adult":true}]'},
        True,
        "",
    ),  # Gatus: 23 characters
    (
        "len-body-object-keyed-int-inside-array",
        "len([BODY][0].age) == 2",
        {"BODY": '[{"age":18,"adult":true}]'},
        True,
        "",
    ),
    (
        "len-body-keyed-bool-inside-array",
        "len([BODY][0].adult) == 4",
        {"BODY": '[{"age":18,"adult":true}]'},
        True,
        "",
    ),
    ("len-body-object", "len([BODY]) == 1", {"BODY": JOHN}, True, ""),  # Gatus: 20 characters
    ("len-ip", "len([IP]) == 9", {"IP": "127.0.0.1"}, True, ""),
    ("len-list", "len([EXTENSIONS]) >= 2", {"EXTENSIONS": ["plpgsql", "vector"]}, True, ""),
    ("len-empty-list", "len([MISSING_ENV]) == 0", {"MISSING_ENV": []}, True, ""),
    (
        "len-list-failure",
        "len([MISSING_ENV]) == 0",
        {"MISSING_ENV": ["DB_URL"]},
        False,
        "len([MISSING_ENV]) (1) == 0",
    ),
    # pat() on JSON values
    ("pat-body-2", "[BODY].name == pat(john*)", {"BODY": JOHN}, True, ""),
    (
        "pat-body-failure",
        "[BODY].name == pat(bob*)",
        {"BODY": JOHN},
        False,
        "[BODY].name (john.doe) == pat(bob*)",
    ),
    (
        "pat-body-in-array",
        "[BODY].data == pat(*Whatever*)",
        {"BODY": '{"data": ["hello", "world", "Whatever"]}'},
        True,
        "",
    ),
    (
        "pat-left-hand-side",
        "pat(1.*) == [BODY].version",
        {"BODY": '{"version": "1.4.2"}'},
        True,
        "",
    ),
    (
        "pat-left-hand-side-failure",
        "pat(2.*) == [BODY].version",
        {"BODY": '{"version": "1.4.2"}'},
        False,
        "pat(2.*) == [BODY].version (1.4.2)",
    ),
    ("pat-question-mark", "[BODY].code == pat(E?1)", {"BODY": '{"code": "E01"}'}, True, ""),
    (
        "pat-missing",
        "[BODY].name == pat(*)",
        {"BODY": "{}"},
        False,
        "[BODY].name (<missing>) == pat(*)",
    ),
    # any() on JSON values
    ("any-body-1", "[BODY].name == any(john.doe, jane.doe)", {"BODY": JOHN}, True, ""),
    (
        "any-body-2",
        "[BODY].name == any(john.doe, jane.doe)",
        {"BODY": '{"name": "jane.doe"}'},
        True,
        "",
    ),
    (
        "any-body-failure",
        "[BODY].name == any(john.doe, jane.doe)",
        {"BODY": '{"name": "bob"}'},
        False,
        "[BODY].name (bob) == any(john.doe, jane.doe)",
    ),
    ("any-body-number", "[BODY].id == any(1, 2)", {"BODY": '{"id": 2}'}, True, ""),
    (
        "any-body-number-failure",
        "[BODY].id == any(1, 2)",
        {"BODY": '{"id": 3}'},
        False,
        "[BODY].id (3) == any(1, 2)",
    ),
    (
        "any-left-hand-side",
        "any(ok, degraded) == [BODY].status",
        {"BODY": '{"status": "degraded"}'},
        True,
        "",
    ),
    # has()
    ("has", "has([BODY].errors) == false", {"BODY": "{}"}, True, ""),
    ("has-key-of-map", "has([BODY].article) == true", {"BODY": ARTICLE}, True, ""),
    (
        "has-failure",
        "has([BODY].errors) == false",
        {"BODY": '{"errors": ["1"]}'},
        False,
        "has([BODY].errors) (true) == false",
    ),
    ("has-users", "has([BODY].users) == true", {"BODY": '{"users": []}'}, True, ""),
    (
        "has-users-failure",
        "has([BODY].users) == true",
        {"BODY": "{}"},
        False,
        "has([BODY].users) (false) == true",
    ),
    ("has-lone", "has([BODY].users)", {"BODY": '{"users": []}'}, True, ""),
    ("has-item", "has([EXTENSIONS], vector)", {"EXTENSIONS": ["plpgsql", "vector"]}, True, ""),
    (
        "has-item-failure",
        "has([EXTENSIONS], vector)",
        {"EXTENSIONS": ["plpgsql"]},
        False,
        "has([EXTENSIONS], vector) (false)",
    ),
    ("has-item-in-body", "has([BODY].tags, b) == true", {"BODY": '{"tags": ["a", "b"]}'}, True, ""),
    # [CONNECTED]
    ("connected", "[CONNECTED] == true", {"CONNECTED": True}, True, ""),
    (
        "connected-failure",
        "[CONNECTED] == true",
        {"CONNECTED": False},
        False,
        "[CONNECTED] (false) == true",
    ),
    ("connected-lone", "[CONNECTED]", {"CONNECTED": True}, True, ""),
    ("connected-lone-failure", "[CONNECTED]", {"CONNECTED": False}, False, "[CONNECTED] (false)"),
    (
        "connected-uppercase-literal",
        "[CONNECTED] == TRUE",
        {"CONNECTED": True},
        False,
        "[CONNECTED] (true) == TRUE",
    ),
    # [CERTIFICATE_EXPIRATION]
    (
        "cert-greater-numerical",
        "[CERTIFICATE_EXPIRATION] > 2419200000",
        {"CERTIFICATE_EXPIRATION": 60 * 24 * HOUR_MS},
        True,
        "",
    ),
    (
        "cert-greater-numerical-failure",
        "[CERTIFICATE_EXPIRATION] > 2419200000",
        {"CERTIFICATE_EXPIRATION": 14 * 24 * HOUR_MS},
        False,
        "[CERTIFICATE_EXPIRATION] (336h) > 2419200000",
    ),
    (
        "cert-greater-duration",
        "[CERTIFICATE_EXPIRATION] > 12h",
        {"CERTIFICATE_EXPIRATION": 24 * HOUR_MS},
        True,
        "",
    ),
    (
        "cert-greater-duration-failure",
        "[CERTIFICATE_EXPIRATION] > 48h",
        {"CERTIFICATE_EXPIRATION": 24 * HOUR_MS},
        False,
        "[CERTIFICATE_EXPIRATION] (24h) > 48h",
    ),
    (
        "cert-minutes-shown",
        "[CERTIFICATE_EXPIRATION] > 48h",
        {"CERTIFICATE_EXPIRATION": 24 * HOUR_MS - 60_000},
        False,
        "[CERTIFICATE_EXPIRATION] (23h59m) > 48h",
    ),
    (
        "cert-expired-shown",
        "[CERTIFICATE_EXPIRATION] > 0",
        {"CERTIFICATE_EXPIRATION": -2 * HOUR_MS},
        False,
        "[CERTIFICATE_EXPIRATION] (-2h) > 0",
    ),
    (
        "cert-days",
        "[CERTIFICATE_EXPIRATION] > 7d",
        {"CERTIFICATE_EXPIRATION": 8 * 24 * HOUR_MS},
        True,
        "",
    ),
    # other check types' placeholders
    (
        "postgres-ratio",
        "[CONNECTIONS_USED_RATIO] < 0.8",
        {"CONNECTIONS_USED_RATIO": 0.85},
        False,
        "[CONNECTIONS_USED_RATIO] (0.85) < 0.8",
    ),
    ("postgres-recovery", "[IN_RECOVERY] == false", {"IN_RECOVERY": False}, True, ""),
    ("postgres-connect-time", "[CONNECT_TIME] < 500ms", {"CONNECT_TIME": 12.5}, True, ""),
    ("postgres-result-path", "[RESULT].state == ok", {"RESULT": {"state": "ok"}}, True, ""),
    ("postgres-result-number", "[RESULT] == 42", {"RESULT": 42}, True, ""),
    (
        "postgres-version-pattern",
        "[SERVER_VERSION] == pat(15.*)",
        {"SERVER_VERSION": "15.18"},
        True,
        "",
    ),
    (
        "container-state",
        "[STATE] == running",
        {"STATE": "exited"},
        False,
        "[STATE] (exited) == running",
    ),
    ("container-oom-lone", "[OOM_KILLED]", {"OOM_KILLED": False}, False, "[OOM_KILLED] (false)"),
    (
        "container-image-pattern",
        "[IMAGE] == pat(shop/backend:*)",
        {"IMAGE": "shop/backend:1.4"},
        True,
        "",
    ),
    ("container-restarts", "[RESTARTS_10M] < 3", {"RESTARTS_10M": 0}, True, ""),
    # evaluation problems fail with a reason, never raise
    (
        "unknown-at-run-time",
        "[IN_RECOVERY] == false",
        {"STATUS": 200},
        False,
        "[IN_RECOVERY] == false: [IN_RECOVERY] is not known to this check type",
    ),
    (
        "text-ordering",
        "[BODY].status < 5",
        {"BODY": '{"status": "ok"}'},
        False,
        "[BODY].status < 5: cannot compare ok and 5",
    ),
]


@pytest.mark.parametrize(
    ("condition", "facts", "holds", "detail"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_gatus_cases(condition: str, facts: dict[str, Any], holds: bool, detail: str) -> None:
    """Each case decides (and, when it fails, reads) the way a Gatus user expects."""
    assert evaluate(condition, facts) == (holds, detail or condition)


def test_case_table_is_large_and_unique() -> None:
    """The ported table keeps at least 100 distinct cases (the issue's bar)."""
    assert len(CASES) >= 100
    assert len({case[0] for case in CASES}) == len(CASES)


def test_deep_json_body_fails_with_reason() -> None:
    """A body nested deeper than the limit fails the condition with the reason, never raises."""
    deep = "[" * 100_000 + "]" * 100_000
    ok, detail = evaluate("[BODY][0] == 1", {"BODY": deep})
    assert not ok
    assert detail == f"[BODY][0] == 1: [BODY] is nested deeper than {MAX_JSON_DEPTH} levels"
    ok, detail = evaluate("len([BODY]) > 0", {"BODY": deep})
    assert ok  # len() of a body too deep to decode counts its characters


def test_json_at_the_depth_limit_is_walked() -> None:
    """A body exactly at the limit (strings with brackets do not count) still works."""
    nested: Any = 1
    for _ in range(MAX_JSON_DEPTH - 1):
        nested = [nested]
    body = json.dumps({"a": nested, "s": "[[[["})
    path = "[BODY].a" + "[0]" * (MAX_JSON_DEPTH - 1)
    assert evaluate(f"{path} == 1", {"BODY": body}) == (True, f"{path} == 1")


def test_brackets_inside_strings_do_not_count_towards_depth() -> None:
    """Brackets and escaped quotes inside JSON strings never make a shallow body "too deep"."""
    body = json.dumps({"s": '\\"' + "[" * 200 + '"{', "a": 1, "t": "]" * 200})
    assert evaluate("[BODY].a == 1", {"BODY": body}) == (True, "[BODY].a == 1")


def test_failure_detail_shows_actual_value() -> None:
    """A failed condition shows the value that was seen, as on-call reads it."""
    assert check("[STATUS] == 200", STATUS=503) == (False, "[STATUS] (503) == 200")
    _, detail = check("[BODY].services.database == ok")
    assert detail == "[BODY].services.database (error) == ok"


@pytest.mark.parametrize(
    ("milliseconds", "shown"),
    [
        (0, "0s"),
        (45_500, "45s"),
        (90_000, "1m30s"),
        (3_615_000, "1h0m15s"),
        (14 * 86_400_000, "336h"),
    ],
)
def test_go_duration(milliseconds: float, shown: str) -> None:
    """Durations read as Gatus prints them (whole seconds, trailing zero units dropped)."""
    assert go_duration(milliseconds) == shown


def test_placeholders_are_reported() -> None:
    """A condition knows which placeholders it reads (diagnosis uses it to spot latency-only)."""
    assert Condition.parse("len([BODY].items) < [status]").placeholders == {"BODY", "STATUS"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "non-empty"),
        ("ok", "no operator"),
        ("[STATUS] 200", "no operator"),
        ("[STATUS == 200", "malformed placeholder"),
        ("[STATUS] < pat(2*)", "only with == and !="),
        ("any(1, 2) >= [STATUS]", "only with == and !="),
        ("pat(1*) == any(1, 2)", "two patterns"),
        ("len([BODY].a, [BODY].b) == 1", r"len\(\) takes 1 argument\(s\), got 2"),
        ("len([BODY].a == 1", r"unbalanced parentheses .* never closed"),
        ("len([BODY].a)) == 1", r"unbalanced parentheses .* too many"),
        ("has([BODY].a == true", "unbalanced parentheses"),
        ("size([BODY]) == 1", r"unknown function size\(\)"),
        ("len(5) == 1", r"len\(\) takes a placeholder"),
        ("1 == 2", "compares constants"),
        ("any(200) == 200", "compares constants"),
        ("[STATUS] == 200 == 300", "more than one operator"),
        ("[BODY].ready", "alone is not true or false"),
        ("len([BODY])", "no operator"),
    ],
)
def test_syntax_errors_are_specific(text: str, message: str) -> None:
    """Malformed conditions are rejected at load time with a specific message."""
    with pytest.raises(ConditionSyntaxError, match=message):
        Condition.parse(text)


@pytest.mark.parametrize(
    ("check_type", "text", "message"),
    [
        (
            "http",
            "[STAUS] == 200",
            r"\[STAUS\] is not a placeholder of http checks \(did you mean \[STATUS\]",
        ),
        ("http", "[IN_RECOVERY] == false", r"not a placeholder of http checks"),
        ("postgres", "[IP] == 127.0.0.1", r"\[IP\] is not a placeholder of postgres checks"),
        ("container", "[STATUS] == 200", r"not a placeholder of container checks"),
        ("docker", "[CONNECTED]", "docker checks take no conditions"),
        ("http", "[STATUS] < 1s", r"\[STATUS\] is a number, not a time; 1s is a duration"),
        ("http", "len([BODY].items) > 5m", "is a number, not a time"),
        ("postgres", "[CONNECTIONS_USED] >= 1h", "not a time"),
        ("http", "[STATUS] < potato", "'potato' is not a number"),
        ("http", "[RESPONSE_TIME] < fast", "'fast' is not a number or a duration"),
        ("http", "[BODY].count < many", "< compares numbers, 'many' is not one"),
        ("http", "[STATUS] == ok", "'ok' is not a number"),
        ("http", "len([BODY].name) == john", "'john' is not a number"),
        ("http", "[CONNECTED] == yes", "compare it with true or false"),
        ("http", "has([BODY].errors) == 0", "compare it with true or false"),
        ("http", "[IP] > 10", r"\[IP\] is text, it cannot be compared with >"),
        ("container", "[STATE] < running", "cannot be compared with <"),
        ("http", "[CONNECTED] < 1", "cannot be compared with <"),
        ("postgres", "[EXTENSIONS] == vector", r"has\(\[EXTENSIONS\], item\)"),
        ("http", "[STATUS]", r"alone is not true or false \(\[STATUS\] is a number\)"),
        ("postgres", "[CONNECTIONS_USED_RATIO]", "alone is not true or false"),
        ("http", "[STATUS].code == 1", "it has no fields to walk into"),
        ("postgres", "[EXTENSIONS].name == x", "it has no fields to walk into"),
    ],
)
def test_conditions_that_cannot_work_are_config_errors(
    check_type: str, text: str, message: str
) -> None:
    """What would fail on every run is rejected against the check type's placeholder table."""
    table = CHECK_TYPES[check_type].placeholders
    with pytest.raises(ConditionSyntaxError, match=message):
        check_placeholders(Condition.parse(text), table, check_type)


@pytest.mark.parametrize(
    ("check_type", "text"),
    [
        ("http", "[STATUS] == 200"),
        ("http", "[status] < 300"),
        ("http", "[RESPONSE_TIME] < 1s"),
        ("http", "[CERTIFICATE_EXPIRATION] > 48h"),
        ("http", "[BODY].latency < 1s"),
        ("http", "[IP] == pat(127.*)"),
        ("http", "[CONNECTED]"),
        ("http", "has([BODY].errors) == false"),
        ("http", "[STATUS] == [BODY].code"),
        ("postgres", "has([EXTENSIONS], vector)"),
        ("postgres", "[EXTENSIONS][0] == plpgsql"),
        ("postgres", "[RESULT].a.b == 1"),
        ("postgres", "[SERVER_VERSION_NUM] >= 150000"),
        ("container", "len([MISSING_ENV]) == 0"),
        ("container", "[OOM_KILLED] == false"),
        ("container", "[HEALTH] != unhealthy"),
    ],
)
def test_conditions_that_can_work_are_accepted(check_type: str, text: str) -> None:
    """Valid conditions pass the placeholder check of their check type."""
    table = CHECK_TYPES[check_type].placeholders
    check_placeholders(Condition.parse(text), table, check_type)


def test_failure_on_an_absent_value_is_marked_absent() -> None:
    """A failure whose value was not there (absent path, non-JSON body) is marked absent;
    one that saw a different value is not, so diagnosis can tell the two apart."""
    facts = {"STATUS": 500, "BODY": BODY, "RESPONSE_TIME": 1.0}
    seen = Condition.parse("[BODY].services.database == ok").evaluate(Facts(facts))
    assert (seen.ok, seen.absent) == (False, False)
    gone = Condition.parse("[BODY].services.cache == ok").evaluate(Facts(facts))
    assert (gone.ok, gone.absent) == (False, True)
    html = Condition.parse("[BODY].status == ok").evaluate(Facts(facts | {"BODY": "<html>"}))
    assert (html.ok, html.absent) == (False, True)
    status = Condition.parse("[STATUS] == 200").evaluate(Facts(facts))
    assert (status.ok, status.absent) == (False, False)
