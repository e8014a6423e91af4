"""The condition language, Gatus-compatible: `[STATUS] == 200`, `[BODY].services.db == ok`.

A condition is `LEFT OP RIGHT` or a lone operand that is true or false (`[CONNECTED]`,
`has([EXTENSIONS], vector)`). Operands are placeholders (`[NAME]`, case-insensitive, and
`[BODY].a.b[0].c`), literals and the functions `len(x)`, `has(x)` / `has(x, item)`, `pat(glob)`
and `any(a, b, ...)`. Conditions are parsed once, when the config loads, and checked against the
placeholders the check type offers (`check_placeholders`), so a condition that could never work
is a config error, not a page. Evaluation never raises for odd facts: a failed condition renders
with the values seen, e.g. `[STATUS] (503) == 200`. docs/conditions.md is the reference and
lists where this differs from Gatus (and why).
"""

from __future__ import annotations

import difflib
import enum
import fnmatch
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import SupportsFloat, cast

from monitor.core.durations import is_duration, parse_duration
from monitor.core.json import JsonValue

OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
_ORDERING = frozenset({"<", "<=", ">", ">="})
_PLACEHOLDER_RE = re.compile(r"^\[([A-Za-z_][A-Za-z0-9_]*)\]((?:\.[^.\[\]]+|\[\d+\])*)$")
_PATH_PART_RE = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_FUNCTION_RE = re.compile(r"^(len|has|pat|any)\((.*)\)$", re.DOTALL)
_CALL_RE = re.compile(r"^([A-Za-z_]\w*)\(")
_DECIMAL_RE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_PREFIXED_INT_RE = re.compile(r"^[+-]?0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)$")
# Linear-time passes (no backtracking, whatever the body): drop escapes, then strings.
_JSON_ESCAPE_RE = re.compile(r"\\.", re.DOTALL)
_JSON_STRING_RE = re.compile(r'"[^"]*"')
_NOT_BRACKET_RE = re.compile(r"[^\[\]{}]+")
_MAX_SHOWN = 80
MAX_JSON_DEPTH = 64
"""A JSON body nested deeper than this fails the condition instead of being walked."""

LATENCY_PLACEHOLDERS = frozenset({"RESPONSE_TIME", "CONNECT_TIME", "QUERY_TIME"})
# Shown as a duration in a failed condition (`(23h59m)`), as Gatus does.
_SHOWN_AS_DURATION = frozenset({"CERTIFICATE_EXPIRATION", "DOMAIN_EXPIRATION"})


class Kind(enum.Enum):
    """What a placeholder holds; it decides which comparisons make sense at config time."""

    NUMBER = "a number"
    MILLISECONDS = "a time in milliseconds"
    BOOLEAN = "true or false"
    TEXT = "text"
    LIST = "a list"
    DOCUMENT = "a document (JSON paths allowed)"


PlaceholderTable = Mapping[str, Kind]
"""The placeholders a check type offers, by name: its registry entry declares one."""


class ConditionSyntaxError(ValueError):
    """A condition that cannot be parsed or can never work; the message says what is wrong."""


