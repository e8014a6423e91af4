"""The condition language, Gatus-style: `[STATUS] == 200`, `[BODY].services.db == ok`.

A condition is `LEFT OP RIGHT` or a lone truthy operand (`[CONNECTED]`, `has([EXTENSIONS], x)`).
Operands are placeholders (`[NAME]`, `[BODY].a.b[0].c`), literals and the functions `len(x)`,
`has(x)` / `has(x, item)`, `pat(glob)` and `any(a, b, ...)`. Conditions are parsed once, when the
config loads, and evaluated against the facts a check gathered; a failed one renders with the
actual value, e.g. `[STATUS] (503) == 200`.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitor.core.durations import is_duration, parse_duration

OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
_OPERATOR_RE = re.compile(r"\s(==|!=|<=|>=|<|>)\s")
_PLACEHOLDER_RE = re.compile(r"^\[([A-Z_]+)\]((?:\.[^.\[\]]+|\[\d+\])*)$")
_PATH_PART_RE = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_FUNCTION_RE = re.compile(r"^(len|has|pat|any)\((.*)\)$", re.DOTALL)
_MAX_SHOWN = 80
# Placeholders whose value is a time in milliseconds: a duration on the other side converts.
_MILLISECOND_PLACEHOLDERS = frozenset(
    {"RESPONSE_TIME", "CONNECT_TIME", "QUERY_TIME", "CERTIFICATE_EXPIRATION"}
)
LATENCY_PLACEHOLDERS = frozenset({"RESPONSE_TIME", "CONNECT_TIME", "QUERY_TIME"})


class ConditionSyntaxError(ValueError):
    """A condition that cannot be parsed; the message says what is wrong."""


class _Missing:
    """The value of a JSON path that does not exist in the body."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


class EvaluationError(Exception):
    """A condition that cannot be decided with these facts (e.g. a body that is not JSON)."""


