"""`opsmon import gatus`: Gatus configs written from Gatus's documented examples convert into
configs `opsmon config validate` accepts, every endpoint is a check or a note, no secret is
copied, and a converted check reaches the same verdict as Gatus on a local server's answer."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.checks.context import CheckContext, HttpClients
from monitor.checks.http import PLACEHOLDERS, HttpCheck, HttpSpec
from monitor.config import load_config
from monitor.gatus_import import convert
from monitor.metrics import Metrics
from tests.support.cli import run_opsmon
from tests.support.gatus_reference import GatusResult, gatus_holds
from tests.support.http_target import Answer, Target, serve

CANARIES = {
    "slack": "https://hooks.slack.com/services/T0/B0/canary-slack-9d2c",
    "password": "canary-smtp-password-51e",
    "custom": "https://hooks.example.com/canary-custom-7a1b?token=x",
    "header": "Bearer canary-endpoint-token-c4f",
    "query": "canary-query-token-22d",
}

# From Gatus's README: Slack (with default-alert), email, custom, endpoint groups, maintenance.
DOCUMENTED = textwrap.dedent(f"""\
    metrics: true
    storage:
      type: sqlite
      path: /data/data.db
    alerting:
      slack:
        webhook-url: "{CANARIES["slack"]}"
        default-alert:
          description: "health check failed"
          send-on-resolved: true
          failure-threshold: 5
          success-threshold: 5
      email:
        from: "from@example.com"
        username: "from@example.com"
        password: "{CANARIES["password"]}"
        host: "mail.example.com"
        port: 587
        to: "recipient1@example.com,recipient2@example.com"
        client:
          insecure: false
        overrides:
          - group: "core"
            to: "recipient3@example.com,recipient4@example.com"
      custom:
        url: "{CANARIES["custom"]}"
        method: "POST"
        body: |
          {{"text": "[ALERT_TRIGGERED_OR_RESOLVED]: [ENDPOINT_GROUP] - [ENDPOINT_NAME]"}}
      pagerduty:
        integration-key: "********************************"
    maintenance:
      start: 23:00
      duration: 1h
      timezone: "Europe/Amsterdam"
      every: [Monday, Thursday]
    endpoints:
      - name: website
        url: "https://twin.sh/health"
        interval: 5m
        conditions:
          - "[STATUS] == 200"
          - "[BODY].status == UP"
          - "[RESPONSE_TIME] < 300"
        alerts:
          - type: slack
          - type: slack
            failure-threshold: 10
            description: "healthcheck failed 10 times in a row"
          - type: pagerduty
      - name: back-end
        group: core
        url: "https://example.org/"
        interval: 5m
        conditions:
          - "[STATUS] == 200"
          - "[CERTIFICATE_EXPIRATION] > 48h"
          - "[DOMAIN_EXPIRATION] > 720h"
        alerts:
          - type: email
            description: "healthcheck failed"
            send-on-resolved: true
        maintenance-windows:
          - start: "07:30"
            duration: 40m
            timezone: "Europe/Berlin"
          - start: "14:30"
            duration: 1h
            timezone: "Europe/Berlin"
      - name: frontend
        group: core
        url: "https://example.org/"
        interval: 5m
        conditions: ["[STATUS] == 200"]
        alerts:
          - type: custom
            failure-threshold: 10
            success-threshold: 3
            send-on-resolved: true
      - name: random endpoint that is not part of a group
        url: "https://example.org/?api_key={CANARIES["query"]}"
        headers:
          Authorization: "{CANARIES["header"]}"
          Accept: application/json
        interval: 5m
        conditions: ["[STATUS] == 200"]
      - name: graphql
        url: "http://127.0.0.1:8080/graphql"
        method: POST
        graphql: true
        body: |
          {{ user(id: 1) {{ id name }} }}
        conditions: ["[STATUS] == 200", "[BODY].data.user.id == 1"]
      - name: disabled
        enabled: false
        url: "https://example.org/"
        conditions: ["[STATUS] == 200"]
