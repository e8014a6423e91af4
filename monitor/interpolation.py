"""`${VAR}`, `${VAR:-default}` and `$$` in config strings; environment values are checked."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

_TOKEN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{[^}]*\}?")
_CONTROL_NAMES = {"\r": "a carriage return (\\r)", "\n": "a line feed (\\n)", "\t": "a tab (\\t)"}


class InterpolationError(ValueError):
    """A `${...}` that cannot be resolved; the message names the variable, never a value."""


def _control_character(value: str) -> str | None:
    for char in value:
        if unicodedata.category(char) == "Cc":
            return _CONTROL_NAMES.get(char, f"the control character {char!r}")
    return None


@dataclass
class Interpolator:
    """Expands variables from `environ`; a value holding a control character is refused
    (a CRLF `.env` file leaves `\\r` at the end of every value, which then breaks HTTP
    headers and ends up, with the secret, in error messages)."""

    environ: Mapping[str, str]
    # Every value taken from the environment: those that end up inside a secret field are
    # secrets on their own too (the token inside "Bearer ${TOKEN}").
    used: set[str] = field(default_factory=set)

    def expand(self, text: str) -> str:
        """Return `text` with every variable replaced; raise InterpolationError if one is unset
        or holds a control character."""

        def replace(match: re.Match[str]) -> str:
            whole = match.group(0)
            if whole == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name is None:
                raise InterpolationError(f"malformed variable reference {whole!r}")
            value = self.environ.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    raise InterpolationError(f"environment variable {name} is not set")
                return default
            control = _control_character(value)
            if control is not None:
                hint = "; is the .env file saved with CRLF line endings?" if "\r" in value else ""
                raise InterpolationError(f"environment variable {name} contains {control}{hint}")
            self.used.add(value)
            return value

        return _TOKEN.sub(replace, text)
