"""structlog configuration: one JSON object per line (or console text), secrets redacted."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from monitor.redaction import Redactor


class RedactSecrets:
    """A structlog processor that masks secrets in every value of the event."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        return {key: self._redactor.value(value) for key, value in event.items()}


def configure_logging(
    redactor: Redactor, level: str = "INFO", fmt: str = "json", stream: TextIO | None = None
) -> None:
    """Route structlog and the stdlib loggers (httpx, apscheduler, docker) through one renderer."""
    stream = stream or sys.stdout
    stamped: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[*stamped, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*stamped, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            RedactSecrets(redactor),
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries are chatty at DEBUG and INFO; their warnings still come through.
    for name in (
        "httpx",
        "httpcore",
        "apscheduler",
        "docker",
        "urllib3",
        "uvicorn",
        "asyncio",
        "psycopg",
        "markdown_it",
    ):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def get_logger(component: str, **bound: Any) -> structlog.stdlib.BoundLogger:
    """A logger whose lines carry `component` (and whatever else is bound)."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger("opsmon").bind(
        component=component, **bound
    )
    return logger
