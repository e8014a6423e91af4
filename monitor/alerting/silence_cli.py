"""`opsmon silence add|list|expire`: silences stored in the SQLite file in `state_dir`, so they
work without the daemon running and the running daemon picks them up within a second."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.alerting.model import Silence
from monitor.alerting.silences import (
    describe_window,
    from_config,
    new_silence_id,
    parse_matchers,
    window_occurrence,
)
from monitor.alerting.store import AlertingStore
from monitor.config import Config, load_for_command
from monitor.core.durations import format_duration, parse_duration

EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE = 0, 1, 2


def _config(args: argparse.Namespace) -> Config | None:
    loaded = load_for_command(args.config, sys.stderr)
    return loaded.config if loaded is not None else None


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"invalid time {text!r}: expected ISO 8601, e.g. 2026-12-01T02:00:00Z"
        ) from None
    if value.tzinfo is None:
        raise ValueError(f"time {text!r} needs a time zone, e.g. 2026-12-01T02:00:00Z")
    return value.astimezone(UTC)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"--for {text}: {exc}") from None


def _author() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def cmd_silence_add(args: argparse.Namespace) -> int:
    """Store a new silence; print its id."""
    config = _config(args)
    if config is None:
        return EXIT_USAGE
    now = datetime.now(UTC)
    try:
        matchers = parse_matchers(args.match)
        starts = _time(args.starts) if args.starts else now
        if args.until:
            ends = _time(args.until)
        else:
            ends = starts + timedelta(seconds=_duration(args.duration))
        if ends <= max(starts, now):
            raise ValueError("the silence would end before it starts (or in the past)")
        if not args.comment.strip():
            raise ValueError("--comment must say why (it is shown to whoever the silence affects)")
    except ValueError as exc:
        print(f"opsmon silence add: {exc}", file=sys.stderr)
        return EXIT_USAGE
    silence = Silence(
        id=new_silence_id(),
        matchers=matchers,
        starts_at=starts,
        ends_at=ends,
        comment=args.comment,
        created_by=args.author or _author(),
        created_at=now,
    )
    store = AlertingStore.open(config.state_dir)
    try:
        store.add_silence(silence)
    finally:
        store.close()
    print(
        f"{silence.id}  silenced {_matchers(silence)} from {_stamp(starts)} until {_stamp(ends)}"
        f" ({format_duration((ends - starts).total_seconds())})"
    )
    return EXIT_OK


def _matchers(silence: Silence) -> str:
    return ",".join(f"{k}={v}" for k, v in silence.matchers.items()) or "(everything)"


def _stamp(value: datetime) -> str:
    if value.year <= 1:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def silence_rows(
    config: Config, store: AlertingStore, now: datetime, show_all: bool
) -> list[dict[str, Any]]:
    """Every silence and maintenance window as `silence list --json` (and the API) shows it."""
    silences = from_config(config.silences, now) + store.silences(None if show_all else now)
    rows = [
        {
            "id": s.id,
            "state": s.state(now),
            "matchers": dict(s.matchers),
            "starts_at": s.starts_at.isoformat() if s.starts_at.year > 1 else None,
            "ends_at": s.ends_at.isoformat(),
            "origin": s.origin,
            "created_by": s.created_by,
            "comment": s.comment,
        }
        for s in silences
        if show_all or s.state(now) != "expired"
    ]
    for index, window in enumerate(config.maintenance):
        occurrence = window_occurrence(window, index, now)
        rows.append(
            {
                "id": f"maintenance-{index}",
                "state": "active" if occurrence else "scheduled",
                "matchers": dict(window.match),
                "starts_at": occurrence.starts_at.isoformat() if occurrence else None,
                "ends_at": occurrence.ends_at.isoformat() if occurrence else None,
                "origin": "maintenance",
                "created_by": "config",
                "comment": (window.name + ": " if window.name else "") + describe_window(window),
            }
        )
    return rows


def cmd_silence_list(args: argparse.Namespace) -> int:
    """List silences (active and pending; `--all` adds expired ones) and maintenance windows."""
    config = _config(args)
    if config is None:
        return EXIT_USAGE
    store = AlertingStore.open(config.state_dir)
    try:
        rows = silence_rows(config, store, datetime.now(UTC), args.all)
    finally:
        store.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("no silences")
        return EXIT_OK
    table = [("ID", "STATE", "MATCHERS", "STARTS", "ENDS", "BY", "COMMENT")]
    for row in rows:
        table.append(
            (
                row["id"],
                row["state"],
                ",".join(f"{k}={v}" for k, v in row["matchers"].items()) or "(everything)",
                _stamp(datetime.fromisoformat(row["starts_at"])) if row["starts_at"] else "-",
                _stamp(datetime.fromisoformat(row["ends_at"])) if row["ends_at"] else "-",
                row["created_by"],
                row["comment"],
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]) - 1)]
    for line in table:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        print("  ".join([*cells, line[-1]]).rstrip())
    return EXIT_OK


def cmd_silence_expire(args: argparse.Namespace) -> int:
    """End a stored silence now (a unique id prefix is enough)."""
    config = _config(args)
    if config is None:
        return EXIT_USAGE
    now = datetime.now(UTC)
    if args.id.startswith(("config-", "maintenance-")):
        print(
            f"opsmon silence expire: {args.id} is defined in the config file; remove it there"
            " and reload (SIGHUP)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    store = AlertingStore.open(config.state_dir)
    try:
        matches = [s for s in store.silences(now) if s.id.startswith(args.id)]
        if len(matches) > 1:
            print(
                f"opsmon silence expire: {args.id!r} matches {len(matches)} silences;"
                " give more of the id",
                file=sys.stderr,
            )
            return EXIT_USAGE
        if not matches or not store.expire_silence(matches[0].id, now):
            print(
                f"opsmon silence expire: no active or pending silence {args.id!r}", file=sys.stderr
            )
            return EXIT_NOT_FOUND
    finally:
        store.close()
    print(f"{matches[0].id}  expired")
    return EXIT_OK
