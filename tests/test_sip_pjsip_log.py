"""pjsip's log lines reach the worker's structured log, one JSON object a line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

pj = pytest.importorskip("pjsua2")

from agent.paths import HOME  # noqa: E402
from agent.sip.pjsip_log import (  # noqa: E402
    PjsipLogWriter,
    parse_line,
    pjsip_level,
    python_level,
)


@pytest.mark.parametrize(("pjsip", "python"), [
    (0, logging.CRITICAL), (1, logging.ERROR), (2, logging.WARNING), (3, logging.DEBUG),
    (5, logging.DEBUG)])
def test_pjsip_levels_map_to_python_levels(pjsip, python):
    assert python_level(pjsip) == python


@pytest.mark.parametrize(("agent", "pjsip"), [
    ("debug", 4), ("info", 2), ("warning", 2), ("error", 1)])
def test_pjsip_verbosity_follows_the_agent_level(agent, pjsip):
    assert pjsip_level(agent) == pjsip


def test_a_line_splits_into_sender_and_message():
    assert parse_line("        sip_endpoint.c  .Module registered") == (
        "sip_endpoint.c", "Module registered")
    assert parse_line("") == ("", "")


def test_the_writer_never_raises_whatever_pjsua2_hands_it():
    writer = PjsipLogWriter()
    writer.write(object())  # no msg, no level: dropped, not raised into pjsip


SCRIPT = textwrap.dedent("""
    import pjsua2 as pj
    from agent.logs import LoggingConfig, setup_logging
    from agent.sip import pjsip_log

    setup_logging(LoggingConfig(level="info", format="json"))
    pjsip_log.silence_startup()
    ep = pj.Endpoint()
    ep.libCreate()
    ec = pj.EpConfig()
    writer = pjsip_log.configure(ec.logConfig, "info")
    ep.libInit(ec)
    ep.utilLogWrite(1, "test.c", "an error")
    ep.utilLogWrite(2, "test.c", "a warning")
    ep.utilLogWrite(4, "test.c", "a debug line")
    ep.libDestroy()
    del writer, ep
""")


def test_an_endpoint_logs_pjsip_lines_as_json_and_exits_cleanly():
    """The start-up lines pjlib prints in libCreate are gone, each kept line is JSON at
    its mapped level, and the writer pjsua2 deletes in libDestroy is not deleted again."""
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          cwd=HOME, timeout=60, env={**os.environ, "PYTHONPATH": str(HOME)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = (proc.stdout + proc.stderr).splitlines()
    records = [json.loads(line) for line in lines]  # raises on any non-JSON line
    pjsip = [(r["level"], r["sender"], r["message"]) for r in records if r["event"] == "pjsip"]
    assert pjsip == [("error", "test.c", "an error"), ("warning", "test.c", "a warning")]