""")

# Every endpoint type of Gatus's README that is not HTTP.
OTHER_TYPES = textwrap.dedent("""\
    endpoints:
      - {name: redis, url: "tcp://127.0.0.1:6379", conditions: ["[CONNECTED] == true"]}
      - {name: udp, url: "udp://example.org:80", conditions: ["[CONNECTED] == true"]}
      - {name: sctp, url: "sctp://127.0.0.1:38412", conditions: ["[CONNECTED] == true"]}
      - {name: ws, url: "wss://echo.websocket.org/", conditions: ["[CONNECTED] == true"]}
      - {name: my-grpc, url: "grpc://localhost:50051", conditions: ["[CONNECTED] == true"]}
      - {name: ping-example, url: "icmp://example.com", conditions: ["[CONNECTED] == true"]}
      - name: example-dns-query
        url: "8.8.8.8"
        dns: {query-name: "example.com", query-type: "A"}
        conditions: ["[BODY] == 93.184.215.14", "[DNS_RCODE] == NOERROR"]
      - name: ssh-example-password
        url: "ssh://example.com:22"
        ssh: {username: "username", password: "canary-ssh-password-0f"}
        conditions: ["[CONNECTED] == true", "[STATUS] == 0"]
      - name: starttls-smtp
        url: "starttls://smtp.gmail.com:587"
        conditions: ["[CONNECTED] == true", "[CERTIFICATE_EXPIRATION] > 48h"]
      - {name: tls-ldaps, url: "tls://ldap.example.com:636", conditions: ["[CONNECTED] == true"]}
      - name: check-domain-and-certificate-expiration
        url: "https://example.org"
        interval: 1h
        conditions: ["[DOMAIN_EXPIRATION] > 720h", "[CERTIFICATE_EXPIRATION] > 240h"]
