"""Process settings from the environment (OPSMON_*), as opposed to the config file."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from monitor.addresses import check_listen

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class Settings(BaseSettings):
    """What the environment may set for this process."""

    model_config = SettingsConfigDict(env_prefix="OPSMON_", extra="ignore")

    config: str | None = None
    listen: str | None = None
    state_dir: str | None = None
    runbooks_dir: str | None = None  # OPSMON_RUNBOOKS_DIR: runbooks other than the bundled ones
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    environment: str = "production"
    sentry_dsn: str | None = Field(
        default=None, validation_alias=AliasChoices("SENTRY_DSN", "OPSMON_SENTRY_DSN")
    )

    @field_validator("listen")
    @classmethod
    def _listen_is_host_port(cls, value: str | None) -> str | None:
        return check_listen(value) if value else None  # empty: not set

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in _LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(_LOG_LEVELS)}")
        return value.upper()


class SettingsError(Exception):
    """The environment sets something this process cannot use; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _variable(loc: tuple[int | str, ...]) -> str:
    name = str(loc[0]) if loc else "?"
    return name if name.isupper() else f"OPSMON_{name.upper()}"


def _message(error: Any) -> str:
    if error["type"] == "literal_error":
        return f"must be one of {error['ctx']['expected']}"
    return str(error["msg"]).removeprefix("Value error, ")


def load_settings() -> Settings:
    """The settings, or SettingsError with `environment: VARIABLE: message` lines (the value
    is never repeated: it may be a secret)."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = [
            f"environment: {_variable(error['loc'])}: {_message(error)}" for error in exc.errors()
        ]
        raise SettingsError(problems) from None
