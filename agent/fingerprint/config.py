"""Configuration of the announcement library and its matcher (the ``fingerprint`` section)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from agent.corpus.config import CODEC_NAMES
from agent.errors import ConfigError


def location_problem(location: str) -> str | None:
    """Why ``location`` cannot hold the library, or None if it can.

    A file that does not exist yet is fine when its directory does (and is writable): the
    agent creates the library on first use and keeps the unknown announcements it hears
    in it. A missing directory is a mistyped path far more often than a wish, so it is
    not created. ``postgresql://`` URLs are checked when opened.
    """
    if location.startswith(("postgresql://", "postgres://")):
        return None
    path = location.removeprefix("sqlite:///")
    if "://" in path:
        return (f"{location}: unsupported URL (use a file path, sqlite:///PATH or "
                "postgresql://)")
    p = Path(path)
    if p.is_dir():
        return f"{location}: is a directory, not a library file"
    if p.exists():
        return None if os.access(p, os.R_OK | os.W_OK) else f"{location}: not readable and writable"
    parent = p.parent
    if not parent.is_dir():
        return (f"{location}: no such file, and its directory {parent} does not exist "
                "(the library file is created on first use, its directory is not)")
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{location}: no such file, and its directory {parent} is not writable"
    return None


@dataclass(frozen=True, slots=True)
class FingerprintConfig:
    """Settings of :mod:`agent.fingerprint`, validated by :func:`agent.config.build`.

    Attributes
    ----------
    enabled : bool
        Look announcements up in the library at all (off: an announcement gets the
        configured default code at once).
    library : str or None
        SQLite file path or a ``postgresql://`` URL; None means
        ``agent.paths.data_dir() / "library.sqlite"``. A path that does not exist is
        created on first use if its directory exists (:func:`location_problem`).
    threshold : float
        Minimum calibrated score (0–1) of a match to report it.
    min_seconds : float
        Announcement audio the streaming matcher gathers before its first try.
    max_seconds : float
        Audio after which the streaming matcher gives up (and keeps no more).
    retry_seconds : float
        New audio between two tries of the streaming matcher.
    unknown_max_entries : int
        Unknown (unmatched) announcements kept; the least recently heard go first.
    unknown_max_age_days : float
        Unknown announcements not heard for this long are dropped.
    unknown_max_seconds : float
        Audio kept per unknown announcement.
    index_codecs : list of str
        Telephone codecs (names of ``agent.corpus.channel.CODECS``) through which each new
        reference is also fingerprinted. ``[opus-8k, amr-nb]`` lifts 2-s Opus queries from
        89% to 93% top-1 at twice the index size and a much slower ``library add``.
    """

    enabled: bool = True
    library: str | None = None
    threshold: float = 0.5
    min_seconds: float = 2.0
    max_seconds: float = 8.0
    retry_seconds: float = 0.5
    unknown_max_entries: int = 1000
    unknown_max_age_days: float = 30.0
    unknown_max_seconds: float = 10.0
    index_codecs: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if self.enabled and self.library:
            problem = location_problem(self.library)
            if problem is not None:
                raise ConfigError(f"library: {problem}")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold: must be between 0 and 1, got {self.threshold}")
        if not 0.5 <= self.min_seconds <= 30.0:
            raise ConfigError(f"min_seconds: must be 0.5–30, got {self.min_seconds}")
        if not self.min_seconds <= self.max_seconds <= 120.0:
            raise ConfigError(
                f"max_seconds: must be between min_seconds and 120, got {self.max_seconds}"
            )
        if not 0.1 <= self.retry_seconds <= 10.0:
            raise ConfigError(f"retry_seconds: must be 0.1–10, got {self.retry_seconds}")
        if self.unknown_max_entries < 0:
            raise ConfigError(f"unknown_max_entries: must be ≥ 0, got {self.unknown_max_entries}")
        if self.unknown_max_age_days <= 0:
            raise ConfigError(
                f"unknown_max_age_days: must be > 0, got {self.unknown_max_age_days}"
            )
        for codec in self.index_codecs:
            if codec not in CODEC_NAMES:
                raise ConfigError(
                    f"index_codecs: unknown codec {codec!r} (known: {', '.join(CODEC_NAMES)})"
                )
        if not 1.0 <= self.unknown_max_seconds <= 120.0:
            raise ConfigError(
                f"unknown_max_seconds: must be 1–120, got {self.unknown_max_seconds}"
            )
