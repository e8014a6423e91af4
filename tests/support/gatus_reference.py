"""Gatus's condition semantics, ported line by line from TwiN/gatus (config/endpoint/condition.go,
placeholder.go, jsonpath/jsonpath.go, pattern/pattern.go) to decide only success or failure.

Tests run a Gatus user's conditions through this reference and through opsmon against the same
answer of a local server, to show a converted check gives the same verdict. It keeps Gatus's
string-based evaluation on purpose (everything is a string until a comparison parses it).
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from typing import Any

_GO_DURATION = re.compile(r"^[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|ms|s|m|h))+$")
_GO_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9}
_GO_UNIT_NS["h"] = 3600 * 10**9


@dataclass
class GatusResult:
    """The parts of Gatus's endpoint.Result that conditions read."""

    status: int = 0
    body: bytes = b""
    duration_ms: int = 0
    ip: str = ""
    connected: bool = False
    certificate_expiration_ms: int = 0


class _JsonError(Exception):
    pass


def _go_parse_int(text: str) -> int | None:
    """strconv.ParseInt(s, 0, 64): base prefixes, a leading 0 means octal."""
    body = text[1:] if text[:1] in "+-" else text
    sign = -1 if text[:1] == "-" else 1
    if not body:
        return None
    lower = body.lower()
    try:
        if lower.startswith(("0x", "0o", "0b")):
            return sign * int(body, 0)
        if len(body) > 1 and body[0] == "0":
            return sign * int(body[1:], 8)
        if body.isdigit():
            return sign * int(body)
    except ValueError:
        return None
    return None


def _go_parse_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _go_duration_ms(text: str) -> int | None:
    """time.ParseDuration(s).Milliseconds() when it parses and is not zero (as Gatus checks)."""
    if not _GO_DURATION.match(text):
        return None
    sign = -1 if text.startswith("-") else 1
    total = 0.0
    for number, unit in re.findall(r"(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)", text):
        total += float(number) * _GO_UNIT_NS[unit]
    nanoseconds = int(total) * sign
    return int(nanoseconds / 1_000_000) if nanoseconds else None


