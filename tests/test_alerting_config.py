"""The alerting, silences and maintenance sections of the config file: clear errors located by
file, line and key, and every channel secret registered for masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config
from monitor.redaction import Redactor

BASE = """\
checks:
  - name: web
    type: http
    url: http://127.0.0.1:9/
"""


def _load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> object:
    path = tmp_path / "opsmon.yml"
    path.write_text(BASE + text)
    return load_config(path, env or {})


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    return [str(p).split(": ", 1)[1] for p in caught.value.problems]


def test_full_alerting_section_loads(tmp_path: Path) -> None:
    """The documented shape loads, with defaults filled in."""
    loaded = _load(
        tmp_path,
        """\
alerting:
  group_by: [service]
  group_wait: 10s
  repeat_interval: 4h
  send_resolved: true
  channels:
    - {name: oncall-slack, type: slack, webhook_url: "${SLACK_WEBHOOK_URL}"}
    - name: oncall-email
      type: email
      smtp:
        host: smtp.example.com
        port: 587
        starttls: true
        username: "${SMTP_USER}"
        password: "${SMTP_PASSWORD}"
      from: opsmon@example.com
      to: [oncall@example.com]
    - {name: hooks, type: webhook, url: "https://hooks.example.com/opsmon"}
    - {name: am, type: alertmanager, url: "http://alertmanager:9093"}
  routes:
    - {match: {severity: critical}, channels: [oncall-slack, oncall-email]}
  heartbeat: {url: "https://hc.example.com/ping/abcd-1234", interval: 1m}
silences:
  - match: {service: frontend}
    starts: "2026-12-01T02:00:00Z"
    ends: "2026-12-01T03:00:00Z"
    comment: "CDN migration"
maintenance:
  - {match: {service: backend}, weekdays: [sun], start: "03:00", duration: 1h,
     timezone: Europe/Berlin}
""",
        {
            "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/slack-canary",
            "SMTP_USER": "opsmon",
            "SMTP_PASSWORD": "smtp-canary",
        },
    )
    config = loaded.config  # type: ignore[attr-defined]
    assert config.alerting.group_interval == 60
    assert [c.type for c in config.alerting.channels] == [
        "slack",
        "email",
        "webhook",
        "alertmanager",
    ]
    assert config.alerting.channels[0].rate_limit == 1.0
    assert config.alerting.channels[3].repeat_interval == 60
    assert config.silences[0].comment == "CDN migration"
    assert config.maintenance[0].weekdays == ("sun",)
    redactor = Redactor(loaded.secrets)  # type: ignore[attr-defined]
    for secret in (
        "https://hooks.slack.com/services/T0/B0/slack-canary",
        "smtp-canary",
        "https://hooks.example.com/opsmon",
        "https://hc.example.com/ping/abcd-1234",
    ):
        assert redactor.text(f"x {secret} y") == "x *** y"


def test_webhook_header_values_are_secrets(tmp_path: Path) -> None:
    """Header values of a webhook channel (tokens) are masked wherever they would appear."""
    loaded = _load(
        tmp_path,
        """\
alerting:
  channels:
    - name: hooks
      type: webhook
      url: http://127.0.0.1:9/x
      headers: {X-Api-Key: header-canary-123}
""",
    )
    assert "header-canary-123" in loaded.secrets  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "alerting:\n  channels:\n    - {name: x, type: pager}\n",
            "alerting.channels[0]: unknown channel type 'pager' (known: alertmanager, email,"
            " slack, webhook)",
        ),
        (
            "alerting:\n  channels:\n    - {name: x, type: slack}\n",
            "alerting.channels[0].webhook_url: required key is missing",
        ),
        (
            "alerting:\n  channels:\n    - {name: x, type: webhook, url: 'ftp://h/secret'}\n",
            "alerting.channels[0].url: must be an http:// or https:// URL with a host",
        ),
        (
            "alerting:\n  channels:\n    - {name: x, type: webhook, url: 'http://h/', c: 1}\n",
            "alerting.channels[0].c: unknown key",
        ),
        (
            "alerting:\n  channels: [{name: a, type: webhook, url: 'http://h/'}]\n"
            "  routes: [{match: {severity: critical}, channels: [b]}]\n",
            "alerting.routes: routes[0] names unknown channel(s) 'b' (channels: a)",
        ),
        (
            "alerting:\n  group_wait: soon\n",
            "alerting.group_wait: invalid duration 'soon': expected e.g. 500ms, 30s, 5m, 4h",
        ),
        (
            "alerting:\n  group_by: [team]\n",
            "alerting.group_by: unknown label 'team' (labels: alertname, severity, service,"
            " check, channel)",
        ),
        (
            "silences:\n  - {match: {service: a}, ends: '2026-12-01T03:00:00'}\n",
            "silences[0].ends: needs a time zone, e.g. 2026-12-01T02:00:00Z",
        ),
        (
            "silences:\n  - {match: {service: a}, starts: '2026-12-01T04:00:00Z',"
            " ends: '2026-12-01T03:00:00Z'}\n",
            "silences[0]: ends must be after starts",
        ),
        (
            "maintenance:\n  - {weekdays: [funday], start: '02:00', duration: 1h}\n",
            "maintenance[0].weekdays: unknown weekday(s) fun (use mon, tue, wed, thu, fri, sat,"
            " sun)",
        ),
        (
            "maintenance:\n  - {start: '25:00', duration: 1h}\n",
            "maintenance[0].start: invalid start '25:00': expected HH:MM, e.g. 02:30",
        ),
        (
            "maintenance:\n  - {start: '02:00', duration: 1h, timezone: Mars/Olympus}\n",
            "maintenance[0].timezone: unknown time zone 'Mars/Olympus' (e.g. UTC, Europe/Berlin)",
        ),
    ],
)
def test_mistakes_are_reported_with_their_key(tmp_path: Path, text: str, expected: str) -> None:
    """Each mistake gets one specific message naming the key."""
    assert _problems(tmp_path, text) == [expected]


def test_problem_lines_point_into_the_file(tmp_path: Path) -> None:
    """The line number is the line of the offending key."""
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, "alerting:\n  channels:\n    - name: x\n      type: slack\n")
    (problem,) = caught.value.problems
    assert problem.line == 7
