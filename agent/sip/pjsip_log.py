"""pjsip's own log lines, routed into the worker's structured log (one JSON object a line).

Left alone, pjlib prints its start-up and error lines to stdout in its own format, in
between the agent's JSON lines. :func:`configure` gives the endpoint a
:class:`PjsipLogWriter` instead, which re-logs each line through structlog at the mapped
level (:func:`python_level`), and :func:`silence_startup` quiets what pjlib prints in
``libCreate`` before any configuration applies.

Three rules keep the writer from hurting the worker:

- ``write`` runs on whichever pjsip thread logged (pjmedia's clock thread among them),
  inside pjsip with its locks held: it does one log call, and never raises (pjsua2 would
  print the exception as a non-JSON traceback).
- pjsua2 deletes the writer's C++ half itself in ``libDestroy``; Python must not delete it
  a second time, so the wrapper gives up its ownership (``thisown``), and the endpoint
  keeps a reference to the Python object for its whole life.
- pjsip's verbosity follows the agent's log level (:func:`pjsip_level`), so the GIL-bound
  writer is not called for lines nobody keeps: every line costs the media clock.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any

import pjsua2 as pj
import structlog

log = structlog.get_logger("agent.sip.pjsip")

#: pjsip level → Python level: 0 fatal, 1 error, 2 warning; 3 and up are debug. pjsip's
#: level 3 is not an agent's info: it dumps every call's RTP statistics (some 20 lines per
#: leg) at hang-up and notes each conference reconnection from the clock thread.
_LEVELS = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING}


def python_level(pjsip: int) -> int:
    """The stdlib level of a pjsip log level (3 and above are debug)."""
    return _LEVELS.get(pjsip, logging.DEBUG)


def pjsip_level(level: str) -> int:
    """How verbose pjsip should be for the agent's ``logging.level``.

    Info and warning keep pjsip's errors and warnings. Debug asks for level 4
    (transactions, dialogs), not 5-6 (every message in full, several lines per packet):
    the SIP ladder in the call record already has those.
    """
    return {"DEBUG": 4, "INFO": 2, "WARNING": 2}.get(level.upper(), 1)


def parse_line(text: str) -> tuple[str, str]:
    """``(sender, message)`` of a line written with only ``PJ_LOG_HAS_SENDER`` decoration.

    Examples
    --------
    >>> parse_line("     pjsua_core.c  .Error sending request")
    ('pjsua_core.c', 'Error sending request')
    """
    sender, _, message = text.strip().partition(" ")
    return sender, message.strip().lstrip(".").strip()


class PjsipLogWriter(pj.LogWriter):
    """Re-logs pjsip's lines as ``pjsip`` events with ``sender`` and ``message``."""

    def write(self, entry: Any) -> None:  # noqa: D102 (pjsua2 API)
        try:
            sender, message = parse_line(entry.msg)
            log.log(python_level(entry.level), "pjsip", sender=sender, message=message,
                    pjsip_level=entry.level, thread=entry.threadName)
        except Exception:  # noqa: BLE001 - pjsua2 would print it as a raw traceback
            pass


def silence_startup() -> None:
    """Stop pjlib printing its start-up lines (``libCreate`` logs at its default level,
    before :func:`configure` can apply). pjsua sets the level again in ``libInit``."""
    try:
        ctypes.CDLL(pj._pjsua2.__file__).pj_log_set_level(ctypes.c_int(0))
    except (OSError, AttributeError):  # a build without the symbol: a few raw lines
        pass


def configure(log_config: Any, level: str) -> PjsipLogWriter:
    """Point an ``EpConfig.logConfig`` at a new writer; the caller keeps the writer alive.

    Parameters
    ----------
    log_config : pjsua2.LogConfig
        ``EpConfig().logConfig``, before ``libInit``.
    level : str
        The agent's ``logging.level`` (debug, info, warning, error).
    """
    writer = PjsipLogWriter()
    writer.thisown = False  # pjsua2's libDestroy deletes it (see the module notes)
    verbosity = pjsip_level(level)
    log_config.level = verbosity
    log_config.consoleLevel = verbosity  # the writer only gets lines up to this level
    log_config.decor = pj.PJ_LOG_HAS_SENDER
    log_config.writer = writer
    return writer
