"""Secret config values are found by the `Secret` marker on their fields."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel

from monitor.secrets import SECRET, Secret, secret_values


def _password(dsn: str) -> list[str]:
    return [dsn.split(":")[2].split("@")[0]]


class Inner(BaseModel):
    token: Annotated[str | None, SECRET] = None
    address: str = ""


class Outer(BaseModel):
    headers: Annotated[dict[str, str], SECRET] = {}
    dsn: Annotated[str, Secret(parts=_password)] = ""
    inner: tuple[Inner, ...] = ()
    plain: str = ""


def test_marked_fields_and_parts_are_secrets_and_nothing_else() -> None:
    """Marked values (mapping values, picked parts, nested models) are found; the rest is not."""
    model = Outer(
        headers={"Authorization": "Bearer abc123", "Accept": "application/json"},
        dsn="postgresql://app:pw-canary@db:5432/app",
        inner=(Inner(token="tok-canary", address="127.0.0.1:9110"), Inner()),
        plain="not-a-secret",
    )
    assert secret_values(model) == {
        "Bearer abc123",
        "application/json",
        "pw-canary",
        "tok-canary",
    }


def test_short_values_are_not_masked() -> None:
    """Values under four characters would mask ordinary words, so they are left out."""
    assert secret_values(Inner(token="abc")) == frozenset()
