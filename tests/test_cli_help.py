"""Every command explains itself: its own description, and help on every option."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

from agent.cli import build_parser


def all_parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """(command line, parser) of the top-level parser and every subcommand under it."""
    found = []

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        found.append((prefix, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(f"{prefix} {name}", child)

    walk("early-media-agent", build_parser())
    return found


PARSERS = all_parsers()
IDS = [name for name, _ in PARSERS]


@pytest.mark.parametrize("name,parser", PARSERS, ids=IDS)
def test_every_option_and_argument_has_help(name, parser):
    missing = [action.option_strings or action.dest for action in parser._actions
               if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
               and (not action.help or action.help == argparse.SUPPRESS)]
    assert not missing, f"{name}: no help for {missing}"


@pytest.mark.parametrize("name,parser", PARSERS, ids=IDS)
def test_every_command_has_a_description(name, parser):
    assert parser.description and len(parser.description) > 20, name


def test_no_two_commands_share_a_description():
    by_text: dict[str, list[str]] = {}
    for name, parser in PARSERS:
        by_text.setdefault(parser.description or "", []).append(name)
    shared = [names for names in by_text.values() if len(names) > 1]
    assert not shared, f"same description: {shared}"


def test_every_subcommand_is_listed_with_a_one_line_help():
    for name, parser in PARSERS:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                listed = {a.dest: a.help for a in action._choices_actions}
                assert set(listed) == set(action.choices), name
                assert all(listed.values()), f"{name}: {listed}"


@pytest.mark.parametrize("name", IDS)
def test_help_prints_and_exits_cleanly(name):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*name.split()[1:], "--help"])
    assert exc.value.code == 0
    assert out.getvalue().startswith("usage: " + name)
