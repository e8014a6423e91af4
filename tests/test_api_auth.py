"""API tokens: only digests kept, constant-time lookup, 401 without a valid token, 403 without
the scope, admin may do everything, and a token's value never appears in errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from monitor.api.auth import Outcome, TokenTable, authorize, bearer_token, digest
from monitor.api.config import ApiConfig, ApiToken, Scope

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


def test_short_duplicate_or_scopeless_tokens_are_config_errors() -> None:
    """A short token, two tokens with one name or one value, or no scopes are rejected, and the
    message never repeats the token."""
    with pytest.raises(ValidationError) as short:
        ApiToken(name="x", token="secret-short", scopes=(Scope.READ,))
    messages = " ".join(e["msg"] for e in short.value.errors())  # what config validate prints
    assert "16 characters" in messages and "secret-short" not in messages
    with pytest.raises(ValidationError, match="unique"):
        ApiConfig.model_validate({"tokens": [{"name": "a", "token": READ, "scopes": ["read"]}] * 2})
    with pytest.raises(ValidationError, match="same value"):
        ApiConfig.model_validate(
            {
                "tokens": [
                    {"name": "a", "token": READ, "scopes": ["read"]},
                    {"name": "b", "token": READ, "scopes": ["ack"]},
                ]
            }
        )
    with pytest.raises(ValidationError):
        ApiToken.model_validate({"name": "a", "token": READ, "scopes": []})
    with pytest.raises(ValidationError):
        ApiToken.model_validate({"name": "a", "token": READ, "scopes": ["write"]})
