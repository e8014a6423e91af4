"""The condition language: placeholders, JSON paths, operators, functions and failure details."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.conditions import Condition, ConditionSyntaxError, Facts

BODY = (
    '{"status": "ok", "services": {"database": "error", "mastra": "ok"},'
    ' "items": [{"id": 1}, {"id": 2}], "ready": true, "version": "1.4.2"}'
)


def check(text: str, **facts: Any) -> tuple[bool, str]:
    values = {"STATUS": 200, "BODY": BODY, "RESPONSE_TIME": 120.0} | facts
    result = Condition.parse(text).evaluate(Facts(values))
    return result.ok, result.detail


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("[STATUS] == 200", True),
        ("[STATUS] != 200", False),
        ("[STATUS] < 300", True),
        ("[STATUS] >= 500", False),
        ("[BODY].status == ok", True),
        ("[BODY].services.database == ok", False),
        ("[BODY].items[1].id == 2", True),
        ("[BODY].ready == true", True),
        ("len([BODY].items) == 2", True),
        ("len([BODY].items) < 2", False),
        ("has([BODY].services.mastra) == true", True),
        ("has([BODY].errors) == false", True),
        ("[BODY].version == pat(1.4.*)", True),
        ("[BODY].version == pat(2.*)", False),
        ("[STATUS] == any(200, 204)", True),
        ("[STATUS] == any(500, 503)", False),
        ("[STATUS] != any(500, 503)", True),
        ("[RESPONSE_TIME] < 1500", True),
        ("[RESPONSE_TIME] < 100ms", False),
        ("[RESPONSE_TIME] <= 1s", True),
        ('[BODY].status == "ok"', True),
    ],
)
def test_operators_and_functions(condition: str, expected: bool) -> None:
    """Each operator and function decides as Gatus users expect."""
    assert check(condition)[0] is expected


def test_failure_detail_shows_actual_value() -> None:
    """A failed condition shows the value that was seen, as on-call reads it."""
    assert check("[STATUS] == 200", STATUS=503) == (False, "[STATUS] (503) == 200")
    _, detail = check("[BODY].services.database == ok")
    assert detail == "[BODY].services.database (error) == ok"


def test_missing_path_shows_missing() -> None:
    """A JSON path that is absent fails and says <missing>."""
    assert check("[BODY].nope.deeper == 1") == (False, "[BODY].nope.deeper (<missing>) == 1")


def test_non_json_body_fails_with_reason() -> None:
    """A body condition on a non-JSON body fails with 'is not JSON' instead of raising."""
    ok, detail = check("[BODY].status == ok", BODY="<html>502 Bad Gateway</html>")
    assert not ok and "[BODY] is not JSON" in detail


def test_ordering_on_text_fails_readably() -> None:
    """Comparing text with < fails with 'cannot compare' rather than raising."""
    ok, detail = check("[BODY].status < 5")
    assert not ok and "cannot compare" in detail


def test_lone_operands_are_truthiness() -> None:
    """`[CONNECTED]` and `has(list, item)` stand alone as conditions."""
    assert check("[CONNECTED]", CONNECTED=True)[0]
    assert not check("[CONNECTED]", CONNECTED=False)[0]
    assert check("has([EXTENSIONS], vector)", EXTENSIONS=["plpgsql", "vector"])[0]
    assert not check("has([EXTENSIONS], vector)", EXTENSIONS=["plpgsql"])[0]


def test_unknown_placeholder_fails_with_reason() -> None:
    """A placeholder the check type does not provide fails and names the placeholder."""
    ok, detail = check("[IN_RECOVERY] == false")
    assert not ok and "[IN_RECOVERY] is not known" in detail


def test_placeholders_are_reported() -> None:
    """A condition knows which placeholders it reads (diagnosis uses it to spot latency-only)."""
    assert Condition.parse("len([BODY].items) < [STATUS]").placeholders == {"BODY", "STATUS"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "non-empty"),
        ("ok", "no operator"),
        ("[STATUS == 200", "malformed placeholder"),
        ("[STATUS] < pat(2*)", "only with == and !="),
        ("len([BODY].a, [BODY].b) == 1", r"len\(\) takes 1 argument\(s\), got 2"),
    ],
)
def test_syntax_errors_are_specific(text: str, message: str) -> None:
    """Malformed conditions are rejected at load time with a specific message."""
    with pytest.raises(ConditionSyntaxError, match=message):
        Condition.parse(text)


def test_failure_on_an_absent_value_is_marked_absent() -> None:
    """A failure whose value was not there (absent path, non-JSON body) is marked absent;
    one that saw a different value is not, so diagnosis can tell the two apart."""
    facts = {"STATUS": 500, "BODY": BODY, "RESPONSE_TIME": 1.0}
    seen = Condition.parse("[BODY].services.database == ok").evaluate(Facts(facts))
    assert (seen.ok, seen.absent) == (False, False)
    gone = Condition.parse("[BODY].services.cache == ok").evaluate(Facts(facts))
    assert (gone.ok, gone.absent) == (False, True)
    html = Condition.parse("[BODY].status == ok").evaluate(Facts(facts | {"BODY": "<html>"}))
    assert (html.ok, html.absent) == (False, True)
    status = Condition.parse("[STATUS] == 200").evaluate(Facts(facts))
    assert (status.ok, status.absent) == (False, False)