class _Missing:
    """The value of a JSON path that does not exist in the body."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: object = _Missing()


class EvaluationError(Exception):
    """A condition that cannot be decided with these facts (e.g. a body that is not JSON)."""


def _json_depth_exceeds(text: str, limit: int) -> bool:
    """Tell whether JSON `text` nests arrays/objects deeper than `limit` (without parsing it)."""
    if text.count("[") + text.count("{") <= limit:
        return False  # the common small answer: too few brackets to be too deep
    if "\\" in text:
        text = _JSON_ESCAPE_RE.sub("", text)
    brackets = _NOT_BRACKET_RE.sub("", _JSON_STRING_RE.sub("", text))
    depth = 0
    for char in brackets:
        depth += 1 if char in "[{" else -1
        if depth > limit:
            return True
    return False


def parse_json(text: str | bytes, what: str) -> JsonValue:
    """Decode a JSON document with a depth limit; raise EvaluationError saying why it is not one."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise EvaluationError(f"{what} is not JSON (not UTF-8)") from None
    if _json_depth_exceeds(text, MAX_JSON_DEPTH):
        raise EvaluationError(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return cast("JsonValue", json.loads(text))
    except json.JSONDecodeError as exc:
        raise EvaluationError(f"{what} is not JSON ({exc.msg})") from None
    except RecursionError:  # the pre-scan bounds depth; this is the last line of defence
        raise EvaluationError(f"{what} is nested too deeply") from None


class Facts:
    """What a check observed, by placeholder name; JSON bodies are parsed once, on first use."""

    def __init__(self, values: Mapping[str, object]) -> None:
        self._values = dict(values)
        self._parsed: dict[str, object] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def get(self, name: str) -> object:
        """The raw value of a placeholder, or MISSING."""
        return self._values.get(name, MISSING)

    def document(self, name: str) -> object:
        """Placeholder `name` as a JSON value (decoded once when it is text)."""
        value = self._raw(name)
        if not isinstance(value, str | bytes):
            return value
        if name not in self._parsed:
            try:
                self._parsed[name] = parse_json(value, f"[{name}]")
            except EvaluationError as exc:
                self._parsed[name] = exc
        parsed = self._parsed[name]
        if isinstance(parsed, EvaluationError):
            raise parsed
        return parsed

    def _raw(self, name: str) -> object:
        if name not in self._values:
            raise EvaluationError(f"[{name}] is not known to this check type")
        return self._values[name]

    def resolve(self, name: str, path: tuple[str | int, ...]) -> object:
        """The value at `path` inside placeholder `name` (JSON-decoded when it is text)."""
        if not path:
            value = self._raw(name)
            # Gatus compares a body without its surrounding whitespace (a trailing newline).
            return value.strip() if isinstance(value, str) else value
        value = self.document(name)
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
        """A constant written in the condition."""
        return self.placeholder is None and self.function is None

    @property
    def is_matcher(self) -> bool:
        """`pat(...)` or `any(...)`: a set of accepted values rather than a value."""
        return self.function in ("pat", "any")

    def placeholders(self) -> set[str]:
        """Every placeholder this operand reads."""
        found = {self.placeholder} if self.placeholder else set()
        for arg in self.args:
            found |= arg.placeholders()
        return found

    def value(self, facts: Facts) -> object:
        """This operand's value with these facts (MISSING for an absent JSON path)."""
        if self.placeholder is not None:
            return facts.resolve(self.placeholder, self.path)
        if self.function == "len":
            return _length(self.args[0], facts)
        if self.function == "has":
            return _has(self.args, facts)
        return _literal(self.text)

    def shown(self, value: object) -> str:
        """How a failed condition shows this operand: with its value unless it is a constant."""
        if self.is_literal or self.is_matcher:
            return self.text
        if self.placeholder in _SHOWN_AS_DURATION and not self.path and _number(value) is not None:
            return f"{self.text} ({go_duration(float(cast('SupportsFloat', value)))})"
        return f"{self.text} ({show(value)})"


def _length(target: Operand, facts: Facts) -> object:
    if target.placeholder is not None and not target.path:
        raw = facts.resolve(target.placeholder, ())
        if isinstance(raw, str):
            # A JSON array or object counts its items; anything else its characters.
            if raw[:1] in ("[", "{"):
                try:
                    decoded = facts.document(target.placeholder)
                except EvaluationError:
                    decoded = None
                if isinstance(decoded, list | dict):
                    return len(decoded)
            return len(raw)
        value = raw
    else:
        value = target.value(facts)
    if value is MISSING:
        return MISSING
    return len(value) if isinstance(value, str | list | dict) else len(_text(value))


def _has(args: tuple[Operand, ...], facts: Facts) -> bool:
    target = args[0].value(facts)
    if len(args) == 1:
        return target is not MISSING and target != ""
    wanted = args[1].value(facts)
    if isinstance(target, dict | list | tuple | set | frozenset):
        return any(_equal(item, wanted) for item in target)
    return False


def _literal(text: str) -> object:
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
        parsed = tuple(_parse_operand(a) for a in args)
        if parsed[0].placeholder is None:
            raise ConditionSyntaxError(f"{name}() takes a placeholder, e.g. {name}([BODY].items)")
        return Operand(text, function=name, args=parsed)
    call = _CALL_RE.match(text)
    if call:
        known = "len(), has(), pat(), any()"
        if call.group(1) in ("len", "has", "pat", "any"):
            raise ConditionSyntaxError(f"malformed {call.group(1)}() in {text!r}")
        raise ConditionSyntaxError(f"unknown function {call.group(1)}() (known: {known})")
    if text.startswith("["):
        match = _PLACEHOLDER_RE.match(text)
        if not match:
            raise ConditionSyntaxError(f"malformed placeholder {text!r}")
        name, rest = match.groups()
        path = tuple(int(index) if index else key for key, index in _PATH_PART_RE.findall(rest))
        return Operand(text, placeholder=name.upper(), path=path)
    return Operand(text)


def _find_operators(text: str) -> list[tuple[int, str]]:
    """Each ` OP ` outside parentheses and quotes, by position; raise on unbalanced parentheses."""
    found: list[tuple[int, str]] = []
    depth = 0
    quote = ""
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'" and (index == 0 or text[index - 1] in " ,("):
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ConditionSyntaxError(f"unbalanced parentheses in {text!r}: a `)` too many")
        elif depth == 0 and char == " ":
            for operator in OPERATORS:
                end = index + 1 + len(operator)
                if text[index + 1 : end] == operator and text[end : end + 1] == " ":
                    found.append((index, operator))
                    index = end - 1
                    break
        index += 1
    if depth > 0:
        raise ConditionSyntaxError(f"unbalanced parentheses in {text!r}: a `(` is never closed")
    return found


def _number(value: object) -> float | None:
    """A number, if `value` is one (`12`, `1.5`, `0x1F`, `0o17`, `0b101`); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if _PREFIXED_INT_RE.match(text):
            return float(int(text, 0))
        if _DECIMAL_RE.match(text):
            return float(text)
    return None


def _text(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _equal(left: object, right: object) -> bool:
    left_number, right_number = _number(left), _number(right)
    if left_number is not None and right_number is not None:
        return left_number == right_number
    return _text(left) == _text(right)


def show(value: object) -> str:
    """A value as a failed condition shows it: short, one line."""
    text = _text(value) if value is not MISSING else "<missing>"
    text = text.replace("\n", " ")
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def go_duration(milliseconds: float) -> str:
    """Milliseconds as Gatus shows a duration: whole seconds, trailing zero units dropped
    (`336h`, `23h59m`, `1h0m15s`, `45s`)."""
    sign = "-" if milliseconds < 0 else ""
    seconds = int(abs(milliseconds) // 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        text = f"{hours}h{minutes}m{secs}s"
    elif minutes:
        text = f"{minutes}m{secs}s"
    else:
        return f"{sign}{secs}s"
    if text.endswith("m0s"):
        text = text[:-2]
        if text.endswith("h0m"):
            text = text[:-2]
    return sign + text


def _duration_ms(value: object) -> float | None:
    if isinstance(value, str) and _number(value) is None and is_duration(value):
        return parse_duration(value) * 1000
    return None


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
        text = text.strip()
        operators = _find_operators(text)
        if len(operators) > 1:
            raise ConditionSyntaxError(
                f"{text!r} has more than one operator (one comparison per condition)"
            )
        if not operators:
            return cls._lone(text)
        position, operator = operators[0]
        left = _parse_operand(text[:position])
        right = _parse_operand(text[position + len(operator) + 2 :])
        if left.is_matcher and right.is_matcher:
            raise ConditionSyntaxError(f"{text!r} compares two patterns; one side must be a value")
        matcher = left if left.is_matcher else right if right.is_matcher else None
        if matcher is not None and operator not in ("==", "!="):
            raise ConditionSyntaxError(f"{matcher.function}() works only with == and !=")
        condition = cls(text, left, operator, right)
        if not condition.placeholders:
            raise ConditionSyntaxError(
                f"{text!r} compares constants; a condition needs a placeholder such as [STATUS]"
            )
        return condition

    @classmethod
    def _lone(cls, text: str) -> Condition:
        hint = f"use one of {', '.join(OPERATORS)}, with spaces around it"
        if " " in text and not _FUNCTION_RE.match(text):
            raise ConditionSyntaxError(f"{text!r} has no operator ({hint})")
        operand = _parse_operand(text)
        if operand.function == "has" or (operand.placeholder is not None and not operand.path):
            return cls(text, operand, None, None)
        if operand.placeholder is not None:
            raise ConditionSyntaxError(
                f"{text!r} alone is not true or false; compare it, e.g. `{text} == true`"
            )
        raise ConditionSyntaxError(f"{text!r} has no operator ({hint})")

    @property
    def placeholders(self) -> frozenset[str]:
        """Every placeholder the condition reads."""
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
        if self.operator is None or self.right is None:
            ok = left_value is True or (left_value is not MISSING and _text(left_value) == "true")
            return ok, self.left.shown(left_value)
        right_value = self.right.value(facts)
        shown = f"{self.left.shown(left_value)} {self.operator} {self.right.shown(right_value)}"
        if self.left.is_matcher or self.right.is_matcher:
            matcher, value = (
                (self.left, right_value) if self.left.is_matcher else (self.right, left_value)
            )
            hit = value is not MISSING and _matches(matcher, value)
            return (hit if self.operator == "==" else not hit), shown
        if left_value is MISSING or right_value is MISSING:
            return self.operator == "!=", shown
        if self.operator in ("==", "!="):
            left_value, right_value = _align_durations(left_value, right_value, self)
            equal = _equal(left_value, right_value)
            return (equal if self.operator == "==" else not equal), shown
        left_value, right_value = _align_durations(left_value, right_value, self)
        left_number, right_number = _number(left_value), _number(right_value)
        if left_number is None or right_number is None:
            raise EvaluationError(f"cannot compare {show(left_value)} and {show(right_value)}")
        return _ORDER[self.operator](left_number, right_number), shown


def _align_durations(left: object, right: object, condition: Condition) -> tuple[object, object]:
    """A duration literal (`1s`) on either side becomes milliseconds, as placeholders are."""
    if condition.left.is_literal:
        left = _duration_ms(left) if _duration_ms(left) is not None else left
    if condition.right is not None and condition.right.is_literal:
        right = _duration_ms(right) if _duration_ms(right) is not None else right
    return left, right


def _matches(matcher: Operand, value: object) -> bool:
    if matcher.function == "any":
        return any(_equal(value, _literal(arg.text)) for arg in matcher.args)
    pattern = _literal(matcher.args[0].text)
    return pattern == "*" or fnmatch.fnmatchcase(_text(value), cast("str", pattern))


_ORDER = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def evaluate_all(conditions: list[Condition], facts: Facts) -> list[ConditionResult]:
    """Evaluate every condition (all of them, so a failure report lists each one that failed)."""
    return [condition.evaluate(facts) for condition in conditions]


# --- config-time checks against the placeholders a check type offers -------------------------

_ANY = "any"  # a JSON path's value: its type is known only at run time


def _static_kind(operand: Operand, table: PlaceholderTable) -> Kind | str:
    if operand.placeholder is not None:
        kind = table[operand.placeholder]
        if operand.path:
            return _ANY
        return kind
    if operand.function == "len":
        return Kind.NUMBER
    if operand.function == "has":
        return Kind.BOOLEAN
    return "literal"


def _describe(operand: Operand, kind: Kind | str) -> str:
    return f"{operand.text} is {kind.value}" if isinstance(kind, Kind) else operand.text


def check_placeholders(condition: Condition, table: PlaceholderTable, check_type: str) -> None:
    """Raise ConditionSyntaxError if `condition` cannot work on a `check_type` check: a
    placeholder it does not offer, a JSON path into a value that has none, a comparison of
    values of different kinds (a duration with a status code, text with `<`)."""
    operands = [condition.left] if condition.right is None else [condition.left, condition.right]
    for operand in operands:
        _check_operand(operand, table, check_type)
    if condition.right is None:
        kind = _static_kind(condition.left, table)
        if kind is not Kind.BOOLEAN:
            what = _describe(condition.left, kind)
            raise ConditionSyntaxError(
                f"{condition.text!r} alone is not true or false ({what});"
                f" compare it, e.g. `{condition.text} == ...`"
            )
        return
    for this, other in ((condition.left, condition.right), (condition.right, condition.left)):
        _check_pair(condition, this, other, table)


def _check_operand(operand: Operand, table: PlaceholderTable, check_type: str) -> None:
    if operand.is_matcher:
        return
    for arg in operand.args:
        _check_operand(arg, table, check_type)
    name = operand.placeholder
    if name is None:
        return
    if name not in table:
        if not table:
            raise ConditionSyntaxError(f"{check_type} checks take no conditions")
        close = difflib.get_close_matches(name, list(table), n=1)
        hint = f"did you mean [{close[0]}]? " if close else ""
        known = ", ".join(f"[{p}]" for p in sorted(table))
        raise ConditionSyntaxError(
            f"[{name}] is not a placeholder of {check_type} checks ({hint}known: {known})"
        )
    kind = table[name]
    indexes_only = all(isinstance(p, int) for p in operand.path)
    if operand.path and kind is not Kind.DOCUMENT and not (kind is Kind.LIST and indexes_only):
        raise ConditionSyntaxError(
            f"{operand.text}: [{name}] is {kind.value}, it has no fields to walk into"
        )


def _check_pair(
    condition: Condition, this: Operand, other: Operand, table: PlaceholderTable
) -> None:
    """Complaints about `this` side given the `other` one (called for both orders)."""
    operator = condition.operator
    kind = _static_kind(this, table)
    if other.is_matcher or not isinstance(kind, Kind):
        if kind == "literal" and operator in _ORDERING and not other.is_matcher:
            value = _literal(this.text)
            if _number(value) is None and _duration_ms(value) is None:
                raise ConditionSyntaxError(
                    f"{condition.text!r}: {operator} compares numbers, {this.text!r} is not one"
                )
        return
    if kind is Kind.DOCUMENT:
        return
    if operator in _ORDERING and kind in (Kind.BOOLEAN, Kind.TEXT, Kind.LIST):
        raise ConditionSyntaxError(
            f"{condition.text!r}: {_describe(this, kind)}, it cannot be compared with {operator}"
            + (" (use == or !=, pat() or any())" if kind is Kind.TEXT else "")
        )
    if not other.is_literal:
        return
    value = _literal(other.text)
    duration = _duration_ms(value)
    if kind is Kind.NUMBER and duration is not None:
        raise ConditionSyntaxError(
            f"{condition.text!r}: {_describe(this, kind)}, not a time; {other.text} is a duration"
            " (durations compare with time placeholders such as [RESPONSE_TIME])"
        )
    if kind in (Kind.NUMBER, Kind.MILLISECONDS) and duration is None and _number(value) is None:
        raise ConditionSyntaxError(
            f"{condition.text!r}: {_describe(this, kind)}, {other.text!r} is not a number"
            + (" or a duration" if kind is Kind.MILLISECONDS else "")
        )
    if kind is Kind.BOOLEAN and _text(value).lower() not in ("true", "false"):
        raise ConditionSyntaxError(
            f"{condition.text!r}: {_describe(this, kind)}, compare it with true or false"
        )
    if kind is Kind.LIST:
        raise ConditionSyntaxError(
            f"{condition.text!r}: {_describe(this, kind)}; test an item with"
            f" has({this.text}, item) or the count with len({this.text})"
        )
