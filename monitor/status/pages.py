"""HTTP side of the status page: `/status`, `/status/<check>` and the badges.

Who may look (`status_page.public`): when public, anyone who reaches the listen address;
otherwise requests from the loopback interface, and any request that carries an API token
with the `read` scope (e.g. added by a reverse proxy). Everyone else gets 401.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from monitor.api.auth import Outcome, TokenTable, authorize
from monitor.api.config import Scope
from monitor.status.badges import health_badge, uptime_badge
from monitor.status.config import StatusPageConfig
from monitor.status.data import StatusData
from monitor.status.html import (
    Cells,
    Strip,
    bar_cells,
    join_cells,
    render_check,
    render_not_found,
    render_status,
    strip_html,
)
from monitor.status.view import CheckRow, check_view, status_view

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self';"
    " frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
BADGE_HEADERS = {
    "Cache-Control": "no-cache, max-age=0",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}
UPTIME_WINDOWS = ("7d", "30d", "90d")


def from_loopback(request: Request) -> bool:
    """Whether the request came from this host's loopback interface."""
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class StatusPages:
    """The page, the check pages and the badges, over `StatusData`."""

    def __init__(
        self,
        data: StatusData,
        config: Callable[[], StatusPageConfig],
        tokens: Callable[[], TokenTable],
    ) -> None:
        self._data = data
        self._config = config
        self._tokens = tokens
        self._strips_key: object = None
        self._strips: dict[str, Cells] = {}

    def routes(self) -> Sequence[BaseRoute]:
        """The routes (templates are what the request metrics count by)."""
        return [
            Route("/status", self.page, methods=["GET", "HEAD"]),
            Route("/status/{check}", self.check_page, methods=["GET", "HEAD"]),
            Route("/api/v1/badges/{check}/health.svg", self.health_badge, methods=["GET", "HEAD"]),
            Route(
                "/api/v1/badges/{check}/uptime/{window}.svg",
                self.uptime_badge,
                methods=["GET", "HEAD"],
            ),
        ]

    def _refused(self, request: Request, html: bool) -> Response | None:
        """None when the request may see the page, else the answer that refuses it."""
        config = self._config()
        if not config.enabled:
            return _not_found(html, "the status page is disabled (status_page.enabled: false)")
        if config.public or from_loopback(request):
            return None
        decision = authorize(request.headers.get("authorization"), self._tokens(), Scope.READ)
        if decision.outcome is Outcome.ALLOWED:
            return None
        code = decision.outcome.value
        message = (
            "this status page is not public: send an API token with the read scope"
            if code == 401
            else decision.message
        )
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else {}
        return JSONResponse({"error": message}, status_code=code, headers=headers)

    async def page(self, request: Request) -> Response:
        """`GET /status`."""
        refused = self._refused(request, html=True)
        if refused is not None:
            return refused
        config = self._config()
        now = self._data.clock.now()
        view = status_view(
            config.title,
            self._data.checks.checks(),
            self._data.overview(now.timestamp()),
            self._data.recent_incidents(),
            config.services,
            now,
        )
        return HTMLResponse(render_status(view, self._strip()), headers=SECURITY_HEADERS)

    def _strip(self) -> Strip:
        """Draws a check's bars, reusing the HTML of the days before today while the store's
        past is unchanged (the same key under which `StatusData` keeps those days' bars)."""
        key = self._data.past_key
        if key != self._strips_key:
            self._strips_key, self._strips = key, {}
        cache = self._strips

        def strip(row: CheckRow) -> str:
            past = cache.get(row.info.name)
            if past is None or len(row.bars) != 90:
                past = cache[row.info.name] = bar_cells(row.bars[:-1])
            return strip_html(row.info.name, join_cells(past, bar_cells(row.bars[-1:])))

        return strip

    async def check_page(self, request: Request) -> Response:
        """`GET /status/<check>`."""
        refused = self._refused(request, html=True)
        if refused is not None:
            return refused
        config = self._config()
        name: str = request.path_params["check"]
        now = self._data.clock.now()
        info = self._data.check(name)
        if info is None or (config.services and (info.service or "") not in config.services):
            return HTMLResponse(
                render_not_found(config.title, name, now), status_code=404, headers=SECURITY_HEADERS
            )
        days, hours = self._data.history(now.timestamp(), name, histograms=True)
        view = check_view(
            config.title,
            info,
            days.get(name, []),
            hours.get(name, []),
            self._data.recent_incidents(200),
            now,
        )
        return HTMLResponse(render_check(view), headers=SECURITY_HEADERS)

    async def health_badge(self, request: Request) -> Response:
        """`GET /api/v1/badges/<check>/health.svg`."""
        refused = self._refused(request, html=False)
        if refused is not None:
            return refused
        info = self._data.check(request.path_params["check"])
        if info is None:
            return _not_found(False, f"no check called {request.path_params['check']!r}")
        return Response(
            health_badge(info.name, info.state), media_type="image/svg+xml", headers=BADGE_HEADERS
        )

    async def uptime_badge(self, request: Request) -> Response:
        """`GET /api/v1/badges/<check>/uptime/<7d|30d|90d>.svg`."""
        refused = self._refused(request, html=False)
        if refused is not None:
            return refused
        window: str = request.path_params["window"]
        if window not in UPTIME_WINDOWS:
            return JSONResponse(
                {"error": f"window must be one of {', '.join(UPTIME_WINDOWS)}, not {window!r}"},
                status_code=422,
            )
        info = self._data.check(request.path_params["check"])
        if info is None:
            return _not_found(False, f"no check called {request.path_params['check']!r}")
        uptime = self._data.uptime(info.name, self._data.clock.now().timestamp())
        value = {"7d": uptime.week, "30d": uptime.month, "90d": uptime.quarter}[window]
        return Response(
            uptime_badge(info.name, window, value),
            media_type="image/svg+xml",
            headers=BADGE_HEADERS,
        )


def _not_found(html: bool, message: str) -> Response:
    if html:
        return HTMLResponse(f"<!doctype html><title>Not found</title><p>{escape(message)}</p>", 404)
    return JSONResponse({"error": message}, status_code=404)
