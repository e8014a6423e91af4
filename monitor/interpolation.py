"""`${VAR}`, `${VAR:-default}` and `$$` in config strings, remembering which values are secrets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_TOKEN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{[^}]*\}?")
# Values shorter than this are not treated as secrets: redacting "db" or "5432" everywhere
# would make every log line unreadable and protect nothing.
MIN_SECRET_LENGTH = 6


class InterpolationError(ValueError):
    """A `${...}` that cannot be resolved; the message names the variable, never a value."""


@dataclass
class Interpolator:
    """Expands variables from `environ` and collects the values that came from the environment."""

    environ: Mapping[str, str]
    secrets: set[str] = field(default_factory=set)

    def expand(self, text: str) -> str:
        """Return `text` with every variable replaced; raise InterpolationError if one is unset."""

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
            if len(value) >= MIN_SECRET_LENGTH and not value.isdigit():
                self.secrets.add(value)
            return value

        return _TOKEN.sub(replace, text)
