"""YAML is read with bounds on size, nesting and alias expansion; ordinary anchors still work."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.bounded_yaml import YamlInputError, YamlLimits, load_yaml, read_utf8


def test_anchors_and_merge_keys_within_limits_load() -> None:
    """Anchors, aliases and `<<` merges expand as YAML says when they stay small."""
    text = "base: &base {interval: 30s, timeout: 5s}\ncheck: {<<: *base, timeout: 2s}\n"
    node, data = load_yaml(text, YamlLimits())
    assert data["check"] == {"interval": "30s", "timeout": "2s"}
    assert node is not None


def test_expansion_is_counted_through_aliases() -> None:
    """Values brought in by aliases count: a few aliases of a large list exceed the limit."""
    text = "a: &a [1, 2, 3, 4, 5]\nb: [*a, *a, *a, *a]\n"
    assert load_yaml(text, YamlLimits(max_values=40))[1]["b"][3] == [1, 2, 3, 4, 5]
    with pytest.raises(YamlInputError) as caught:
        load_yaml(text, YamlLimits(max_values=20))
    assert (caught.value.line, caught.value.message) == (
        2,
        "expands to more than 20 values through aliases (an alias bomb?)",
    )


def test_depth_counts_what_aliases_bring_in() -> None:
    """A shallow anchor used deep inside another nesting still hits the depth limit."""
    text = "a: &a [[[[1]]]]\nb: [[[[*a]]]]\n"
    with pytest.raises(YamlInputError, match="nested deeper than 6 levels through aliases"):
        load_yaml(text, YamlLimits(max_depth=6))


def test_recursive_alias_is_refused() -> None:
    """An alias inside its own anchor would expand forever; it is refused."""
    with pytest.raises(YamlInputError, match="refers to a node that contains it"):
        load_yaml("a: &a [1, *a]\n", YamlLimits())


def test_non_utf8_names_the_byte_offset_and_line(tmp_path: Path) -> None:
    """A Latin-1 byte is reported with its offset and line."""
    path = tmp_path / "x.yml"
    path.write_bytes(b"a: 1\nb: gr\xfc\xdf\n")
    with pytest.raises(YamlInputError) as caught:
        read_utf8(path, YamlLimits())
    assert caught.value.line == 2
    assert caught.value.message.startswith("not UTF-8: byte 0xfc at offset 10 ")


def test_size_limit_reads_no_more_than_the_limit(tmp_path: Path) -> None:
    """A file over the limit is refused without reading it whole."""
    path = tmp_path / "x.yml"
    path.write_bytes(b"#" * 2048)
    assert read_utf8(path, YamlLimits(max_bytes=2048)) == "#" * 2048
    with pytest.raises(YamlInputError, match="larger than 1 KiB"):
        read_utf8(path, YamlLimits(max_bytes=1024))
