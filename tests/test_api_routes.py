"""The /api/v1/ routes against a running `opsmon run`: every route with each scope (401, 403,
200/201, 422), paging, silences shared with `opsmon silence`, acks that stop reminders, and
tokens that never reach the logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.api.openapi import PREFIX, ROUTES
from tests.support.cli import run_opsmon
from tests.support.receiver import FlipTarget, Receiver
from tests.support.status import TOKEN_ENV, TOKENS, Daemon, status_daemon, write_config
from tests.support.waiting import wait_until

# Route -> (method, path, body) with real ids filled in by the fixture.
READ_ROUTES = [
    ("GET", "status", None),
    ("GET", "checks/api/history", None),
    ("GET", "incidents", None),
    ("GET", "silences", None),
]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon with an always-healthy check and alerting to a receiver."""
    tmp_path = tmp_path_factory.mktemp("api")
    target = FlipTarget().start()
    hooks = Receiver().start()
    config = write_config(
        tmp_path,
        [{"name": "api", "type": "http", "service": "backend", "url": target.url}],
        alerting={
            "group_wait": "0s",
            "channels": [{"name": "hooks", "type": "webhook", "url": hooks.url()}],
        },
    )
    try:
        with status_daemon(config) as running:
            yield running
    finally:
        target.stop()
        hooks.stop()


def _runs(daemon: Daemon) -> int:
    rows = daemon.api("GET", "checks/api/history?period=hour", "reader").json()["rows"]
    return sum(int(r["total"]) for r in rows)


def _firing_incident(daemon: Daemon, target: FlipTarget) -> str:
    target.healthy = False
    found = wait_until(
        lambda: daemon.api("GET", "incidents?status=firing", "reader").json()["incidents"]
    )
    return str(found[0]["id"])


@pytest.mark.parametrize(("method", "path", "body"), READ_ROUTES)
def test_read_routes_need_a_token_with_read(
    daemon: Daemon, method: str, path: str, body: object
) -> None:
    """Read routes: 401 without or with a wrong token, 403 for a token without read, 200 with."""
    assert daemon.api(method, path).status_code == 401
    wrong = daemon.client.request(
        method, f"/api/v1/{path}", headers={"Authorization": "Bearer not-a-configured-token"}
    )
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    for name in ("silencer", "acker"):
        forbidden = daemon.api(method, path, name)
        assert forbidden.status_code == 403
        assert forbidden.json()["error"] == f"token {name!r} lacks the 'read' scope"
    for name in ("reader", "boss"):
        assert daemon.api(method, path, name).status_code == 200


def test_write_routes_need_their_scope(daemon: Daemon) -> None:
    """POST/DELETE silences need `silence`, the ack needs `ack`; admin may do both."""
    body = {"matchers": {"service": "nothing"}, "duration": "5m", "comment": "scope test"}
    assert daemon.api("POST", "silences", json=body).status_code == 401
    for name in ("reader", "acker"):
        assert daemon.api("POST", "silences", name, json=body).status_code == 403
    created = daemon.api("POST", "silences", "silencer", json=body)
    assert created.status_code == 201
    silence = created.json()
    assert silence["created_by"] == "silencer" and silence["state"] == "active"
    assert daemon.api("DELETE", f"silences/{silence['id']}", "reader").status_code == 403
    assert daemon.api("DELETE", f"silences/{silence['id']}", "boss").status_code == 200
    assert daemon.api("DELETE", f"silences/{silence['id']}", "boss").status_code == 404
    for name in (None, "reader", "silencer"):
        expected = 401 if name is None else 403
        assert daemon.api("POST", "incidents/unknown/ack", name).status_code == expected
    assert daemon.api("POST", "incidents/unknown/ack", "acker").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("GET", "checks/api/history?period=week", None, "period must be day or hour"),
        ("GET", "checks/api/history?days=0", None, "days must be between 1 and 90"),
        ("GET", "incidents?limit=many", None, "limit must be a whole number"),
        ("GET", "incidents?limit=500", None, "limit must be between 1 and 200"),
        ("GET", "incidents?cursor=%%%", None, "cursor is not a next_cursor"),
        ("GET", "incidents?status=open", None, "status must be firing or resolved"),
        ("GET", "silences?all=maybe", None, "all must be true or false"),
        ("POST", "silences", {"matchers": {"service": "x"}}, "comment: Field required"),
        ("POST", "silences", {"matchers": {}, "comment": "c"}, "matchers: Dictionary should"),
        ("POST", "silences", {"matchers": {"colour": "x"}, "comment": "c"}, "unknown label"),
        (
            "POST",
            "silences",
            {"matchers": {"service": "x"}, "comment": "c", "ends_at": "2001-01-01T00:00:00Z"},
            "would end before it starts",
        ),
        (
            "POST",
            "silences",
            {"matchers": {"service": "x"}, "comment": "c", "duration": "soon"},
            "invalid duration",
        ),
        (
            "POST",
            "silences",
            {"matchers": {"service": "x"}, "comment": "c", "extra": 1},
            "extra: Extra inputs are not permitted",
        ),
        ("DELETE", "silences/config-1234", None, "defined in the config file"),
    ],
)
def test_bad_input_gets_422_with_the_reason(
    daemon: Daemon, method: str, path: str, body: object, message: str
) -> None:
    """Bad parameters and bodies are answered 422 with the field and what is wrong."""
    response = daemon.api(method, path, "boss", json=body)
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]