""")


def import_gatus(tmp_path: Path, text: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    source = tmp_path / "config.yaml"
    source.write_text(text)
    output = tmp_path / "opsmon.yml"
    return run_opsmon("import", "gatus", str(source), "-o", str(output)), output


def environment_for(output: Path) -> dict[str, str]:
    """Values for the variables the converted config names (as an operator would set them)."""
    header = [line for line in output.read_text().splitlines() if line.startswith("#   ")]
    names = [line.split()[1].rstrip(":") for line in header]
    return {
        n: f"https://example.invalid/{n.lower()}" if "URL" in n else f"value-{n}" for n in names
    }


def test_documented_example_converts_and_validates(tmp_path: Path) -> None:
    """The README examples become checks, channels, routes and windows that validate."""
    result, output = import_gatus(tmp_path, DOCUMENTED)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(output.read_text())
    names = [c["name"] for c in config["checks"]]
    assert names == [
        "website",
        "back-end",
        "frontend",
        "random-endpoint-that-is-not-part-of-a-group",
        "graphql",
    ]
    website, back_end, frontend, _, graphql = config["checks"]
    assert website["interval"] == "5m" and website["timeout"] == "10s"
    assert (website["failure_threshold"], website["success_threshold"]) == (5, 5)
    assert (frontend["failure_threshold"], frontend["success_threshold"]) == (10, 3)
    assert back_end["service"] == "core"
    assert back_end["conditions"] == ["[STATUS] == 200", "[CERTIFICATE_EXPIRATION] > 48h"]
    assert json.loads(graphql["body"]) == {"query": "{ user(id: 1) { id name } }\n"}
    assert graphql["method"] == "POST" and graphql["interval"] == "60s"
    channels = {c["name"]: c for c in config["alerting"]["channels"]}
    assert channels["slack"]["webhook_url"] == "${SLACK_WEBHOOK_URL}"
    assert channels["email"]["smtp"]["password"] == "${SMTP_PASSWORD}"
    assert channels["email"]["to"] == ["recipient1@example.com", "recipient2@example.com"]
    assert channels["custom"] == {
        "name": "custom",
        "type": "webhook",
        "url": "${CUSTOM_WEBHOOK_URL}",
        "send_resolved": True,
    }
    assert config["alerting"]["routes"] == [
        {"match": {"check": "website"}, "channels": ["slack"]},
        {"match": {"check": "back-end"}, "channels": ["email"]},
        {"match": {"check": "frontend"}, "channels": ["custom"]},
    ]
    windows = {w["name"]: w for w in config["maintenance"]}
    assert windows["gatus-maintenance"] == {
        "name": "gatus-maintenance",
        "weekdays": ["mon", "thu"],
        "start": "23:00",
        "duration": "1h",
        "timezone": "Europe/Amsterdam",
        "comment": "imported from Gatus",
    }
    assert windows["back-end-2"]["match"] == {"check": "back-end"}
    assert windows["back-end-2"]["start"] == "14:30"
    quiet = windows["gatus-endpoints-without-alerts"]["match"]["check"].split("|")
    assert quiet == ["random-endpoint-that-is-not-part-of-a-group", "graphql"]
    validate = run_opsmon(
        "config", "validate", "--config", str(output), env=environment_for(output)
    )
    assert validate.returncode == 0, validate.stdout
    assert "valid (5 checks)" in validate.stdout


def test_every_thing_not_carried_is_one_line_with_a_reason(tmp_path: Path) -> None:
    """What cannot be carried over is named, each on a line with the reason."""
    result, _ = import_gatus(tmp_path, DOCUMENTED)
    lines = result.stderr.splitlines()
    expected = [
        "metrics: not carried over: opsmon always serves Prometheus metrics",
        "storage: not carried over",
        "alerting.pagerduty: not converted: opsmon has no such channel",
        "alerting.email: overrides (per group) not carried over",
        "alerting.custom: body template not carried over",
        "endpoints[0] (website): alerts with different thresholds [(5, 5), (10, 5)]",
        "check website: pagerduty alert dropped: no pagerduty channel",
        "endpoints[1] (back-end).conditions[2]: '[DOMAIN_EXPIRATION] > 720h' not carried over:"
        " opsmon does not look up domain expiry",
        "endpoints[3] (random endpoint that is not part of a group): check named"
        " 'random-endpoint-that-is-not-part-of-a-group'",
        "endpoints[5] (disabled): not converted: disabled in Gatus",
        "alerts: 2 check(s) had no alerts in Gatus",
        "alerting.slack.webhook-url: secret not copied: set ${SLACK_WEBHOOK_URL}",
        "headers.Authorization: secret not copied",
    ]
    for text in expected:
        assert any(text in line for line in lines), (text, lines)
    assert lines[-1].endswith("5 checks converted, " + f"{len(lines) - 1} notes")


def test_every_endpoint_type_is_a_check_or_a_line(tmp_path: Path) -> None:
    """DNS, ICMP, SSH, TCP, ... endpoints are each named as not converted, with the reason."""
    result, output = import_gatus(tmp_path, OTHER_TYPES)
    assert result.returncode == 0, result.stderr
    reasons = {
        "redis": "TCP endpoints",
        "udp": "UDP endpoints",
        "sctp": "SCTP endpoints",
        "ws": "WebSocket endpoints",
        "my-grpc": "gRPC health endpoints",
        "ping-example": "ICMP (ping) endpoints",
        "example-dns-query": "DNS endpoints",
        "ssh-example-password": "SSH endpoints",
        "starttls-smtp": "STARTTLS endpoints",
        "tls-ldaps": "TLS endpoints",
    }
    for name, kind in reasons.items():
        assert f"({name}): not converted: {kind} have no opsmon check type" in result.stderr
    config = yaml.safe_load(output.read_text())
    assert [c["name"] for c in config["checks"]] == ["check-domain-and-certificate-expiration"]
    assert config["checks"][0]["conditions"] == ["[CERTIFICATE_EXPIRATION] > 240h"]
    assert "canary-ssh-password" not in output.read_text() + result.stderr
    validate = run_opsmon("config", "validate", "--config", str(output))
    assert validate.returncode == 0, validate.stdout


def test_no_secret_is_copied(tmp_path: Path) -> None:
    """Webhook URLs, passwords, credential headers and query tokens become ${VAR}s only."""
    result, output = import_gatus(tmp_path, DOCUMENTED)
    written = output.read_text() + result.stdout + result.stderr
    for canary in CANARIES.values():
        assert canary not in written
    assert "canary" not in written
    endpoint = yaml.safe_load(output.read_text())["checks"][3]
    assert endpoint["headers"] == {
        "Authorization": "${RANDOM_ENDPOINT_THAT_IS_NOT_PART_OF_A_GROUP_AUTHORIZATION}",
        "Accept": "application/json",
    }
    assert endpoint["url"].endswith(
        "?api_key=${RANDOM_ENDPOINT_THAT_IS_NOT_PART_OF_A_GROUP_API_KEY}"
    )


def test_body_with_a_credential_is_flagged() -> None:
    """A request body that looks like it holds a credential is named (it cannot be rewritten)."""
    document = {
        "endpoints": [
            {
                "name": "login",
                "url": "http://127.0.0.1:1/",
                "method": "POST",
                "body": '{"user": "probe", "password": "pw"}',
                "conditions": ["[STATUS] == 200"],
            },
            {
                "name": "plain",
                "url": "http://127.0.0.1:1/",
                "method": "POST",
                "body": '{"ping": 1}',
                "conditions": ["[STATUS] == 200"],
            },
        ]
    }
    notes = convert(document, PLACEHOLDERS).notes
    assert [n for n in notes if "looks like it holds a credential" in n] == [
        "endpoints[0] (login): body copied as written and it looks like it holds a credential:"
        " move the value to an environment variable (${VAR})"
    ]


def test_environment_references_are_kept(tmp_path: Path) -> None:
    """Gatus's `$VAR` and `${VAR}` stay references (written `${VAR}`), never new secrets."""
    text = textwrap.dedent("""\
        alerting:
          slack: {webhook-url: "$SLACK_HOOK"}
        endpoints:
          - name: api
            url: "https://${API_HOST}/health"
            headers: {Authorization: "Bearer $API_TOKEN"}
            conditions: ["[STATUS] == 200"]
            alerts: [{type: slack}]
        """)
    conversion = convert(yaml.safe_load(text), PLACEHOLDERS)
    check = conversion.config["checks"][0]
    assert check["url"] == "https://${API_HOST}/health"
    assert check["headers"] == {"Authorization": "Bearer ${API_TOKEN}"}
    assert conversion.config["alerting"]["channels"][0]["webhook_url"] == "${SLACK_HOOK}"
    assert conversion.variables == {}


