"""Which config values are secrets: declared on the pydantic fields, collected after loading.

    password: Annotated[str | None, SECRET] = None
    dsn: Annotated[str, Secret(parts=password_candidates)]   # only the password part

A value is secret because of the key it is written under, never because of where it came
from: an address read from the environment is still just an address.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel

# Shorter values are not masked: redacting "db" everywhere would protect nothing and make
# every log line unreadable.
MIN_SECRET_LENGTH = 4


@dataclass(frozen=True)
class Secret:
    """Field metadata: the field's value (a string, or a mapping's values) is a secret.

    `parts` picks the secret parts of a value (a DSN's password) instead of the whole."""

    parts: Callable[[str], Iterable[str]] | None = None

    def values_of(self, value: object) -> set[str]:
        """The secret strings inside `value`."""
        if isinstance(value, str):
            return set(self.parts(value)) if self.parts else {value}
        if isinstance(value, Mapping):
            return {found for item in value.values() for found in self.values_of(item)}
        if isinstance(value, list | tuple):
            return {found for item in value for found in self.values_of(item)}
        return set()


SECRET = Secret()


def secret_values(value: object) -> frozenset[str]:
    """Every secret held by the fields marked `Secret` in a model and the models inside it."""
    found: set[str] = set()
    _collect(value, found)
    return frozenset(v for v in found if len(v) >= MIN_SECRET_LENGTH)


def _collect(value: object, found: set[str]) -> None:
    if isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            item = getattr(value, name)
            markers = [m for m in info.metadata if isinstance(m, Secret)]
            for marker in markers:
                found |= marker.values_of(item)
            if not markers:
                _collect(item, found)
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, found)
