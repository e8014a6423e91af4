"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import structlog

from monitor.logs import configure_logging
from monitor.metrics import Metrics
from monitor.redaction import Redactor
from tests.support.receiver import FlipTarget, Receiver

# Tests run checks every few hundred milliseconds; users get the 1 s minimum. Set before any
# test starts so subprocesses (`opsmon run`, `opsmon check`) inherit it too.
os.environ.setdefault("OPSMON_MIN_INTERVAL", "100ms")

# Fixture modules: `postgres` (shared cluster), `make_postgres` (a test's own), ...
pytest_plugins = [
    "tests.support.postgres",
    "tests.support.rollback",
    "tests.support.rollback_daemon",
    "tests.support.rollback_parts",
    "tests.support.gate",
]


@pytest.fixture
def metrics() -> Metrics:
    """A fresh metrics registry for one test."""
    return Metrics()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 that records every request (answers 200 by default)."""
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    """A second, independent receiver (a channel beside `receiver`, or the only one)."""
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def target() -> Iterator[FlipTarget]:
    """A health endpoint whose answer the test flips between healthy and failing."""
    server = FlipTarget().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """Each test starts with JSON logging on stdout and no leftover structlog state."""
    configure_logging(Redactor(), "DEBUG", "json")
    yield
    structlog.contextvars.clear_contextvars()
