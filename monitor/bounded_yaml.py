"""Reading a YAML file with bounds: its size, its nesting, and what its aliases expand to.

A config file comes from a person, but it is still input: a 10-line "billion laughs" alias
bomb, a document nested 500 deep or a binary file must end in one clear line, never in a
traceback or gigabytes of memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class YamlLimits:
    """How much of a YAML document is accepted."""

    max_bytes: int = 2 * 1024 * 1024
    max_depth: int = 64  # nesting of mappings and lists, counting what aliases bring in
    max_values: int = 200_000  # keys, items and scalars once every alias is expanded


class YamlInputError(Exception):
    """A file that cannot be read as bounded YAML; `line` is 1-based when known."""

    def __init__(self, line: int | None, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(message)


def read_utf8(path: Path, limits: YamlLimits) -> str:
    """The text of `path`; YamlInputError when it is too large or not UTF-8 (OSError as is)."""
    with path.open("rb") as file:
        data = file.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise YamlInputError(None, f"file is larger than {limits.max_bytes // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise YamlInputError(
            line,
            f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} cannot be decoded"
            " (save the file as UTF-8)",
        ) from None


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer measures every node as it is built and stops early."""

    def __init__(self, text: str, limits: YamlLimits) -> None:
        super().__init__(text)
        self._limits = limits
        self._depth = 0
        # id(node) -> (values, depth) once expanded; nodes stay alive in the tree meanwhile.
        self._measured: dict[int, tuple[int, int]] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        mark = event.start_mark
        line = mark.line + 1 if mark else None
        if isinstance(event, yaml.AliasEvent):
            alias = super().compose_node(parent, index)
            if alias is not None and id(alias) not in self._measured:
                # The anchor is still being composed: an alias to an enclosing node.
                raise YamlInputError(line, "an alias refers to a node that contains it")
            return alias
        self._depth += 1
        try:
            if self._depth > self._limits.max_depth:
                raise YamlInputError(line, f"nested deeper than {self._limits.max_depth} levels")
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is not None:
            self._measure(node)
        return node

    def _measure(self, node: yaml.Node) -> None:
        """Record how many values `node` expands to and how deep; its children are measured."""
        if isinstance(node, yaml.ScalarNode):
            self._measured[id(node)] = (1, 1)
            return
        children: list[yaml.Node] = (
            [part for pair in node.value for part in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        sizes = [self._measured[id(child)] for child in children]
        line = node.start_mark.line + 1 if node.start_mark else None
        values = 1 + sum(size[0] for size in sizes)
        depth = 1 + max((size[1] for size in sizes), default=0)
        if values > self._limits.max_values:
            raise YamlInputError(
                line,
                f"expands to more than {self._limits.max_values} values through aliases"
                " (an alias bomb?)",
            )
        if depth > self._limits.max_depth:
            raise YamlInputError(
                line, f"nested deeper than {self._limits.max_depth} levels through aliases"
            )
        self._measured[id(node)] = (values, depth)


def load_yaml(text: str, limits: YamlLimits) -> tuple[yaml.Node | None, Any]:
    """The composed node tree (for line numbers) and the Python data of one YAML document.

    Raises YamlInputError for a document beyond `limits` and yaml.YAMLError for bad syntax."""
    loader = _BoundedLoader(text, limits)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        # Line numbers are read before construction: merge keys (`<<`) rewrite the node tree.
        lines_node = _copy_tree(node)
        return lines_node, loader.construct_document(node)
    finally:
        loader.dispose()


def _copy_tree(node: yaml.Node) -> yaml.Node:
    """A shallow copy of every collection node, so construction cannot change what we read."""
    copies: dict[int, yaml.Node] = {}

    def copy(current: yaml.Node) -> yaml.Node:
        found = copies.get(id(current))
        if found is not None:
            return found
        if isinstance(current, yaml.MappingNode):
            made: yaml.Node = yaml.MappingNode(
                current.tag, [], current.start_mark, current.end_mark
            )
            copies[id(current)] = made
            made.value = [(copy(k), copy(v)) for k, v in current.value]
        elif isinstance(current, yaml.SequenceNode):
            made = yaml.SequenceNode(current.tag, [], current.start_mark, current.end_mark)
            copies[id(current)] = made
            made.value = [copy(item) for item in current.value]
        else:
            made = current
        return made

    return copy(node)
