"""Alerting inside a real `opsmon run`: real targets flipped healthy/unhealthy, real receivers,
SIGKILL and restart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from monitor.alerting.component import AlertingComponent
from monitor.alertnames import AlertName
from monitor.config import load_config
from monitor.core.result import CheckResult
from monitor.daemon import Daemon
from monitor.rollback.alerts import IncidentSink, RollbackAlert
from monitor.settings import Settings
from tests.support.cli import running_daemon
from tests.support.environment import free_port
from tests.support.receiver import Answer, FlipTarget, Receiver
from tests.support.smtp import SmtpServer
from tests.support.waiting import async_wait_until, wait_until


@pytest.fixture
def slack() -> Iterator[Receiver]:
    """The stand-in for Slack's incoming webhook."""
    server = Receiver().start()
    yield server
    server.stop()


def write_config(tmp_path: Path, target: FlipTarget, alerting: dict[str, Any]) -> Path:
    """A config with one fast HTTP check of service `web` and the given alerting section."""
    config = {
        "state_dir": str(tmp_path / "state"),
        "public_url": "http://opsmon.test:9110",
        "defaults": {
            "interval": "200ms",
            "timeout": "150ms",
            "failure_threshold": 2,
            "success_threshold": 2,
        },
        "checks": [{"name": "web", "type": "http", "service": "web", "url": target.url}],
        "alerting": {"group_wait": "0s", "group_interval": "300ms", **alerting},
    }
    path = tmp_path / "opsmon.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def statuses(receiver: Receiver) -> list[str]:
    """The status of every accepted notification, in order."""
    return [r.json["status"] for r in receiver.accepted()]


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    """A real SMTP server with STARTTLS and AUTH."""
    server = SmtpServer(tmp_path, "starttls", password="smtp-Pa55-canary").start()
    yield server
    server.stop()


def test_threshold_crossing_sends_one_firing_and_one_resolved_per_channel(
    tmp_path: Path, target: FlipTarget, hooks: Receiver, slack: Receiver, smtp: SmtpServer
) -> None:
    """Down then up: each channel gets exactly one FIRING and one RESOLVED."""
    config = write_config(
        tmp_path,
        target,
        {
            "channels": [
                {"name": "hooks", "type": "webhook", "url": hooks.url()},
                {"name": "chat", "type": "slack", "webhook_url": slack.url("/services/T0/B0/x")},
                {
                    "name": "mail",
                    "type": "email",
                    "smtp": smtp.smtp_config(),
                    "from": "opsmon@example.com",
                    "to": ["oncall@example.com"],
                },
            ]
        },
    )
    with running_daemon(config, free_port()):
        target.healthy = False
        hooks.wait_accepted(1)
        slack.wait_accepted(1)
        smtp.wait_messages(1)
        target.healthy = True
        hooks.wait_accepted(2)
        slack.wait_accepted(2)
        smtp.wait_messages(2)
        # Let several more check rounds and group intervals pass: nothing else may arrive.
        hits = target.hits()
        wait_until(lambda: target.hits() >= hits + 10, timeout=10)
    assert statuses(hooks) == ["firing", "resolved"]
    assert [r.json["text"].split(" ")[0] for r in slack.accepted()] == ["[FIRING]", "[RESOLVED]"]
    assert [m["Subject"] for m in smtp.messages] == [
        "[FIRING] HealthCheckFailing: web (web)",
        "[RESOLVED] HealthCheckFailing: web (web)",
    ]
    firing = hooks.accepted()[0].json["alerts"][0]
    assert firing["labels"] == {
        "alertname": "HealthCheckFailing",
        "severity": "critical",
        "check": "web",
        "service": "web",
    }
    assert firing["annotations"]["runbook_url"] == (
        "http://opsmon.test:9110/runbooks/health-check-failing"
    )
    assert "[STATUS] (503)" in firing["annotations"]["description"]


def _two_services(tmp_path: Path, web: FlipTarget, api: FlipTarget, hooks: Receiver) -> Path:
    config = write_config(
        tmp_path,
        web,
        {
            "channels": [{"name": "hooks", "type": "webhook", "url": hooks.url()}],
            "delivery": {"initial_backoff": "200ms", "max_backoff": "400ms"},
        },
    )
    data = yaml.safe_load(config.read_text())
    data["checks"].append({"name": "api", "type": "http", "service": "api", "url": api.url})
    config.write_text(yaml.safe_dump(data))
    return config


