"""The `api:` section of the config file: bearer tokens and their scopes.

```yaml
api:
  tokens:
    - {name: grafana, token: "${OPSMON_READ_TOKEN}", scopes: [read]}
    - {name: oncall, token: "${OPSMON_ONCALL_TOKEN}", scopes: [read, ack, silence]}
    - {name: ops, token: "${OPSMON_ADMIN_TOKEN}", scopes: [admin]}
```
A token is a secret: it comes from the environment, is never logged or shown, and opsmon
keeps only its SHA-256 digest once the config is loaded (`monitor.api.auth`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.secrets import SECRET

MIN_TOKEN_LENGTH = 16


class Scope(StrEnum):
    """What a token may do; `admin` may do everything."""

    READ = "read"
    SILENCE = "silence"
    ACK = "ack"
    ADMIN = "admin"


class ApiToken(BaseModel):
    """One token: who it is (shown as the author of acks and silences) and its scopes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$", max_length=63)
    token: Annotated[str, SECRET] = Field(repr=False)
    scopes: tuple[Scope, ...] = Field(min_length=1)

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if len(value) < MIN_TOKEN_LENGTH:
            # Never echo the value: it is a secret, even when it is a bad one.
            raise ValueError(
                f"a token needs at least {MIN_TOKEN_LENGTH} characters"
                " (e.g. `openssl rand -hex 32`)"
            )
        return value


class ApiConfig(BaseModel):
    """The API's tokens; without any, every /api/v1/ route except the OpenAPI document and
    public badges answers 401."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: tuple[ApiToken, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> ApiConfig:
        names = [t.name for t in self.tokens]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"token names must be unique: {', '.join(duplicated)}")
        values = [t.token for t in self.tokens]
        if len(set(values)) != len(values):
            raise ValueError("two tokens have the same value; give each its own")
        return self
