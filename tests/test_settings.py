"""Environment settings are checked like the config: one line per problem, naming the variable."""

from __future__ import annotations

import pytest

from monitor.settings import SettingsError, load_settings


def test_bad_settings_name_the_variable_not_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every bad OPSMON_* variable is listed; values (maybe secrets) are never repeated."""
    monkeypatch.setenv("OPSMON_LISTEN", "secret-host-canary")
    monkeypatch.setenv("OPSMON_LOG_LEVEL", "loud-canary")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.problems == [
        "environment: OPSMON_LISTEN: must be HOST:PORT, e.g. 127.0.0.1:9110 or [::1]:9110",
        "environment: OPSMON_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR",
    ]
    assert "canary" not in str(caught.value)


def test_good_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lower-case levels are accepted and an empty OPSMON_LISTEN means unset."""
    monkeypatch.setenv("OPSMON_LISTEN", "")
    monkeypatch.setenv("OPSMON_LOG_LEVEL", "debug")
    settings = load_settings()
    assert (settings.listen, settings.log_level) == (None, "DEBUG")
