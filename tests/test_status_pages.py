"""The status page in a real browser (headless Chromium) against a running `opsmon run` with
history seeded through its own store, plus who may see the page and the badges."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from monitor.api.auth import TokenTable
from monitor.api.config import ApiToken, Scope
from monitor.status.config import StatusPageConfig
from monitor.status.data import NoIncidents, StatusData
from monitor.status.pages import StatusPages
from monitor.status.rollup import DAY, Sample
from monitor.status.store import HistoryRecorder, open_history
from monitor.status.view import CheckInfo
from tests.support.browser import DESKTOP, PHONE, chromium
from tests.support.receiver import FlipTarget
from tests.support.status import Daemon, status_daemon, write_config
from tests.support.waiting import wait_until

DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "status-page.png"
CHECKS = {  # name -> service
    "frontend-health": "frontend",
    "backend-health": "backend",
    "backend-ready": "backend",
    "database": "database",
}


def _seed(state_dir: Path, now: float) -> None:
    """90 days of history for every check, written through the daemon's history store."""
    store, close = open_history(state_dir)
    samples = []
    for n, name in enumerate(CHECKS):
        for day in range(1, 90):
            for run in range(144):  # every 10 minutes
                at = now - day * DAY + run * 600 - 43200
                # Some down days (12 failures) and degraded ones (1), different per check.
                down = day % (17 + n) == 0 and run < 12
                degraded = day % (7 + n) == 3 and run == 5
                ok = not (down or degraded)
                samples.append(Sample(name, at, ok, 40.0 + (run * 7 + day * 3 + n * 11) % 180))
    store.add_samples(samples)
    close()


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, FlipTarget]]:
    """A daemon whose checks all answer from one flip target, after 90 days of seeded history;
    the target failed and recovered once, so there is an incident."""
    tmp_path = tmp_path_factory.mktemp("status")
    target = FlipTarget().start()
    config = write_config(
        tmp_path,
        [
            {"name": name, "type": "http", "service": service, "url": target.url}
            for name, service in CHECKS.items()
        ],
        alerting={
            "group_wait": "0s",
            "channels": [{"name": "hooks", "type": "webhook", "url": "http://127.0.0.1:9/"}],
        },
        status_page={"title": "Example shop status"},
    )
    _seed(tmp_path / "state", datetime.now(UTC).timestamp())
    try:
        with status_daemon(config) as daemon:
            target.healthy = False
            wait_until(lambda: "Some checks are down" in daemon.client.get("/status").text)
            target.healthy = True
            wait_until(lambda: "All checks are up" in daemon.client.get("/status").text)
            yield daemon, target
    finally:
        target.stop()


def test_page_shows_every_check_with_bars_uptime_and_the_incident(
    page: tuple[Daemon, FlipTarget],
) -> None:
    """In Chromium: every check has 90 bars with tooltips, four uptime figures, its state; the
    outage just seen is in the timeline; screenshots at desktop and phone width are saved."""
    daemon, _ = page
    with chromium() as browser:
        browser.open(f"{daemon.url}/status")
        for name in CHECKS:
            item = f"#check-{name}"
            assert browser.count(f"{item} .bars i") == 90
            assert browser.count(f"{item} .bars i[title]") == 90
            assert browser.count(f"{item} dl.uptime dd") == 4
            assert "Up" in browser.text(f"{item} .head")
        bars = browser.script(
            "return [...document.querySelectorAll('#check-backend-health .bars i')]"
            ".map(e => [e.className, e.getAttribute('title'), e.getBoundingClientRect().height])"
        )
        heights = {cls: h for cls, _, h in bars}
        assert heights["u"] > heights["g"] > heights["d"] > 0  # a shape cue beside the colour
        assert any("down" in title for _, title, _ in bars)
        timeline = browser.text("ol.timeline")
        assert any(f"on {name}\n" in timeline for name in CHECKS)
        assert "resolved" in timeline
        desktop = browser.screenshot("status-page-desktop", DESKTOP)
        phone = browser.screenshot("status-page-phone", PHONE)
        browser.resize(PHONE)
        assert not browser.page_width_overflows()  # no sideways scrolling on a phone
    assert desktop.stat().st_size > 10_000 and phone.stat().st_size > 10_000
    if os.environ.get("OPSMON_UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(desktop, DOCS_SCREENSHOT)


@pytest.mark.parametrize("path", ["/status", "/status/backend-health"])
def test_pages_pass_axe_without_serious_violations(
    page: tuple[Daemon, FlipTarget], path: str
) -> None:
    """axe-core finds no serious or critical accessibility violation on either page."""
    daemon, _ = page
    with chromium() as browser:
        browser.open(daemon.url + path)
        violations = browser.axe()
        browser.screenshot("check-page-desktop" if path != "/status" else "status-axe", DESKTOP)
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], serious


