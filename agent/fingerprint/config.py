"""Configuration of the announcement library and its matcher (the ``fingerprint`` section)."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.corpus.config import CODEC_NAMES
from agent.errors import ConfigError


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
        ``agent.paths.data_dir() / "library.sqlite"``.
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
