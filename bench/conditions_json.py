"""How long the JSON depth guard of conditions takes next to decoding the body (prints ms).

Run: python bench/conditions_json.py
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from monitor.conditions import MAX_JSON_DEPTH, Condition, Facts, _json_depth_exceeds

BODIES = {
    "small health answer": json.dumps({"status": "ok", "services": {"database": "ok"}}),
    "1 MB list of objects": json.dumps(
        [{"id": i, "name": 'x\\"y' * 3, "tags": ["a", "b"]} for i in range(16_000)]
    ),
    "1 MB of escaped quotes": '"' + '\\"' * 500_000,
    "1 MB flat brackets": "[]" * 500_000,
    "1 MB nested 500,000 deep": "[" * 500_000 + "]" * 500_000,
}


def best_ms(func: Callable[[], Any], runs: int = 5) -> float:
    """The fastest of `runs` timings, in milliseconds."""
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        func()
        timings.append((time.perf_counter() - started) * 1000)
    return min(timings)


def main() -> None:
    """Print the guard's and json.loads's time per body, and a whole condition's."""
    condition = Condition.parse("[BODY][0] == 1")
    print(f"{'body':28} {'bytes':>9} {'guard ms':>9} {'loads ms':>9} {'condition ms':>13}")
    for name, body in BODIES.items():
        guard = best_ms(lambda b=body: _json_depth_exceeds(b, MAX_JSON_DEPTH))
        try:
            loads = f"{best_ms(lambda b=body: json.loads(b)):9.1f}"
        except (ValueError, RecursionError):
            loads = f"{'error':>9}"
        whole = best_ms(lambda b=body: condition.evaluate(Facts({"BODY": b})))
        print(f"{name:28} {len(body):9d} {guard:9.1f} {loads} {whole:13.1f}")


if __name__ == "__main__":
    main()