def test_check_page_draws_the_response_time_chart(page: tuple[Daemon, FlipTarget]) -> None:
    """One check's page has the inline SVG chart with p50 and p95 lines and a day table."""
    daemon, _ = page
    with chromium() as browser:
        browser.open(f"{daemon.url}/status/backend-health")
        assert browser.count("svg.chart path.p50") == 1
        assert browser.count("svg.chart path.p95") == 1
        assert browser.count("table tbody tr") >= 89
        assert "p50" in browser.text("main")
        browser.screenshot("check-page-phone", PHONE)
        browser.resize(PHONE)
        assert not browser.page_width_overflows()


def test_badges_are_svg_with_the_state_and_uptime(page: tuple[Daemon, FlipTarget]) -> None:
    """The health and uptime badges answer SVG; a bad window is 422, an unknown check 404."""
    daemon, _ = page
    health = daemon.client.get("/api/v1/badges/database/health.svg")
    assert health.headers["content-type"] == "image/svg+xml"
    assert ">up</text>" in health.text
    uptime = daemon.client.get("/api/v1/badges/database/uptime/90d.svg")
    assert "database uptime 90d" in uptime.text and "%" in uptime.text
    assert daemon.client.get("/api/v1/badges/database/uptime/1y.svg").status_code == 422
    assert daemon.client.get("/api/v1/badges/nope/health.svg").status_code == 404
    assert daemon.client.get("/status/nope").status_code == 404


# --- who may see the page (an ASGI client with a non-loopback address) ----------------------
READ = "reader-token-0123456789"
SILENCE = "silence-token-0123456789"


def _app(tmp_path: Path, config: StatusPageConfig) -> Starlette:
    store, _ = open_history(tmp_path)
    now = datetime.now(UTC)
    checks = [CheckInfo("api", "http", "backend", "healthy", now)]

    class Checks:
        def checks(self) -> list[CheckInfo]:
            return checks

    class Clock:
        def now(self) -> datetime:
            return now

        def monotonic(self) -> float:
            return 0.0

    data = StatusData(Checks(), store, HistoryRecorder(store), NoIncidents(), Clock())
    tokens = TokenTable(
        [
            ApiToken(name="r", token=READ, scopes=(Scope.READ,)),
            ApiToken(name="s", token=SILENCE, scopes=(Scope.SILENCE,)),
        ]
    )
    return Starlette(routes=list(StatusPages(data, lambda: config, lambda: tokens).routes()))


async def _get(app: Starlette, path: str, client: str, token: str | None = None) -> int:
    transport = httpx.ASGITransport(app=app, client=(client, 50000))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://opsmon") as http:
        return (await http.get(path, headers=headers)).status_code


@pytest.mark.parametrize("path", ["/status", "/status/api", "/api/v1/badges/api/health.svg"])
async def test_a_private_page_needs_loopback_or_a_read_token(tmp_path: Path, path: str) -> None:
    """Not public: loopback sees it; elsewhere 401 without a token, 403 without read, 200 with."""
    app = _app(tmp_path, StatusPageConfig())
    assert await _get(app, path, "127.0.0.1") == 200
    assert await _get(app, path, "::1") == 200
    assert await _get(app, path, "198.51.100.7") == 401
    assert await _get(app, path, "198.51.100.7", SILENCE) == 403
    assert await _get(app, path, "198.51.100.7", READ) == 200


async def test_a_public_page_is_open_and_a_disabled_one_is_gone(tmp_path: Path) -> None:
    """public: true serves everyone; enabled: false answers 404 even on loopback."""
    public = _app(tmp_path / "a", StatusPageConfig(public=True))
    assert await _get(public, "/status", "198.51.100.7") == 200
    disabled = _app(tmp_path / "b", StatusPageConfig(enabled=False))
    assert await _get(disabled, "/status", "127.0.0.1") == 404
    assert await _get(disabled, "/api/v1/badges/api/health.svg", "127.0.0.1") == 404