def _go_format(value: Any) -> str:
    """fmt.Sprintf("%v", value) for what encoding/json decodes into."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "<nil>"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, list):
        return "[" + " ".join(_go_format(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_format(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _extract_value(key: str, value: Any) -> Any:
    if key.endswith("]") and "[" in key:
        start = end = depth = 0
        index = ""
        nested = False
        for i, char in enumerate(key):
            if char == "[":
                start = i
                depth += 1
            elif char == "]" and depth == 1:
                depth -= 1
                end = i
                index = key[start + 1 : i]
                nested = len(key) > i + 1 and key[i + 1] == "["
                break
        try:
            position = int(index)
        except ValueError:
            return None
        if position < 0:
            return None
        name = key[:start]
        if not name:
            array = value if isinstance(value, list) else []
            if len(array) > position:
                return (
                    _extract_value(key[end + 1 :], array[position]) if nested else array[position]
                )
            return None
        if not isinstance(value, dict) or value.get(name) is None:
            return None
        array = value[name] if isinstance(value[name], list) else []
        if len(array) > position:
            return _extract_value(key[end + 1 :], array[position]) if nested else array[position]
        return None
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return value.get(key)
    return value


def _walk(path: str, obj: Any) -> tuple[str, int]:
    keys: list[str] = []
    start = depth = 0
    for i, char in enumerate(path):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "." and depth == 0:
            keys.append(path[start:i])
            start = i + 1
    if start <= len(path):
        keys.append(path[start:])
    key = keys[0]
    value = _extract_value(key, obj)
    if isinstance(value, dict):
        new_path = path.replace(f"{key}.", "", 1)
        if new_path == path:
            text = json.dumps(value, separators=(",", ":"), sort_keys=True)
            return text, len(text)
        return _walk(new_path, value)
    if isinstance(value, str):
        if len(keys) > 1:
            raise _JsonError
        return value, len(value)
    if isinstance(value, list):
        return _go_format(value), len(value)
    if value is not None:
        text = _go_format(value)
        return text, len(text)
    raise _JsonError


def _eval_jsonpath(path: str, body: bytes) -> tuple[str, int]:
    if not path and not (body and body[:1] == b"[" and body[-1:] == b"]"):
        text = body.decode("utf-8", "replace")
        return text, len(body)
    try:
        obj = json.loads(body)
    except ValueError:
        raise _JsonError from None
    return _walk(path, obj)


def _with_function(value: str, function: str) -> str:
    if function == "has":
        return "true" if value != "" else "false"
    if function == "len":
        return str(len(value))
    return value


def resolve(placeholder: str, result: GatusResult) -> str:
    """ResolvePlaceholder (without suite context)."""
    placeholder = placeholder.strip()
    original = placeholder
    function = ""
    for name in ("len", "has"):
        if placeholder.startswith(f"{name}(") and placeholder.endswith(")"):
            function, placeholder = name, placeholder[len(name) + 1 : -1]
            break
    upper = placeholder.upper()
    simple = {
        "[STATUS]": str(result.status),
        "[IP]": result.ip,
        "[RESPONSE_TIME]": str(result.duration_ms),
        "[DNS_RCODE]": "",
        "[CONNECTED]": "true" if result.connected else "false",
        "[CERTIFICATE_EXPIRATION]": str(result.certificate_expiration_ms),
        "[DOMAIN_EXPIRATION]": "0",
    }
    if upper in simple:
        return _with_function(simple[upper], function)
    if upper == "[BODY]":
        body = result.body.decode("utf-8", "replace").strip()
        if function == "has":
            return "true" if body else "false"
        if function == "len":
            try:
                return str(_eval_jsonpath("", result.body)[1])
            except _JsonError:
                return str(len(body))
        return body
    if upper.startswith(("[BODY].", "[BODY][")):
        path = placeholder[len("[BODY]") :].removeprefix(".")
        try:
            value, length = _eval_jsonpath(path, result.body)
        except _JsonError:
            return "false" if function == "has" else f"{original} (INVALID)"
        if function == "has":
            return "true"
        return str(length) if function == "len" else value
    if function == "has":
        return "false"
    if function == "len":
        return f"{original} (INVALID)"
    return original


def _pattern_match(pattern: str, text: str) -> bool:
    if pattern == "*":
        return True
    return fnmatch.fnmatchcase(text.replace("/", ""), pattern.replace("/", ""))


def _is_equal(first: str, second: str) -> bool:
    if first.endswith(")") or second.endswith(")"):
        first_pat = first.startswith("pat(") and first.endswith(")")
        second_pat = second.startswith("pat(") and second.endswith(")")
        if first_pat:
            first = first[4:-1]
        if second_pat:
            second = second[4:-1]
        if first_pat and not second_pat:
            return _pattern_match(first, second)
        if second_pat and not first_pat:
            return _pattern_match(second, first)
        first_any = first.startswith("any(") and first.endswith(")")
        second_any = second.startswith("any(") and second.endswith(")")
        if first_any:
            first = first[4:-1]
        if second_any:
            second = second[4:-1]
        if first_any and not second_any:
            return any(option.strip() == second for option in first.split(","))
        if second_any and not first_any:
            return any(option.strip() == first for option in second.split(","))
    first_int, second_int = _go_parse_int(first), _go_parse_int(second)
    if first_int is not None and second_int is not None:
        return first_int == second_int
    return first == second


def _numeric(text: str) -> int:
    duration = _go_duration_ms(text)
    if duration is not None:
        return duration
    number = _go_parse_int(text)
    if number is not None:
        return number
    floating = _go_parse_float(text)
    return int(floating) if floating is not None else 0


def gatus_holds(condition: str, result: GatusResult) -> bool:
    """Whether Gatus would count `condition` as a success for this result."""
    for operator in (" == ", " != ", " <= ", " >= ", " > ", " < "):
        if operator in condition:
            left, right = (resolve(part, result) for part in condition.split(operator)[:2])
            if operator == " == ":
                return _is_equal(left, right)
            if operator == " != ":
                return not _is_equal(left, right)
            a, b = _numeric(left), _numeric(right)
            return {" <= ": a <= b, " >= ": a >= b, " > ": a > b, " < ": a < b}[operator]
    return False
