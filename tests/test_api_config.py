"""The `api` and `status_page` config sections: errors name file, line and key, and a bad token
is never repeated back."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config

GOOD = "a-long-enough-token-value-1"


def _load(tmp_path: Path, text: str, env: dict[str, str]) -> ConfigError | None:
    path = tmp_path / "opsmon.yml"
    path.write_text(textwrap.dedent(text))
    try:
        load_config(path, env)
    except ConfigError as exc:
        return exc
    return None


def test_tokens_from_the_environment_load_and_are_secrets(tmp_path: Path) -> None:
    """A valid section loads; the token value is a secret (masked wherever opsmon prints)."""
    path = tmp_path / "opsmon.yml"
    path.write_text(
        "api:\n  tokens:\n    - {name: ci, token: '${T}', scopes: [read, ack]}\n"
        "status_page: {title: Shop, public: true, services: [backend]}\n"
    )
    loaded = load_config(path, {"T": GOOD})
    assert loaded.config.api.tokens[0].scopes == ("read", "ack")
    assert loaded.config.status_page.public is True
    assert GOOD in loaded.secrets


@pytest.mark.parametrize(
    ("section", "env", "expected"),
    [
        (
            "api:\n  tokens:\n    - {name: ci, token: '${T}', scopes: [read]}\n",
            {"T": "short-secret"},
            "opsmon.yml:3: api.tokens[0].token: a token needs at least 16 characters",
        ),
        (
            "api:\n  tokens:\n    - {name: ci, token: '${T}', scopes: [write]}\n",
            {"T": GOOD},
            "opsmon.yml:3: api.tokens[0].scopes[0]:",
        ),
        (
            "api:\n  tokens:\n    - {name: ci, token: '${T}', scopes: []}\n",
            {"T": GOOD},
            "opsmon.yml:3: api.tokens[0].scopes:",
        ),
        (
            "api:\n  tokens:\n    - {name: a, token: '${T}', scopes: [read]}\n"
            "    - {name: a, token: '${U}', scopes: [read]}\n",
            {"T": GOOD, "U": GOOD + "x"},
            "token names must be unique: a",
        ),
        ("status_page: {public: maybe}\n", {}, "opsmon.yml:1: status_page.public:"),
        ("status_page: {colour: red}\n", {}, "status_page.colour: unknown key"),
    ],
)
def test_bad_sections_name_file_line_and_key(
    tmp_path: Path, section: str, env: dict[str, str], expected: str
) -> None:
    """Each problem is reported as file:line: key: message, without the token's value."""
    error = _load(tmp_path, section, env)
    assert error is not None
    text = "\n".join(str(p) for p in error.problems)
    assert expected in text, text
    for value in env.values():
        assert value not in text
