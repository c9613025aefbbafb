"""The ``early-media-agent`` command line.

Each subsystem owns its subcommands: a module listed in :data:`COMMAND_MODULES` exposes
``register(subparsers)`` that adds its parsers with ``set_defaults(func=handler)``;
``handler(args) -> int`` returns the exit status. A :class:`~agent.errors.UserError`
anywhere becomes one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from agent import __version__
from agent.errors import UserError

COMMAND_MODULES: tuple[str, ...] = (
    "agent.corpus.cli",
    "agent.distill.cli",
    "agent.classify.cli",
    "agent.fingerprint.cli",
    "agent.tones.cli",
    "agent.sip.cli",
    "agent.store.cli",
    "agent.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="early-media-agent",
        description="Classify carrier early media and infer the SIP failure code it means.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"early-media-agent: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("early-media-agent: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
