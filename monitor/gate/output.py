"""Where the gate's outcome goes: stdout (text or JSON), and on GitHub Actions the
annotations and the step summary file."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from monitor.gate.report import (
    ServiceReport,
    exit_code,
    github_annotations,
    render_text,
    step_summary,
    to_document,
)


def publish(
    reports: Sequence[ServiceReport],
    as_json: bool,
    out: TextIO,
    environ: dict[str, str] | os._Environ[str],
    redact: Callable[[str], str],
) -> int:
    """Print the outcome (text or JSON); on GitHub Actions also the annotations and the step
    summary. Returns the exit code."""
    if as_json:
        print(redact(json.dumps(to_document(reports), indent=2)), file=out)
    else:
        print(redact(render_text(reports)), file=out)
    if environ.get("GITHUB_ACTIONS") == "true":
        # The runner reads workflow commands from stdout and stderr; under --json they go
        # to stderr so that stdout stays one JSON document.
        stream = sys.stderr if as_json else out
        for line in github_annotations(reports):
            print(redact(line), file=stream)
        summary = environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with Path(summary).open("a", encoding="utf-8") as handle:
                handle.write(redact(step_summary(reports)))
    out.flush()
    return exit_code(reports)
