"""The daemon's runbook pages: `/runbooks` (the index) and `/runbooks/<id>` (one runbook).

Plain HTML, no JavaScript. The catalogue is read at start and again on reload (SIGHUP), so an
edited runbook shows without a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from monitor.logs import get_logger
from monitor.runbook_context import RunbookContext
from monitor.runbooks import (
    SECURITY_HEADERS,
    Catalogue,
    RunbookError,
    load_catalogue,
    localize_runbook,
    render_html,
    render_index,
    render_not_found,
)

if TYPE_CHECKING:
    from monitor.config import Config


class RunbookPages:
    """A daemon component that serves the runbook catalogue as HTML."""

    def __init__(self, runbooks_dir: str | None = None, config: Config | None = None) -> None:
        self._override = runbooks_dir
        self._log = get_logger("runbooks")
        self.catalogue = self._load()
        # Pages show the commands for the running config (URLs, compose file, contacts).
        self.context = RunbookContext.of(config) if config is not None else RunbookContext()

    def _load(self) -> Catalogue:
        try:
            catalogue = load_catalogue(self._override)
        except RunbookError as exc:
            self._log.error("runbooks_unavailable", error=str(exc))
            return Catalogue.of([])
        for problem in catalogue.problems:
            self._log.error("runbook_invalid", problem=problem)
        self._log.debug("runbooks_loaded", count=len(catalogue), folder=str(catalogue.directory))
        return catalogue

    async def start(self) -> None:
        """Nothing to start: the pages are served from the catalogue read at construction."""

    async def stop(self) -> None:
        """Nothing to release."""

    def vet(self, config: Config) -> None:
        """The context the pages render with must build from `config`."""
        RunbookContext.of(config)

    async def reload(self, config: Config) -> None:
        """Read the runbooks folder again; render for the new config."""
        self.catalogue = self._load()
        self.context = RunbookContext.of(config)

    def routes(self) -> Sequence[BaseRoute]:
        """`/runbooks` and `/runbooks/{id}`."""
        return [
            Route("/runbooks", self.index, methods=["GET", "HEAD"]),
            Route("/runbooks/{id:str}", self.page, methods=["GET", "HEAD"]),
        ]

    async def index(self, request: Request) -> Response:
        """The list of every runbook."""
        return HTMLResponse(render_index(self.catalogue), headers=SECURITY_HEADERS)

    async def page(self, request: Request) -> Response:
        """One runbook by id; an alert name redirects to its runbook; anything else is 404."""
        wanted: str = request.path_params["id"]
        catalogue = self.catalogue
        runbook = catalogue.get(wanted.removesuffix(".md"))
        if runbook is not None:
            shown = localize_runbook(runbook, self.context)
            return HTMLResponse(render_html(shown, catalogue), headers=SECURITY_HEADERS)
        by_alert = catalogue.for_alert(wanted)
        if by_alert is not None:
            return RedirectResponse(by_alert.id, status_code=308)
        return HTMLResponse(render_not_found(wanted), status_code=404, headers=SECURITY_HEADERS)