def test_conditions_that_cannot_work_here_are_named() -> None:
    """A Gatus condition opsmon rejects is dropped with the reason; the check stays."""
    document = {
        "endpoints": [
            {
                "name": "api",
                "url": "http://127.0.0.1:1/",
                "conditions": [
                    "[STATUS] < 1s",
                    "[CERTIFICATE_EXPIRATION] > 48h",
                    "[STATUS] == 200",
                ],
            },
            {"name": "only-bad", "url": "http://127.0.0.1:1/", "conditions": ["1 == 1"]},
        ]
    }
    conversion = convert(document, PLACEHOLDERS)
    assert conversion.config["checks"][0]["conditions"] == ["[STATUS] == 200"]
    assert "conditions" not in conversion.config["checks"][1]
    notes = "\n".join(conversion.notes)
    assert "endpoints[0] (api).conditions[0]: '[STATUS] < 1s' not carried over" in notes
    assert "an http:// URL has no certificate" in notes
    assert "endpoints[1] (only-bad): no condition could be carried" in notes


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A file that is not a Gatus config gets one clear line and exit 2."""
    missing = run_opsmon("import", "gatus", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    listed = run_opsmon("import", "gatus", str(tmp_path / "list.yaml"))
    assert listed.returncode == 2
    assert listed.stderr.strip().endswith("the top level must be a mapping")


def test_stdout_output_when_no_file(tmp_path: Path) -> None:
    """Without -o the config goes to stdout and the notes to stderr."""
    source = tmp_path / "config.yaml"
    source.write_text(OTHER_TYPES)
    result = run_opsmon("import", "gatus", str(source))
    assert result.returncode == 0
    assert yaml.safe_load(result.stdout)["checks"][0]["type"] == "http"
    assert "not converted" not in result.stdout and "not converted" in result.stderr


def test_module_imports_stay_light() -> None:
    """Importing the importer (as `opsmon --help` does) loads no HTTP, Docker or DB library."""
    code = (
        "import sys, monitor.gatus_import; "
        "heavy = {'httpx', 'docker', 'psycopg', 'uvicorn', 'starlette', 'prometheus_client', "
        "'aiosmtplib', 'markdown_it'}; print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- same verdict as Gatus on a local server ---------------------------------------------------

SAME_VERDICT_CONDITIONS = [
    "[STATUS] == 200",
    "[STATUS] < 300",
    "[STATUS] == any(200, 204)",
    "[STATUS] != pat(5*)",
    "[BODY].status == UP",
    "[BODY].version == pat(1.*)",
    "[BODY].build == 31",
    "len([BODY].items) == 3",
    "has([BODY].errors) == false",
    "[BODY].items[0].id == 1",
    "[BODY].user.firstName != [BODY].user.lastName",
    "[BODY].name == any(john, jane)",
    "[RESPONSE_TIME] < 5000",
    "[RESPONSE_TIME] < 5s",
    "[CONNECTED] == true",
    "[IP] == 127.0.0.1",
    "[status] == 200",
]
HEALTHY = {
    "status": "UP",
    "version": "1.4.2",
    "build": "0x1F",
    "items": [{"id": 1}, {"id": 2}, {"id": 3}],
    "user": {"firstName": "john", "lastName": "doe"},
    "name": "jane",
}
DEGRADED = {
    "status": "DOWN",
    "version": "2.0.0",
    "build": "0x20",
    "items": [{"id": 7}],
    "errors": ["database"],
    "user": {"firstName": "doe", "lastName": "doe"},
    "name": "bob",
}
ARRAY_BODY = [{"id": 1}, {"id": 2}]


@pytest.fixture
def target() -> Iterator[Target]:
    with serve() as server:
        yield server


@pytest.mark.parametrize(
    ("status", "body", "conditions"),
    [
        (200, HEALTHY, SAME_VERDICT_CONDITIONS),
        (503, DEGRADED, SAME_VERDICT_CONDITIONS),
        (201, DEGRADED, SAME_VERDICT_CONDITIONS),
        (200, ARRAY_BODY, ["len([BODY]) == 2", "[BODY][1].id == 2", "[BODY][0].id > 0"]),
    ],
    ids=["healthy", "degraded-503", "degraded-201", "array-body"],
)
async def test_converted_check_gives_gatus_verdict(
    tmp_path: Path, target: Target, status: int, body: Any, conditions: list[str]
) -> None:
    """Each condition of a converted check holds exactly when Gatus's semantics say it does."""
    target.routes["/health"] = Answer(status=status, body=json.dumps(body))
    gatus = {"endpoints": [{"name": "api", "url": target.url("/health"), "conditions": conditions}]}
    source = tmp_path / "config.yaml"
    source.write_text(yaml.safe_dump(gatus))
    output = tmp_path / "opsmon.yml"
    assert run_opsmon("import", "gatus", str(source), "-o", str(output)).returncode == 0
    spec = load_config(output, {}).config.checks[0]
    assert isinstance(spec, HttpSpec) and [c.text for c in spec.conditions] == conditions
    context = CheckContext(Metrics(), HttpClients())
    try:
        result = await HttpCheck(spec, context).run()
    finally:
        await context.http.aclose()
    opsmon_failed = {c.condition for c in result.failed_conditions}
    gatus_result = GatusResult(
        status=int(result.facts["STATUS"]),
        body=json.dumps(body).encode(),
        duration_ms=int(result.facts["RESPONSE_TIME"]),
        ip=str(result.facts["IP"]),
        connected=True,
    )
    gatus_failed = {c for c in conditions if not gatus_holds(c, gatus_result)}
    assert opsmon_failed == gatus_failed
    assert result.ok is (not gatus_failed)


