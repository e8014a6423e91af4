"""The module structure of monitor/: imports go one way (no circle) and only the composition
root knows the daemon. Every import counts: top level, inside functions, under TYPE_CHECKING."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "monitor"
# The composition root: the only modules that may import monitor.daemon.
COMPOSITION_ROOT = frozenset({"monitor.daemon", "monitor.cli", "monitor.demo"})


def module_files() -> dict[str, Path]:
    """Every module under monitor/ by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _owner(name: str, modules: Mapping[str, Path]) -> str | None:
    """The module under monitor/ that `name` (a module or a name in one) belongs to."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imported_modules(module: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """Every monitor module that `module` imports, wherever the import statement stands."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            # `from monitor.checks import http` imports the module monitor.checks.http.
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
            names = [n if n in modules else base for n in names]
        else:
            continue
        for name in names:
            owner = _owner(name, modules)
            if owner is not None and owner != module:
                found.add(owner)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the monitor modules it imports."""
    modules = module_files()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def cycles(graph: Mapping[str, set[str]]) -> Iterator[list[str]]:
    """One cycle (as a path that returns to its start) per strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    for component in components:
        start = min(component)
        path, seen = [start], {start}
        while True:
            nxt = min(t for t in graph[path[-1]] if t in component)
            if nxt in seen:
                yield [*path[path.index(nxt) :], nxt]
                break
            path.append(nxt)
            seen.add(nxt)


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """Imports inside functions and under TYPE_CHECKING count as much as top-level ones."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "import monitor.clock\n"
        "if TYPE_CHECKING:\n    from monitor.config import Config\n"
        "def f():\n    from monitor.checks import http\n    from . import state\n"
    )
    path = tmp_path / "probe.py"
    path.write_text(source, encoding="utf-8")
    found = imported_modules("monitor.probe", path, {**module_files(), "monitor.probe": path})
    assert found == {"monitor.clock", "monitor.config", "monitor.checks.http", "monitor.state"}


def test_the_cycle_finder_reports_a_circle() -> None:
    """A circle a -> b -> c -> a is found and printed as a path."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert list(cycles(graph)) == [["a", "b", "c", "a"]]


def test_no_import_circle_in_monitor() -> None:
    """No module of monitor/ imports itself through others: data flows one way."""
    found = [" -> ".join(cycle) for cycle in cycles(import_graph())]
    assert not found, "import circles:\n" + "\n".join(found)


def test_only_the_composition_root_imports_the_daemon() -> None:
    """Components get narrow ports from the composition root; none reaches for the daemon."""
    graph = import_graph()
    offenders = sorted(m for m, deps in graph.items() if "monitor.daemon" in deps)
    assert set(offenders) <= COMPOSITION_ROOT, offenders


def test_no_component_imports_another_component() -> None:
    """Components talk through ports (monitor.ports), never to each other's classes."""
    components = {
        "monitor.alerting.component",
        "monitor.rollback.component",
        "monitor.docker.watcher",
        "monitor.runbook_pages",
    }
    graph = import_graph()
    offenders = {m: sorted(graph[m] & components) for m in components if graph[m] & components}
    assert not offenders, offenders


def test_core_and_net_depend_on_no_subsystem() -> None:
    """monitor.core (plain types) and monitor.net (HTTP plumbing) import no subsystem."""
    allowed = {
        "monitor.core": ("monitor.core", "monitor.conditions"),
        "monitor.net": ("monitor.net",),
    }
    graph = import_graph()
    offenders = {
        module: sorted(d for d in deps if not d.startswith(allowed[layer]))
        for module, deps in graph.items()
        for layer in allowed
        if module == layer or module.startswith(layer + ".")
    }
    assert not {m: d for m, d in offenders.items() if d}, offenders


def test_the_store_plumbing_imports_no_subsystem() -> None:
    """monitor.store is the SQLite plumbing only: each subsystem's tables live with it (its
    one import is more plumbing: the connection that fails over to memory on disk faults)."""
    assert import_graph()["monitor.store"] <= {"monitor.resilient_db"}
    assert import_graph()["monitor.resilient_db"] == set()
