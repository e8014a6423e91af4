"""The config file: YAML, `${VAR}` interpolation, defaults, validation with file:line:key errors."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TextIO

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError
from pydantic_core import ErrorDetails

from monitor.addresses import check_listen
from monitor.alerting.config import AlertingConfig, MaintenanceWindow, SilenceSpec
from monitor.api.config import ApiConfig
from monitor.bounded_yaml import YamlInputError, YamlLimits, load_yaml, read_utf8
from monitor.checks import CHECK_TYPES
from monitor.cluster.config import ClusterConfig
from monitor.cluster.config import cross_check as cluster_cross_check
from monitor.core.duration_fields import PositiveDuration
from monitor.core.durations import format_duration, parse_duration
from monitor.core.spec import CheckSpec
from monitor.docker.config import DockerConfig
from monitor.interpolation import InterpolationError, Interpolator
from monitor.rollback.config import RollbackConfig
from monitor.rollback.config import cross_check as rollback_cross_check
from monitor.runbook_context import RunbooksConfig
from monitor.secrets import MIN_SECRET_LENGTH, secret_values
from monitor.settings import Settings
from monitor.status.config import StatusPageConfig

KeyPath = tuple[str | int, ...]
# The shortest interval a check may have (OPSMON_MIN_INTERVAL lowers it, e.g. in tests).
MIN_INTERVAL = 1.0
MIN_INTERVAL_FLOOR = 0.1
# Longer depends_on chains than this are a config mistake, and root-cause walks stay shallow.
MAX_DEPENDENCY_DEPTH = 32
YAML_LIMITS = YamlLimits()


class Defaults(BaseModel):
    """Values merged into every check that does not set them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval: PositiveDuration = 30.0
    timeout: PositiveDuration = 5.0
    failure_threshold: int = Field(default=3, ge=1)
    success_threshold: int = Field(default=2, ge=1)


class Config(BaseModel):
    """The whole config file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: Annotated[str, AfterValidator(check_listen)] = "127.0.0.1:9110"
    state_dir: Path = Path("./state")
    public_url: str = "http://localhost:9110"
    runbook_url_template: str | None = None
    defaults: Defaults = Defaults()
    docker: DockerConfig = DockerConfig()
    # Each item is an instance of its type's spec model (see `_validate_checks`).
    checks: tuple[SerializeAsAny[CheckSpec], ...] = ()
    alerting: AlertingConfig | None = None
    silences: tuple[SilenceSpec, ...] = ()
    maintenance: tuple[MaintenanceWindow, ...] = ()
    rollback: RollbackConfig | None = None
    status_page: StatusPageConfig = StatusPageConfig()
    api: ApiConfig = ApiConfig()
    runbooks: RunbooksConfig = RunbooksConfig()
    cluster: ClusterConfig | None = None

    def check(self, name: str) -> CheckSpec:
        """The check called `name`."""
        for spec in self.checks:
            if spec.name == name:
                return spec
        raise KeyError(name)


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file, located by file, line and key path."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """A config that cannot be used; `problems` lists every reason found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config with where it came from and the secret values it holds."""

    config: Config
    path: Path
    secrets: frozenset[str] = field(default_factory=frozenset)


def format_key(path: KeyPath) -> str:
    """`("checks", 2, "interval")` -> `checks[2].interval`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def default_config_path(environ: Mapping[str, str]) -> Path:
    """`$OPSMON_CONFIG`, else `./opsmon.yml`, else `config/opsmon.yml`."""
    if environ.get("OPSMON_CONFIG"):
        return Path(environ["OPSMON_CONFIG"])
    local = Path("opsmon.yml")
    return local if local.exists() else Path("config/opsmon.yml")