class Facts:
    """What a check observed, by placeholder name; JSON bodies are parsed once, on first use."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)
        self._parsed: dict[str, Any] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def get(self, name: str) -> Any:
        """The raw value of a placeholder, or MISSING."""
        return self._values.get(name, MISSING)

    def resolve(self, name: str, path: tuple[str | int, ...]) -> Any:
        """The value at `path` inside placeholder `name` (JSON-decoded when it is text)."""
        if name not in self._values:
            raise EvaluationError(f"[{name}] is not known to this check type")
        value = self._values[name]
        if not path:
            return value
        if isinstance(value, str | bytes):
            if name not in self._parsed:
                try:
                    self._parsed[name] = json.loads(value)
                except json.JSONDecodeError as exc:
                    self._parsed[name] = EvaluationError(f"[{name}] is not JSON ({exc.msg})")
                except UnicodeDecodeError:
                    self._parsed[name] = EvaluationError(f"[{name}] is not JSON (not UTF-8)")
            value = self._parsed[name]
            if isinstance(value, EvaluationError):
                raise value
        for part in path:
            if isinstance(part, int):
                if not isinstance(value, list) or part >= len(value):
                    return MISSING
                value = value[part]
            else:
                if not isinstance(value, dict) or part not in value:
                    return MISSING
                value = value[part]
        return value


@dataclass(frozen=True)
class Operand:
    """One side of a condition: a placeholder, a literal or a function call."""

    text: str
    placeholder: str | None = None
    path: tuple[str | int, ...] = ()
    function: str | None = None
    args: tuple[Operand, ...] = ()

    @property
    def is_literal(self) -> bool:
        return self.placeholder is None and self.function is None

    def placeholders(self) -> set[str]:
        found = {self.placeholder} if self.placeholder else set()
        for arg in self.args:
            found |= arg.placeholders()
        return found

    def value(self, facts: Facts) -> Any:
        if self.placeholder is not None:
            return facts.resolve(self.placeholder, self.path)
        if self.function == "len":
            target = self.args[0].value(facts)
            if target is MISSING:
                return 0
            return len(target) if isinstance(target, str | list | dict) else len(str(target))
        if self.function == "has":
            target = self.args[0].value(facts)
            if len(self.args) == 1:
                return target is not MISSING
            wanted = self.args[1].value(facts)
            if isinstance(target, dict | list | tuple | set | frozenset):
                return any(_equal(item, wanted) for item in target)
            return False
        return _literal(self.text)


def _literal(text: str) -> Any:
    stripped = text.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "\"'":
        return stripped[1:-1]
    return stripped


def _split_args(text: str) -> list[str]:
    args: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        if char == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if current or args:
        args.append("".join(current).strip())
    return args


def _parse_operand(text: str) -> Operand:
    text = text.strip()
    if not text:
        raise ConditionSyntaxError("empty operand")
    match = _FUNCTION_RE.match(text)
    if match:
        name, inner = match.groups()
        args = _split_args(inner)
        expected = {"len": (1, 1), "has": (1, 2), "pat": (1, 1), "any": (1, 64)}[name]
        if not expected[0] <= len(args) <= expected[1]:
            wanted = str(expected[0]) if expected[0] == expected[1] else "{}..{}".format(*expected)
            raise ConditionSyntaxError(f"{name}() takes {wanted} argument(s), got {len(args)}")
        if name in ("pat", "any"):
            return Operand(text, function=name, args=tuple(Operand(a) for a in args))
        return Operand(text, function=name, args=tuple(_parse_operand(a) for a in args))
    if text.startswith("["):
        match = _PLACEHOLDER_RE.match(text)
        if not match:
            raise ConditionSyntaxError(f"malformed placeholder {text!r}")
        name, rest = match.groups()
        path = tuple(int(index) if index else key for key, index in _PATH_PART_RE.findall(rest))
        return Operand(text, placeholder=name, path=path)
    return Operand(text)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def _equal(left: Any, right: Any) -> bool:
    left_number, right_number = _number(left), _number(right)
    if left_number is not None and right_number is not None:
        return left_number == right_number
    return _text(left) == _text(right)


def show(value: Any) -> str:
    """A value as a failed condition shows it: short, one line."""
    text = _text(value) if value is not MISSING else "<missing>"
    text = text.replace("\n", " ")
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


@dataclass(frozen=True)
class ConditionResult:
    """The outcome of one condition: `detail` is what an operator reads when it failed."""

    condition: str
    ok: bool
    detail: str
    placeholders: frozenset[str]
    # The value it tested was not there (a body field that does not exist, a body that is
    # not JSON): a failure that says nothing about what the field would have said.
    absent: bool = False


@dataclass(frozen=True)
class Condition:
    """A parsed condition, ready to be evaluated against facts."""

    text: str
    left: Operand
    operator: str | None
    right: Operand | None

    @classmethod
    def parse(cls, text: str) -> Condition:
        """Parse `text`; raise ConditionSyntaxError with the reason if it is malformed."""
        if not isinstance(text, str) or not text.strip():
            raise ConditionSyntaxError("a condition must be a non-empty string")
        match = _OPERATOR_RE.search(text)
        if match is None:
            stripped = text.strip()
            if " " in stripped and not _FUNCTION_RE.match(stripped):
                raise ConditionSyntaxError(
                    f"{text!r} has no operator (use one of {', '.join(OPERATORS)}, "
                    "with spaces around it)"
                )
            left = _parse_operand(text)
            if left.is_literal or left.function in ("pat", "any"):
                raise ConditionSyntaxError(
                    f"{text!r} has no operator (use one of {', '.join(OPERATORS)})"
                )
            return cls(text.strip(), left, None, None)
        left = _parse_operand(text[: match.start()])
        right = _parse_operand(text[match.end() :])
        operator = match.group(1)
        if left.function in ("pat", "any"):
            raise ConditionSyntaxError(f"{left.function}() belongs on the right-hand side")
        if right.function in ("pat", "any") and operator not in ("==", "!="):
            raise ConditionSyntaxError(f"{right.function}() works only with == and !=")
        return cls(text.strip(), left, operator, right)

    @property
    def placeholders(self) -> frozenset[str]:
        names = self.left.placeholders()
        if self.right is not None:
            names |= self.right.placeholders()
        return frozenset(names)

    def evaluate(self, facts: Facts) -> ConditionResult:
        """Decide the condition; never raises for odd facts, it fails with the reason instead."""
        try:
            ok, shown = self._decide(facts)
        except EvaluationError as exc:
            return ConditionResult(
                self.text, False, f"{self.text}: {exc}", self.placeholders, absent=True
            )
        detail = self.text if ok else shown
        return ConditionResult(
            self.text, ok, detail, self.placeholders, absent=not ok and self._left_absent(facts)
        )

    def _left_absent(self, facts: Facts) -> bool:
        try:
            return self.left.placeholder is not None and self.left.value(facts) is MISSING
        except EvaluationError:
            return True

    def _decide(self, facts: Facts) -> tuple[bool, str]:
        left_value = self.left.value(facts)
        left_shown = f"{self.left.text} ({show(left_value)})"
        if self.operator is None or self.right is None:
            return bool(left_value) and left_value is not MISSING, left_shown
        shown = f"{left_shown} {self.operator} {self.right.text}"
        right = self.right
        if right.function == "any":
            hit = any(_equal(left_value, _literal(arg.text)) for arg in right.args)
            return (hit if self.operator == "==" else not hit), shown
        if right.function == "pat":
            matched = left_value is not MISSING and fnmatch.fnmatchcase(
                _text(left_value), _literal(right.args[0].text)
            )
            return (matched if self.operator == "==" else not matched), shown
        right_value = right.value(facts)
        if right.is_literal and self._is_milliseconds() and is_duration(str(right_value)):
            right_value = parse_duration(str(right_value)) * 1000
        if left_value is MISSING:
            return self.operator == "!=", shown
        if self.operator in ("==", "!="):
            equal = _equal(left_value, right_value)
            return (equal if self.operator == "==" else not equal), shown
        left_number, right_number = _number(left_value), _number(right_value)
        if left_number is None or right_number is None:
            raise EvaluationError(f"cannot compare {show(left_value)} and {show(right_value)}")
        return _ORDER[self.operator](left_number, right_number), shown

    def _is_milliseconds(self) -> bool:
        return self.left.placeholder in _MILLISECOND_PLACEHOLDERS and not self.left.path


_ORDER = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def evaluate_all(conditions: list[Condition], facts: Facts) -> list[ConditionResult]:
    """Evaluate every condition (all of them, so a failure report lists each one that failed)."""
    return [condition.evaluate(facts) for condition in conditions]
