"""Secrets never leave the daemon: known values and secret-shaped text are masked."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest

from monitor.redaction import Redactor


def test_known_secret_values_masked_everywhere() -> None:
    """A value registered as secret is masked wherever it appears, nested too."""
    redactor = Redactor(["canary-Secret-42"])
    assert redactor.text("token canary-Secret-42 leaked") == "token *** leaked"
    assert redactor.value({"a": ["x canary-Secret-42"], "n": 3}) == {"a": ["x ***"], "n": 3}


def test_url_passwords_masked() -> None:
    """A DSN or URL with user:password@ keeps the user and host, loses the password."""
    text = Redactor().text("connect to postgresql://app:hunter2@db:5432/app failed")
    assert text == "connect to postgresql://app:***@db:5432/app failed"


def test_key_value_passwords_and_bearer_tokens_masked() -> None:
    """`password=...` and `Bearer ...` are masked even when the value was never registered."""
    redactor = Redactor()
    assert redactor.text("host=db password=s3cr3t user=app") == "host=db password=*** user=app"
    assert redactor.text("Authorization: Bearer abcdef123456") == "Authorization: Bearer ***"


def test_update_adds_secrets_after_reload() -> None:
    """Secrets from a reloaded config are masked too."""
    redactor = Redactor()
    redactor.update(["new-secret-value"])
    assert redactor.text("x new-secret-value") == "x ***"


def test_overlapping_secrets_mask_the_longest() -> None:
    """When one secret contains another, the whole longer one is masked."""
    redactor = Redactor(["abcdef", "abcdef-ghijkl"])
    assert redactor.text("abcdef-ghijkl") == "***"


SECRET_VALUE = 'Bearer c"an\\ary-S\u00e9 '


@pytest.mark.parametrize(
    ("form", "shown"),
    [
        ("repr", repr(SECRET_VALUE)),
        ("bytes repr", repr(SECRET_VALUE.encode())),
        ("JSON-escaped", json.dumps(SECRET_VALUE)),
        ("JSON-escaped, UTF-8 kept", json.dumps(SECRET_VALUE, ensure_ascii=False)),
        ("URL-encoded", quote(SECRET_VALUE, safe="")),
        ("form-encoded", quote_plus(SECRET_VALUE)),
        ("trimmed", SECRET_VALUE.strip()),
        ("CR trimmed", 'Bearer c"an\\ary-S\u00e9'),
    ],
)
def test_secret_masked_however_an_error_message_spells_it(form: str, shown: str) -> None:
    """A secret quoted, escaped, encoded or trimmed inside an error message is still masked."""
    redactor = Redactor([SECRET_VALUE + "\r"])
    masked = redactor.text(f"Illegal header value {shown} (in {form})")
    assert 'c\\"an' not in masked and "ary-S" not in masked, masked
    assert "***" in masked


def test_secret_cut_short_before_an_ellipsis_is_masked() -> None:
    """A message that shows only the first part of a long secret ("Bearer abcd...") masks it."""
    secret = "Bearer " + "k9Xw2" * 20
    redactor = Redactor([secret])
    shown = f"[BODY].status ({secret[:77]}...) == ok"
    assert redactor.text(shown) == "[BODY].status (***...) == ok"
    assert redactor.text("loading... done") == "loading... done"
