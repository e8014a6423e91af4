"""Bearer-token authentication and scope checks: pure functions, no I/O.

Only SHA-256 digests of the configured tokens are kept. A presented token is hashed and
compared with every stored digest by `hmac.compare_digest` (no early exit), so neither the
comparison nor the loop tells an attacker how much of a guess was right. Tokens never reach
a log line: callers log the token's *name*.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from monitor.api.config import ApiToken, Scope


def digest(token: str) -> bytes:
    """The SHA-256 digest a token is kept as."""
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True)
class Principal:
    """Who a valid token belongs to and what it may do."""

    name: str
    scopes: frozenset[Scope]

    def may(self, scope: Scope) -> bool:
        """Whether the token has `scope` (admin has every scope)."""
        return scope in self.scopes or Scope.ADMIN in self.scopes


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    principal: Principal


class TokenTable:
    """The configured tokens, as digests."""

    def __init__(self, tokens: Iterable[ApiToken] = ()) -> None:
        self._entries = tuple(
            _Entry(digest(t.token), Principal(t.name, frozenset(t.scopes))) for t in tokens
        )

    def __len__(self) -> int:
        return len(self._entries)

    def identify(self, token: str) -> Principal | None:
        """The principal of `token`, or None; compares against every entry in constant time."""
        presented = digest(token)
        found: Principal | None = None
        for entry in self._entries:
            if hmac.compare_digest(presented, entry.digest):
                found = entry.principal
        return found


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        return None
    return value


class Outcome(Enum):
    """What the API answers a request's credentials with."""

    ALLOWED = 200
    UNAUTHENTICATED = 401  # no token, or one that is not configured
    FORBIDDEN = 403  # a valid token without the needed scope


@dataclass(frozen=True)
class Decision:
    """The outcome, the principal when the token was valid, and the message for the client."""

    outcome: Outcome
    principal: Principal | None
    message: str


def authorize(authorization: str | None, table: TokenTable, scope: Scope) -> Decision:
    """Decide a request that needs `scope`, given its Authorization header."""
    token = bearer_token(authorization)
    if token is None:
        return Decision(
            Outcome.UNAUTHENTICATED, None, "missing bearer token (Authorization: Bearer <token>)"
        )
    principal = table.identify(token)
    if principal is None:
        return Decision(Outcome.UNAUTHENTICATED, None, "invalid token")
    if not principal.may(scope):
        return Decision(
            Outcome.FORBIDDEN,
            principal,
            f"token {principal.name!r} lacks the {scope.value!r} scope",
        )
    return Decision(Outcome.ALLOWED, principal, "ok")
