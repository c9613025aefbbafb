"""``early-media-agent calls export``: the call store as a CDR file (CSV or JSON Lines).

Reads the SQLite store directly, as ``library`` does its library, so it works beside a
running agent (WAL mode) or without one. Formats: :mod:`agent.store.export`.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.errors import UserError
from agent.store import export


def _store_path(args: argparse.Namespace) -> Path:
    if args.store:
        return Path(args.store)
    from agent.paths import data_dir

    return data_dir() / "calls.sqlite"


def _cmd_export(args: argparse.Namespace) -> int:
    from agent.store.calls import CallStore

    since = export.parse_since(args.since, default=datetime.now(UTC) - timedelta(days=1))
    path = _store_path(args)
    if not path.is_file():
        raise UserError(f"{path}: no call store here (--store names the agent's store.calls)")
    try:
        store = CallStore(path)
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{path}: not a call store ({exc})") from None
    with store:
        chunks = export.export(store.iter_since(since), args.format)
        if args.out is None:
            for chunk in chunks:
                sys.stdout.write(chunk)
            sys.stdout.flush()
            return 0
        # Written beside, then renamed: a failed export never leaves half a file.
        out = Path(args.out)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            with tmp.open("w", encoding="utf-8", newline="") as f:
                for chunk in chunks:
                    f.write(chunk)
            tmp.replace(out)
        except OSError as exc:
            raise UserError(f"{out}: cannot write ({exc.strerror or exc})") from None
        finally:
            tmp.unlink(missing_ok=True)
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``calls`` command and its ``export`` subcommand."""
    calls = sub.add_parser("calls", help="the call store: export call records (CDR)",
                           description="Read the agent's call store (SQLite) directly: "
                           "export call records as a CDR file, as GET /v1/calls/export does.")
    cmds = calls.add_subparsers(dest="calls_command", metavar="ACTION")
    cmds.required = True
    p = cmds.add_parser(
        "export", help="write every call since a time as CSV or JSON Lines",
        description="Write the calls started at or after --since, oldest first, as CSV "
        "(header row, nested fields as JSON text) or JSON Lines (one API call record per "
        "line), reading the call store directly.")
    p.add_argument("--since", metavar="WHEN",
                   help="ISO 8601 time (UTC unless it has an offset) or epoch seconds "
                        "(default: 24 hours ago)")
    p.add_argument("--format", choices=export.FORMATS, default="jsonl",
                   help="csv or jsonl (default: %(default)s)")
    p.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    p.add_argument("--store", metavar="PATH",
                   help="the call store (default: <data dir>/calls.sqlite, as store.calls)")
    p.set_defaults(func=_cmd_export)