def _by_id(receiver: Receiver) -> dict[str, list[tuple[str, str]]]:
    got: dict[str, list[tuple[str, str]]] = {}
    for request in receiver.accepted():
        body = request.json
        got.setdefault(body["notificationId"], []).append(
            (body["groupLabels"]["service"], body["status"])
        )
    return got


def test_sigkill_with_undelivered_notifications_then_restart(
    tmp_path: Path, target: FlipTarget, hooks: Receiver
) -> None:
    """Killed while the receiver fails: after a restart each notification arrives exactly once,
    the incidents are remembered (no second FIRING), and a recovery while down is RESOLVED."""
    api = FlipTarget().start()
    try:
        config = _two_services(tmp_path, target, api, hooks)
        hooks.default = Answer(500)
        with running_daemon(config, free_port()) as daemon:
            target.healthy = api.healthy = False
            # Both FIRINGs were tried (and refused) at least once: they wait in the outbox.
            wait_until(lambda: len({r.json["notificationId"] for r in hooks.requests}) == 2)
            daemon.kill()
            daemon.wait()
        assert hooks.accepted() == []

        hooks.default = Answer(200)
        with running_daemon(config, free_port()):
            hooks.wait_accepted(2)
            # Thresholds trip again after the restart; give them several rounds.
            hits = target.hits()
            wait_until(lambda: target.hits() >= hits + 10, timeout=10)
        delivered = _by_id(hooks)
        assert sorted(delivered.values()) == [[("api", "firing")], [("web", "firing")]]

        # Now both recover while opsmon is down (killed again).
        with running_daemon(config, free_port()) as daemon:
            daemon.kill()
            daemon.wait()
        target.healthy = api.healthy = True
        with running_daemon(config, free_port()):
            hooks.wait_accepted(4)
        delivered = _by_id(hooks)
        assert all(len(v) == 1 for v in delivered.values())  # none twice under its id
        assert sorted(v[0] for v in delivered.values()) == [
            ("api", "firing"),
            ("api", "resolved"),
            ("web", "firing"),
            ("web", "resolved"),
        ]
    finally:
        api.stop()


def test_no_channel_secret_appears_in_logs_status_or_metrics(
    tmp_path: Path, target: FlipTarget, hooks: Receiver, slack: Receiver
) -> None:
    """Failing deliveries on every channel log their errors, never a webhook URL or password."""
    heartbeat = Receiver().start()
    smtp = SmtpServer(tmp_path, "starttls", password="the-real-password").start()
    canaries = {
        "webhook": "WEBHOOK-CANARY-7f3a",
        "slack": "SLACK-CANARY-99x",
        "smtp": "SMTP-CANARY-pass",
        "heartbeat": "HEARTBEAT-CANARY-1",
    }
    try:
        hooks.default = Answer(500, body="nope")
        slack.default = Answer(429, retry_after="1", body="rate_limited")
        config = write_config(
            tmp_path,
            target,
            {
                "channels": [
                    {
                        "name": "hooks",
                        "type": "webhook",
                        "url": hooks.url(f"/x/{canaries['webhook']}"),
                    },
                    {
                        "name": "chat",
                        "type": "slack",
                        "webhook_url": slack.url(f"/services/{canaries['slack']}"),
                    },
                    {
                        "name": "mail",
                        "type": "email",
                        "smtp": {**smtp.smtp_config(), "password": canaries["smtp"]},
                        "from": "opsmon@example.com",
                        "to": ["oncall@example.com"],
                    },
                ],
                "delivery": {
                    "initial_backoff": "200ms",
                    "max_backoff": "400ms",
                    "failing_after": "1s",
                },
                "heartbeat": {
                    "url": heartbeat.url(f"/ping/{canaries['heartbeat']}"),
                    "interval": "200ms",
                },
            },
        )
        port = free_port()
        with running_daemon(config, port) as daemon:
            target.healthy = False
            wait_until(lambda: len(hooks.requests) >= 3 and len(slack.requests) >= 2)
            wait_until(lambda: len(heartbeat.accepted()) >= 2)
            base = f"http://127.0.0.1:{port}"
            pages = {
                path: httpx.get(base + path, timeout=5).text
                for path in ("/api/alerts", "/api/status", "/metrics")
            }
            wait_until(lambda: "AlertDeliveryFailing" in httpx.get(base + "/api/alerts").text)
        logs = daemon.stdout.read() if daemon.stdout else ""  # type: ignore[union-attr]
    finally:
        heartbeat.stop()
        smtp.stop()
    failures = [json.loads(line) for line in logs.splitlines() if "alert_delivery_failed" in line]
    assert {f["channel"] for f in failures} == {"hooks", "chat", "mail"}
    assert any("535" in f["error"] for f in failures if f["channel"] == "mail")
    incidents = json.loads(pages["/api/alerts"])["incidents"]
    assert "HealthCheckFailing" in {i["alertname"] for i in incidents}
    for text in (logs, *pages.values()):
        for canary in canaries.values():
            assert canary not in text