class _LineMap:
    """Line numbers of every key and item in the YAML document, by key path."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.lines: dict[KeyPath, int] = {}
        self.duplicates: list[tuple[KeyPath, int]] = []
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: KeyPath) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in seen:
                    self.duplicates.append(((*path, key), key_node.start_mark.line + 1))
                seen.add(key)
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                self._walk(value_node, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*path, index))

    def line(self, path: KeyPath) -> int | None:
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None


def _walk_strings(data: object, path: KeyPath = ()) -> Iterator[tuple[KeyPath, str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _walk_strings(value, (*path, str(key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _walk_strings(value, (*path, index))
    elif isinstance(data, str):
        yield path, data


def _set(data: Any, path: KeyPath, value: object) -> None:
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 and C1, except \t and \n
_CONTROL_ON_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _control_character(value: str, single_line: bool) -> str | None:
    """The first control character in `value` as shown to a person, or None."""
    found = (_CONTROL_ON_ONE_LINE if single_line else _CONTROL).search(value)
    return f"{found.group()!r} at position {found.start()}" if found else None


def _single_line(path: KeyPath) -> bool:
    """URLs, addresses, DSNs and header values go onto a wire line: no line breaks at all."""
    named = [p for p in path if isinstance(p, str)]
    last = named[-1] if named else ""
    return last.endswith("url") or last in ("listen", "dsn") or named[-2:-1] == ["headers"]


def _pydantic_message(error: ErrorDetails) -> str:
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        symbol = {
            "greater_than": ">",
            "greater_than_equal": ">=",
            "less_than": "<",
            "less_than_equal": "<=",
        }[kind]
        bound = next(iter(ctx.values()))
        return f"must be {symbol} {bound}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _validation_problems(exc: ValidationError, prefix: KeyPath) -> list[tuple[KeyPath, str]]:
    return [(prefix + tuple(error["loc"]), _pydantic_message(error)) for error in exc.errors()]


def _validate_checks(
    raw_checks: object, min_interval: float
) -> tuple[list[CheckSpec], list[tuple[KeyPath, str]]]:
    """Validate each check against its type's spec model, chosen through the registry."""
    if not isinstance(raw_checks, list):
        return [], [(("checks",), "must be a list of checks")]
    specs: list[CheckSpec] = []
    problems: list[tuple[KeyPath, str]] = []
    for index, item in enumerate(raw_checks):
        where: KeyPath = ("checks", index)
        if not isinstance(item, dict):
            problems.append((where, "must be a mapping"))
            continue
        kind = item.get("type")
        entry = CHECK_TYPES.get(str(kind))
        if kind is None:
            problems.append(((*where, "type"), "required key is missing"))
        elif entry is None:
            known = ", ".join(sorted(CHECK_TYPES))
            problems.append(((*where, "type"), f"unknown check type {kind!r} (known: {known})"))
        else:
            try:
                spec = entry.validate(item)
            except ValidationError as exc:
                problems.extend(_validation_problems(exc, where))
                continue
            specs.append(spec)
            if spec.interval < min_interval:
                minimum = format_duration(min_interval)
                message = f"must be at least {minimum} (the shortest interval allowed)"
                problems.append(((*where, "interval"), message))
    return specs, problems


def _merge_defaults(raw: dict[str, object]) -> None:
    defaults = raw.get("defaults")
    checks = raw.get("checks")
    if not isinstance(defaults, dict) or not isinstance(checks, list):
        return
    for check in checks:
        if isinstance(check, dict):
            for key, value in defaults.items():
                if key in Defaults.model_fields:
                    check.setdefault(key, value)


def _cross_check(config: Config) -> Iterator[tuple[KeyPath, str]]:
    names: dict[str, int] = {}
    known = {s.name for s in config.checks}
    for index, spec in enumerate(config.checks):
        if spec.name in names:
            yield (
                ("checks", index, "name"),
                (f"duplicate check name {spec.name!r} (also checks[{names[spec.name]}])"),
            )
        names.setdefault(spec.name, index)
        if spec.timeout > spec.interval:
            yield (
                ("checks", index, "timeout"),
                (f"must not be longer than the interval ({format_duration(spec.interval)})"),
            )
        for position, dependency in enumerate(spec.depends_on):
            if dependency not in known:
                yield ("checks", index, "depends_on", position), f"unknown check {dependency!r}"
            elif dependency == spec.name:
                yield ("checks", index, "depends_on", position), "a check cannot depend on itself"
    yield from _dependency_problems(config, names)
    template = config.runbook_url_template
    if template is not None and "{id}" not in template:
        yield ("runbook_url_template",), "must contain {id}, where the runbook id goes"
    yield from rollback_cross_check(config)
    group_by = config.alerting.group_by if config.alerting is not None else None
    yield from cluster_cross_check(config.cluster, group_by)


def _find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    """A dependency cycle as a list of names (first == last), or None; iterative, so a chain
    thousands of checks long cannot exhaust the stack."""
    done: set[str] = set()
    for start in graph:
        if start in done:
            continue
        path: list[str] = [start]
        on_path = {start}
        pending = [iter(graph[start])]
        while pending:
            nxt = next(pending[-1], None)
            if nxt is None:
                pending.pop()
                done.add(path[-1])
                on_path.discard(path.pop())
            elif nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in done and nxt in graph:
                path.append(nxt)
                on_path.add(nxt)
                pending.append(iter(graph[nxt]))
    return None


def _longest_chain(graph: Mapping[str, list[str]]) -> list[str]:
    """The longest depends_on chain, first check first (the graph has no cycle)."""
    best: dict[str, list[str]] = {}
    for start in graph:
        stack = [start]
        while stack:
            node = stack[-1]
            waiting = [d for d in graph[node] if d in graph and d not in best]
            if waiting:
                stack.extend(waiting)
                continue
            stack.pop()
            if node not in best:
                below = max((best[d] for d in graph[node] if d in graph), key=len, default=[])
                best[node] = [node, *below]
    return max(best.values(), key=len, default=[])