def test_a_body_that_is_not_json_is_422(daemon: Daemon) -> None:
    """A POST body that does not parse says so."""
    response = daemon.api("POST", "silences", "boss", content=b"{not json")
    assert response.status_code == 422
    assert response.json()["error"] == "invalid input: the body is not valid JSON"


def test_unknown_check_history_is_404(daemon: Daemon) -> None:
    """History of a check that never existed is 404, not an empty answer."""
    response = daemon.api("GET", "checks/nope/history", "reader")
    assert response.status_code == 404 and "nope" in response.json()["error"]


def test_status_and_history_report_what_ran(daemon: Daemon) -> None:
    """The status lists the check with its uptime; history has rows with runs and percentiles."""
    status = daemon.api("GET", "status", "reader").json()
    [check] = status["checks"]
    assert check["name"] == "api" and check["service"] == "backend"
    history = wait_until(
        lambda: daemon.api("GET", "checks/api/history?period=hour", "reader").json()["rows"]
    )
    assert history[-1]["total"] >= 1 and history[-1]["p50_ms"] is not None
    days = daemon.api("GET", "checks/api/history?days=7", "reader").json()
    assert len(days["rows"]) == 1 and days["percentile_error"] == pytest.approx(0.0905)


def test_openapi_documents_every_route_it_serves(daemon: Daemon) -> None:
    """The OpenAPI document is public and lists each route with its scope."""
    document = daemon.client.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    for op in ROUTES:
        entry = document["paths"][PREFIX + op.path][op.method.lower()]
        assert entry.get("x-opsmon-scope") == (op.scope.value if op.scope else None)
        # Served: a request without a token never gets "route not found".
        concrete = op.path.replace("{name}", "api").replace("{check}", "api")
        concrete = concrete.replace("{id}", "x").replace("{window}", "7d")
        response = daemon.client.request(op.method, PREFIX + concrete)
        assert response.status_code in (200, 401, 404, 422), (op.path, response.status_code)
        if op.scope is not None:
            assert response.status_code == 401, op.path


def test_metrics_count_requests_by_route_template(daemon: Daemon) -> None:
    """opsmon_http_requests_total is labelled by template (no ids, no paths) and status code."""
    daemon.api("GET", "checks/api/history", "reader")
    daemon.api("POST", "incidents/some-id/ack", "reader")
    text = daemon.client.get("/metrics").text
    assert (
        'opsmon_http_requests_total{code="403",method="POST",route="/api/v1/incidents/{id}/ack"}'
        in text
    )
    assert 'route="/api/v1/checks/{name}/history"' in text
    assert "some-id" not in text


def test_silences_are_shared_with_the_cli(tmp_path: Path) -> None:
    """A silence added by the API is listed by `opsmon silence list`, one added by the CLI is
    listed by the API, and expiring through the API ends it for the CLI too."""
    config = write_config(tmp_path, [{"name": "api", "type": "http", "url": "http://127.0.0.1:9/"}])
    with status_daemon(config) as daemon:
        created = daemon.api(
            "POST",
            "silences",
            "silencer",
            json={"matchers": {"service": "backend"}, "duration": "2h", "comment": "deploy"},
        ).json()
        listed = run_opsmon("silence", "list", "--json", "--config", str(config), env=TOKEN_ENV)
        rows = json.loads(listed.stdout)
        assert [(r["id"], r["created_by"], r["comment"]) for r in rows] == [
            (created["id"], "silencer", "deploy")
        ]
        added = run_opsmon(
            "silence",
            "add",
            "--config",
            str(config),
            "--match",
            "check=api",
            "--for",
            "30m",
            "--comment",
            "from the shell",
            "--author",
            "carol",
            env=TOKEN_ENV,
        )
        assert added.returncode == 0, added.stderr
        shell_id = added.stdout.split()[0]
        api_rows = daemon.api("GET", "silences", "reader").json()["silences"]
        assert {r["id"]: r["created_by"] for r in api_rows} == {
            created["id"]: "silencer",
            shell_id: "carol",
        }
        assert daemon.api("DELETE", f"silences/{shell_id}", "silencer").status_code == 200
        listed = run_opsmon("silence", "list", "--json", "--config", str(config), env=TOKEN_ENV)
        assert [r["id"] for r in json.loads(listed.stdout)] == [created["id"]]
        every = daemon.api("GET", "silences?all=true", "reader").json()["silences"]
        assert {r["id"]: r["state"] for r in every}[shell_id] == "expired"


