"""API tokens: only digests kept, constant-time lookup, 401 without a valid token, 403 without
the scope, admin may do everything, and a token's value never appears in errors."""

from __future__ import annotations

import pytest

from monitor.api.auth import Outcome, TokenTable, authorize, bearer_token, digest
from monitor.api.config import ApiToken, Scope

READ = "r" * 20
ADMIN = "a" * 20


def _table() -> TokenTable:
    return TokenTable(
        [
            ApiToken(name="grafana", token=READ, scopes=(Scope.READ,)),
            ApiToken(name="ops", token=ADMIN, scopes=(Scope.ADMIN,)),
        ]
    )


def test_bearer_header_parsing() -> None:
    """Only `Bearer <token>` (any case of the scheme) yields a token."""
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


@pytest.mark.parametrize(
    ("header", "scope", "outcome", "who"),
    [
        (None, Scope.READ, Outcome.UNAUTHENTICATED, None),
        ("Bearer wrong-token-value-xx", Scope.READ, Outcome.UNAUTHENTICATED, None),
        (f"Bearer {READ}", Scope.READ, Outcome.ALLOWED, "grafana"),
        (f"Bearer {READ}", Scope.SILENCE, Outcome.FORBIDDEN, "grafana"),
        (f"Bearer {READ}", Scope.ACK, Outcome.FORBIDDEN, "grafana"),
        (f"Bearer {ADMIN}", Scope.SILENCE, Outcome.ALLOWED, "ops"),
        (f"Bearer {ADMIN}", Scope.ACK, Outcome.ALLOWED, "ops"),
    ],
)
def test_authorize(header: str | None, scope: Scope, outcome: Outcome, who: str | None) -> None:
    """401 without a configured token, 403 without the scope, admin has every scope."""
    decision = authorize(header, _table(), scope)
    assert decision.outcome is outcome
    assert (decision.principal.name if decision.principal else None) == who
    assert READ not in decision.message and ADMIN not in decision.message


def test_only_digests_are_kept() -> None:
    """The table holds no token value, only SHA-256 digests."""
    table = _table()
    held = repr(vars(table))
    assert READ not in held and ADMIN not in held
    assert digest(READ).hex() in repr([e.digest.hex() for e in table._entries])