def _dependency_problems(config: Config, names: Mapping[str, int]) -> Iterator[tuple[KeyPath, str]]:
    graph = {s.name: [d for d in s.depends_on if d != s.name] for s in config.checks}
    cycle = _find_cycle(graph)
    if cycle:
        shown = cycle if len(cycle) <= 8 else [*cycle[:3], "...", *cycle[-3:]]
        yield (
            ("checks", names[cycle[0]], "depends_on"),
            "dependency cycle: "
            + " -> ".join(shown)
            + (f" ({len(cycle) - 1} checks)" if len(cycle) > 8 else ""),
        )
        return
    chain = _longest_chain(graph)
    if len(chain) > MAX_DEPENDENCY_DEPTH:
        shown = [*chain[:3], "...", chain[-1]]
        yield (
            ("checks", names[chain[0]], "depends_on"),
            f"dependency chain of {len(chain)} checks ({' -> '.join(shown)}) is longer than"
            f" {MAX_DEPENDENCY_DEPTH}",
        )


def _min_interval(environ: Mapping[str, str]) -> float:
    text = environ.get("OPSMON_MIN_INTERVAL")
    if not text:
        return MIN_INTERVAL
    try:
        seconds = parse_duration(text)
    except ValueError:
        seconds = -1.0
    if seconds < MIN_INTERVAL_FLOOR:
        message = f"must be a duration of at least {format_duration(MIN_INTERVAL_FLOOR)}"
        raise ConfigError([ConfigProblem("environment", None, "OPSMON_MIN_INTERVAL", message)])
    return seconds


def _read_yaml(path: Path) -> tuple[_LineMap, object]:
    file = str(path)
    try:
        text = read_utf8(path, YAML_LIMITS)
        root, raw = load_yaml(text, YAML_LIMITS)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([ConfigProblem(file, None, "", f"cannot read: {reason}")]) from None
    except YamlInputError as exc:
        raise ConfigError([ConfigProblem(file, exc.line, "", exc.message)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        if isinstance(exc, yaml.reader.ReaderError):
            line = text.count("\n", 0, exc.position) + 1
            problem = f"control character {chr(exc.character)!r} is not allowed in YAML"
        raise ConfigError([ConfigProblem(file, line, "", f"invalid YAML: {problem}")]) from None
    return _LineMap(root), raw


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, interpolate and validate `path`; raise ConfigError listing every problem found."""
    environ = os.environ if environ is None else environ
    file = str(path)
    min_interval = _min_interval(environ)
    lines, raw = _read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([ConfigProblem(file, 1, "", "the top level must be a mapping of keys")])

    problems = [
        ConfigProblem(file, line, format_key(key), "duplicate key")
        for key, line in lines.duplicates
    ]
    interpolator = Interpolator(environ)
    unresolved = False
    for key, value in list(_walk_strings(raw)):
        try:
            expanded = interpolator.expand(value)
        except InterpolationError as exc:
            problems.append(ConfigProblem(file, lines.line(key), format_key(key), str(exc)))
            unresolved = True
            continue
        control = _control_character(expanded, _single_line(key))
        if control is not None:
            message = f"contains a control character ({control})"
            problems.append(ConfigProblem(file, lines.line(key), format_key(key), message))
        _set(raw, key, expanded)
    if unresolved:  # validating `${...}` text as a value would only add confusing errors
        raise ConfigError(problems)

    _merge_defaults(raw)
    specs, found = _validate_checks(raw.pop("checks", []), min_interval)
    try:
        config = Config.model_validate(dict(raw, checks=specs))
    except ValidationError as exc:
        found.extend(_validation_problems(exc, ()))
    if found:
        for key, message in found:
            problems.append(ConfigProblem(file, lines.line(key), format_key(key), message))
        raise ConfigError(problems)
    for key, message in _cross_check(config):
        problems.append(ConfigProblem(file, lines.line(key), format_key(key), message))
    if problems:
        raise ConfigError(problems)
    secrets = secret_values(config)
    inside = {
        used
        for used in interpolator.used
        if len(used) >= MIN_SECRET_LENGTH and any(used in secret for secret in secrets)
    }
    return LoadedConfig(config=config, path=path, secrets=secrets | inside)


def effective_config(loaded: LoadedConfig, settings: Settings) -> Config:
    """The config with the environment's overrides (OPSMON_LISTEN, OPSMON_STATE_DIR) applied."""
    overrides: dict[str, object] = {}
    if settings.listen:
        overrides["listen"] = settings.listen
    if settings.state_dir:
        overrides["state_dir"] = Path(settings.state_dir)
    return loaded.config.model_copy(update=overrides) if overrides else loaded.config


def load_for_command(config_arg: str | None, err: TextIO) -> LoadedConfig | None:
    """The config a command uses (`--config`, else the default path) with the environment's
    overrides applied; on problems, prints each as `file:line: key: message` and returns None."""
    path = Path(config_arg) if config_arg else default_config_path(os.environ)
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=err)
        return None
    return LoadedConfig(effective_config(loaded, Settings()), loaded.path, loaded.secrets)
