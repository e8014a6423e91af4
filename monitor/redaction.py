"""Removes secrets from any text that leaves the daemon (logs, errors, alerts, status)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]+(?P<tail>@)")
_KEY_VALUE = re.compile(
    r"(?P<head>\b(?:password|passwd|token|secret|api_key|apikey)\s*[=:]\s*)"
    r"(?P<quote>['\"]?)[^\s'\"&,;]+",
    re.I,
)
_BEARER = re.compile(r"(?P<head>\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{6,}")
# A variant shorter than this is not masked on its own (it would mask ordinary words).
_MIN_VARIANT = 4
# A message that cut a value short ("Bearer abc...") leaks its beginning: a secret's first
# characters right before an ellipsis are masked when at least this many match.
_MIN_TRUNCATED = 8
_ELLIPSIS = re.compile(r"\.\.\.|\u2026")


def spellings(secret: str) -> set[str]:
    """Every form in which `secret` may show up inside an error message: as is, trimmed,
    inside a `repr()` of the string or of its UTF-8 bytes, JSON-escaped, URL-encoded."""
    forms = {secret, secret.strip(), secret.rstrip(), secret.lstrip()}
    for form in list(forms):
        forms |= {
            repr(form)[1:-1],
            repr(form.encode("utf-8", "surrogatepass"))[2:-1],
            json.dumps(form)[1:-1],
            json.dumps(form, ensure_ascii=False)[1:-1],
            quote(form, safe=""),
            quote(form),
            quote_plus(form, safe=""),
        }
    return {form for form in forms if len(form) >= _MIN_VARIANT}


class Redactor:
    """Masks known secrets and secret-shaped text (URL passwords, `password=...`, tokens)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: tuple[str, ...] = ()
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        """Add secret values (e.g. after a config reload); longest first so overlaps mask fully."""
        merged = set(self._secrets) | {form for s in secrets if s for form in spellings(s)}
        self._secrets = tuple(sorted(merged, key=len, reverse=True))

    def text(self, value: str) -> str:
        """`value` with every secret masked."""
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        if _ELLIPSIS.search(value):
            value = self._mask_cut_short(value)
        value = _URL_PASSWORD.sub(rf"\g<head>{MASK}\g<tail>", value)
        value = _KEY_VALUE.sub(rf"\g<head>\g<quote>{MASK}", value)
        return _BEARER.sub(rf"\g<head>{MASK}", value)

    def _mask_cut_short(self, value: str) -> str:
        for match in reversed(list(_ELLIPSIS.finditer(value))):
            end = match.start()
            longest = 0
            for secret in self._secrets:
                for length in range(
                    min(len(secret) - 1, end), max(_MIN_TRUNCATED - 1, longest), -1
                ):
                    if value.startswith(secret[:length], end - length):
                        longest = length
                        break
            if longest:
                value = value[: end - longest] + MASK + value[end:]
        return value

    def value(self, value: Any) -> Any:
        """Any JSON-like value with every string inside it masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        if isinstance(value, bytes | bytearray):
            # A renderer would print these with repr() after redaction ran: mask that text now.
            return self.text(repr(value))
        if isinstance(value, BaseException):
            return self.text(f"{type(value).__name__}: {value}")
        return value
