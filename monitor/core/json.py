"""Precise types for parsed JSON/YAML documents, so code handling them needs no `Any`."""

from __future__ import annotations

from typing import TypeAlias

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
"""Every value a JSON document (or a plain YAML one) can hold."""

JsonObject: TypeAlias = dict[str, JsonValue]
"""A JSON object: the top of most config and API documents."""