def test_ack_stops_reminders_and_shows_who(tmp_path: Path) -> None:
    """After an ack no reminder arrives; the RESOLVED names who acknowledged; the page and
    the incident list show it; no token value appears in the daemon's log."""
    target = FlipTarget().start()
    hooks = Receiver().start()
    config = write_config(
        tmp_path,
        [{"name": "api", "type": "http", "service": "backend", "url": target.url}],
        alerting={
            "group_wait": "0s",
            "group_interval": "300ms",
            "repeat_interval": "1s",
            "channels": [{"name": "hooks", "type": "webhook", "url": hooks.url()}],
        },
    )
    try:
        with status_daemon(config) as daemon:
            incident = _firing_incident(daemon, target)
            hooks.wait_accepted(3)  # the FIRING and reminders every second
            acked = daemon.api("POST", f"incidents/{incident}/ack", "acker", json={})
            assert acked.status_code == 200, acked.text
            assert acked.json()["acked_by"] == "acker"
            again = daemon.api("POST", f"incidents/{incident}/ack", "boss")
            assert again.json()["acked_by"] == "acker"  # the first ack stands
            settled = len(hooks.accepted())
            assert "acknowledged by acker" in daemon.client.get("/status").text
            # Let three repeat intervals pass, measured by the check's own runs (300 ms each).
            runs = _runs(daemon)
            wait_until(lambda: _runs(daemon) >= runs + 10, timeout=20)
            assert [r.json["reason"] for r in hooks.accepted()[settled:]] == []
            target.healthy = True
            resolved = wait_until(
                lambda: [
                    r.json for r in hooks.accepted()[settled:] if r.json["status"] == "resolved"
                ]
            )
            assert resolved[0]["alerts"][0]["annotations"]["acknowledged_by"] == "acker"
            listed = daemon.api("GET", "incidents", "reader").json()["incidents"]
            assert listed[0]["acked_by"] == "acker" and listed[0]["status"] == "resolved"
            assert daemon.api("POST", f"incidents/{incident}/ack", "acker").status_code == 409
        log = daemon.process.stdout.read() if daemon.process.stdout else ""
        assert "incident_acknowledged" in log
        for _, value in TOKENS.values():
            assert value not in log
    finally:
        target.stop()
        hooks.stop()


def test_incidents_page_through_with_a_cursor(tmp_path: Path) -> None:
    """Several outages page one at a time, newest first, each exactly once."""
    target = FlipTarget().start()
    config = write_config(
        tmp_path,
        [{"name": "api", "type": "http", "service": "backend", "url": target.url}],
        alerting={
            "group_wait": "0s",
            "channels": [{"name": "hooks", "type": "webhook", "url": "http://127.0.0.1:9/"}],
        },
    )
    try:
        with status_daemon(config) as daemon:
            for _outage in range(3):
                target.healthy = False
                wait_until(
                    lambda: daemon.api("GET", "incidents?status=firing", "reader").json()[
                        "incidents"
                    ]
                )
                target.healthy = True
                wait_until(
                    lambda: (
                        not daemon.api("GET", "incidents?status=firing", "reader").json()[
                            "incidents"
                        ]
                    )
                )
            seen, cursor = [], None
            while True:
                query = "incidents?limit=1" + (f"&cursor={cursor}" if cursor else "")
                page = daemon.api("GET", query, "reader").json()
                seen.extend(i["id"] for i in page["incidents"])
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            everything = daemon.api("GET", "incidents", "reader").json()["incidents"]
            assert seen == [i["id"] for i in everything] and len(seen) == 3
            starts = [i["started_at"] for i in everything]
            assert starts == sorted(starts, reverse=True)
    finally:
        target.stop()