async def test_alerting_section_added_and_removed_by_reload(
    tmp_path: Path, target: FlipTarget, hooks: Receiver
) -> None:
    """SIGHUP's reload turns alerting on (alerts flow, /api/alerts lists them) and off again
    (nothing is sent, /api/alerts says it is off)."""
    port = free_port()
    data = {
        "listen": f"127.0.0.1:{port}",
        "state_dir": str(tmp_path / "state"),
        "defaults": {"interval": "1h", "failure_threshold": 1, "success_threshold": 1},
        "checks": [{"name": "web", "type": "http", "service": "web", "url": target.url}],
    }
    path = tmp_path / "opsmon.yml"
    path.write_text(yaml.safe_dump(data))
    daemon = Daemon(load_config(path), Settings(listen=None, state_dir=None))
    task = asyncio.create_task(daemon.run())

    async def ready() -> bool:
        return daemon.readiness()[0]

    async def sent(count: int) -> bool:
        return len(hooks.accepted()) >= count

    async def api_alerts() -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{port}/api/alerts", timeout=5)
        body: dict[str, Any] = answer.json()
        return body

    try:
        await async_wait_until(ready)
        assert await api_alerts() == {"enabled": False}
        data["alerting"] = {
            "group_wait": "0s",
            "group_interval": "100ms",
            "channels": [{"name": "hooks", "type": "webhook", "url": hooks.url()}],
        }
        path.write_text(yaml.safe_dump(data))
        assert await daemon.reload()
        runner = daemon.runners["web"]
        await runner.record(CheckResult.failure("condition", "[STATUS] (503) == 200"))
        await async_wait_until(lambda: sent(1))
        await runner.record(CheckResult(ok=True))
        await async_wait_until(lambda: sent(2))
        listed = await api_alerts()
        assert listed["enabled"] is True
        assert [i["status"] for i in listed["incidents"]] == ["resolved"]

        del data["alerting"]
        path.write_text(yaml.safe_dump(data))
        assert await daemon.reload()
        assert await api_alerts() == {"enabled": False}
        await runner.record(CheckResult.failure("condition", "[STATUS] (503) == 200"))
        await asyncio.sleep(0.5)  # give a wrongly still-active pipeline time to send
    finally:
        daemon.request_stop()
        assert await task == 0
    assert statuses(hooks) == ["firing", "resolved"]


async def test_incidents_about_opsmon_itself_survive_restart_and_reload(
    tmp_path: Path, target: FlipTarget, hooks: Receiver
) -> None:
    """A firing RollbackFailed (an incident whose source is not a check) stays firing across a
    restart and a reload; only incidents of checks that are gone are resolved."""
    path = write_config(
        tmp_path, target, {"channels": [{"name": "hooks", "type": "webhook", "url": hooks.url()}]}
    )
    alert = RollbackAlert(AlertName.ROLLBACK_FAILED, "web", "rollback of web failed", "details")
    for attempt in range(2):
        port = free_port()
        daemon = Daemon(load_config(path), Settings(listen=f"127.0.0.1:{port}"))
        task = asyncio.create_task(daemon.run())
        try:
            await async_wait_until(lambda: _true(daemon.readiness()[0]))  # noqa: B023
            alerting = next(c for c in daemon.components if isinstance(c, AlertingComponent))
            if attempt == 0:
                ports = alerting.incidents()
                assert ports is not None
                IncidentSink(*ports).fire(alert, datetime.now(UTC))
                await async_wait_until(lambda: _true(len(hooks.accepted()) == 1))
            assert await daemon.reload()
            # The reconcile after a start or reload runs once a round is done: wait two runs.
            state = daemon.runners["web"].state
            for _ in range(2):
                before = state.last_run_at
                await async_wait_until(lambda: _true(state.last_run_at != before))  # noqa: B023
            async with httpx.AsyncClient() as client:
                listed = (await client.get(f"http://127.0.0.1:{port}/api/alerts")).json()
            rollback = [i for i in listed["incidents"] if i["alertname"] == "RollbackFailed"]
            assert [i["status"] for i in rollback] == ["firing"]
        finally:
            daemon.request_stop()
            assert await task == 0
    assert statuses(hooks) == ["firing"]


async def _true(value: bool) -> bool:
    return value
