"""structlog set-up: JSON lines in production, readable console lines in development.

Lines of the standard library's loggers (asyncio, aiohttp) go through the same renderer,
so in JSON every line on stderr is one object (pjsip's: :mod:`agent.sip.pjsip_log`).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import TextIO

import structlog

from agent.errors import ConfigError


@dataclass(frozen=True)
class LoggingConfig:
    """The ``logging`` section."""

    level: str = "info"
    format: str = "json"  # json (one object per line) or console

    def validate(self) -> None:
        if self.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"level: {self.level!r} is not debug, info, warning or error")
        if self.format not in ("json", "console"):
            raise ConfigError(f"format: {self.format!r} is not json or console")


def setup_logging(cfg: LoggingConfig = LoggingConfig(), *, stream: TextIO = sys.stderr) -> None:
    """Configure structlog (and the stdlib loggers it wraps) once per process."""
    level = getattr(logging, cfg.level.upper())
    renderer = (
        structlog.processors.JSONRenderer()
        if cfg.format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name,
                           structlog.processors.add_log_level, stamp],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer],
    ))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamp,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # One write() per line: print() writes the line and its newline apart, and with
        # unbuffered streams (PYTHONUNBUFFERED, usual in containers) the supervisor's and
        # the workers' lines on a shared stderr interleaved mid-line.
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
