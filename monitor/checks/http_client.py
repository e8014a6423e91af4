"""The shared httpx client of the checks (and notifiers): the lean transport, and a cookie jar
that reads a response only when it sets cookies."""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from monitor.checks.http_transport import H11Transport


class _SetCookieOnly(httpx.Cookies):
    """httpx.Cookies that skips responses without Set-Cookie.

    httpx hands every response to the stdlib cookie jar, which first rebuilds the request and
    the headers as urllib and email objects: ~0.15 ms per check, for health endpoints that set
    no cookies. Without a Set-Cookie (or Set-Cookie2) header the jar would store nothing, so
    skipping it changes nothing; responses that set cookies go through it as before.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


class SharedClient(httpx.AsyncClient):
    """httpx.AsyncClient over an H11Transport, with the cookie jar above."""

    def __init__(self, ssl_context: ssl.SSLContext, max_connections: int) -> None:
        super().__init__(transport=H11Transport(ssl_context, max_connections), trust_env=False)
        self._jar = _SetCookieOnly()

    @property
    def cookies(self) -> httpx.Cookies:
        """The cookies the client holds (set by responses, sent with later requests)."""
        return self._jar

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._jar = _SetCookieOnly(cookies)
