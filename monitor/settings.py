"""Process settings from the environment (OPSMON_*), as opposed to the config file."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """What the environment may set for this process."""

    model_config = SettingsConfigDict(env_prefix="OPSMON_", extra="ignore")

    config: str | None = None
    listen: str | None = None
    state_dir: str | None = None
    runbooks_dir: str | None = None  # OPSMON_RUNBOOKS_DIR: runbooks other than the bundled ones
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "debug", "info", "warning", "error"] = (
        "INFO"
    )
    log_format: Literal["json", "console"] = "json"
    environment: str = "production"
    sentry_dsn: str | None = Field(
        default=None, validation_alias=AliasChoices("SENTRY_DSN", "OPSMON_SENTRY_DSN")
    )