@pytest.mark.parametrize(
    ("condition", "result", "holds"),
    [
        ("[STATUS] == 200", GatusResult(status=200), True),
        ("[STATUS] == 200", GatusResult(status=500), False),
        ("[RESPONSE_TIME] < 1s", GatusResult(duration_ms=50), True),
        ("[RESPONSE_TIME] < potato", GatusResult(duration_ms=50), False),
        ("[BODY].data == 12648243", GatusResult(body=b'{"data": "0xC0ff33"}'), True),
        ("len([BODY]) == 20", GatusResult(body=b'{"name": "john.doe"}'), True),
        ("len([BODY][0]) == 23", GatusResult(body=b'[{"age":18,"adult":true}]'), True),
        ("[BODY].data == OK", GatusResult(body=b'{"data": null}'), False),
        ("[BODY].count < 5", GatusResult(body=b"{}"), True),
        ("[BODY] == pat(*john*)", GatusResult(body=b'{"name": "john.doe"}'), True),
        ("any(200, 429) == [STATUS]", GatusResult(status=429), True),
        ("has([BODY].errors) == false", GatusResult(body=b"{}"), True),
        ("[CERTIFICATE_EXPIRATION] == 0", GatusResult(), True),
        ("[BODY].data == pat(*Whatever*)", GatusResult(body=b'{"data": ["a", "Whatever"]}'), True),
    ],
)
def test_gatus_reference_matches_gatus_tests(
    condition: str, result: GatusResult, holds: bool
) -> None:
    """The reference port reproduces Gatus's own test expectations (including where opsmon
    deliberately differs: missing paths compare as 0, len() of an object counts characters)."""
    assert gatus_holds(condition, result) is holds


def test_url_from_the_environment_and_reminders(tmp_path: Path) -> None:
    """A URL that is a `$VAR` converts (said so), validates, and reminders are named."""
    text = textwrap.dedent("""\
        alerting:
          slack: {webhook-url: "$HOOK"}
        endpoints:
          - name: api
            url: "$BASE/health"
            conditions: ["[STATUS] == 200"]
            alerts: [{type: slack, minimum-reminder-interval: 30m}]
        """)
    result, output = import_gatus(tmp_path, text)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(output.read_text())["checks"][0]["url"] == "${BASE}/health"
    assert "url '${BASE}/health' comes from the environment: assumed to be http(s)" in result.stderr
    assert "Gatus reminders (30m) are not carried" in result.stderr
    env = {"BASE": "http://127.0.0.1:9", "HOOK": "https://example.invalid/hook"}
    assert run_opsmon("config", "validate", "--config", str(output), env=env).returncode == 0
