"""The config file: YAML, `${VAR}` interpolation, defaults, validation with file:line:key errors."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError

from monitor.alerting.config import AlertingConfig, MaintenanceWindow, SilenceSpec
from monitor.checks import CHECK_TYPES
from monitor.core.durations import PositiveDuration, format_duration
from monitor.core.spec import CheckSpec
from monitor.docker.config import DockerConfig
from monitor.interpolation import InterpolationError, Interpolator
from monitor.rollback.config import RollbackConfig
from monitor.rollback.config import cross_check as rollback_cross_check
from monitor.runbook_context import RunbooksConfig
from monitor.settings import Settings

KeyPath = tuple[str | int, ...]
_SECRET_KEY = re.compile(
    r"password|passwd|secret|token|dsn|webhook_url|api_key|authorization", re.I
)
_DSN_PASSWORD = re.compile(r"://[^:/@\s]*:([^@\s]+)@|password\s*=\s*'?([^\s']+)")
_MIN_SECRET_FIELD_LENGTH = 4


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

    listen: str = Field(default="127.0.0.1:9110", pattern=r"^[^\s:]*:\d{1,5}$")
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
    runbooks: RunbooksConfig = RunbooksConfig()

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


def _walk_strings(data: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _walk_strings(value, (*path, str(key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _walk_strings(value, (*path, index))
    elif isinstance(data, str):
        yield path, data


def _set(data: Any, path: KeyPath, value: Any) -> None:
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


def _secret_values(path: KeyPath, value: str) -> set[str]:
    named = [p for p in path if isinstance(p, str)]
    in_headers = len(named) >= 2 and named[-2] == "headers"
    # Alert channel and heartbeat URLs carry their credentials in the path or query.
    alert_url = named[-1:] == ["url"] and ("channels" in named or "heartbeat" in named)
    if not (in_headers or alert_url or (named and _SECRET_KEY.search(named[-1]))):
        return set()
    found = {value}
    for match in _DSN_PASSWORD.finditer(value):
        found.add(match.group(1) or match.group(2))
    return {v for v in found if v and len(v) >= _MIN_SECRET_FIELD_LENGTH}


def _pydantic_message(error: Mapping[str, Any]) -> str:
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


def _validate_checks(raw_checks: Any) -> tuple[list[CheckSpec], list[tuple[KeyPath, str]]]:
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
                specs.append(entry.spec_model.model_validate(item))
            except ValidationError as exc:
                problems.extend(_validation_problems(exc, where))
    return specs, problems


def _merge_defaults(raw: dict[str, Any]) -> None:
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
            if dependency not in {s.name for s in config.checks}:
                yield ("checks", index, "depends_on", position), f"unknown check {dependency!r}"
            elif dependency == spec.name:
                yield ("checks", index, "depends_on", position), "a check cannot depend on itself"
    graph = {s.name: [d for d in s.depends_on if d != s.name] for s in config.checks}
    cycle = _find_cycle(graph)
    if cycle:
        yield ("checks", names[cycle[0]], "depends_on"), "dependency cycle: " + " -> ".join(cycle)
    template = config.runbook_url_template
    if template is not None and "{id}" not in template:
        yield ("runbook_url_template",), "must contain {id}, where the runbook id goes"
    yield from rollback_cross_check(config)


def _find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done or node not in graph:
            return None
        visiting.append(node)
        for nxt in graph[node]:
            found = visit(nxt)
            if found:
                return found
        visiting.pop()
        done.add(node)
        return None

    for start in graph:
        found = visit(start)
        if found:
            return found
    return None


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, interpolate and validate `path`; raise ConfigError listing every problem found."""
    environ = os.environ if environ is None else environ
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(file, None, "", f"cannot read: {exc.strerror}")]) from None
    try:
        lines = _LineMap(yaml.compose(text, Loader=yaml.SafeLoader))
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigProblem(file, line, "", f"invalid YAML: {problem}")]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([ConfigProblem(file, 1, "", "the top level must be a mapping of keys")])

    problems = [
        ConfigProblem(file, line, format_key(key), "duplicate key")
        for key, line in lines.duplicates
    ]
    interpolator = Interpolator(environ)
    secrets: set[str] = set()
    for key, value in list(_walk_strings(raw)):
        try:
            expanded = interpolator.expand(value)
        except InterpolationError as exc:
            problems.append(ConfigProblem(file, lines.line(key), format_key(key), str(exc)))
            continue
        _set(raw, key, expanded)
        secrets |= _secret_values(key, expanded)
    secrets |= interpolator.secrets
    if problems:
        raise ConfigError(problems)

    _merge_defaults(raw)
    specs, found = _validate_checks(raw.pop("checks", []))
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
    return LoadedConfig(config=config, path=path, secrets=frozenset(secrets))


def effective_config(loaded: LoadedConfig, settings: Settings) -> Config:
    """The config with the environment's overrides (OPSMON_LISTEN, OPSMON_STATE_DIR) applied."""
    overrides: dict[str, Any] = {}
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
