"""Configuration of push delivery (the ``webhooks:`` section of the agent's YAML)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from agent.errors import ConfigError

#: What is pushed: ``decision`` when a call's inferred code is first decided or changes,
#: ``final`` when its record will not change any more.
EVENTS: tuple[str, ...] = ("decision", "final")
#: When the queue is full, the oldest waiting delivery or the new one is dropped.
WHEN_FULL: tuple[str, ...] = ("drop_oldest", "drop_newest")
#: Shorter secrets are refused, as for ``api.token``.
MIN_SECRET_CHARS = 16
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """Where decisions and final call records are POSTed, how they are signed and retried.

    Build it from YAML with ``agent.config.build(WebhookConfig, section, "webhooks")``.

    Attributes
    ----------
    url
        ``http://`` or ``https://`` URL that receives each event; empty turns pushing off.
    secret_env
        The environment variable holding the HMAC-SHA256 key (at least 16 characters);
        it must be set when ``url`` is. The key itself never appears in the config.
    events
        Which of :data:`EVENTS` are pushed.
    timeout_s
        One attempt's limit, from connecting to the end of the response.
    max_attempts
        Attempts per event before it is given up (counted as failed).
    backoff_s, backoff_max_s
        The wait before the second attempt; it doubles after each failure up to
        ``backoff_max_s``.
    queue_size
        Events waiting for a sender; beyond it one is dropped as ``when_full`` says.
    when_full
        ``drop_oldest`` (keep the newest events) or ``drop_newest`` (refuse new ones).
    concurrency
        Deliveries in flight at once; above 1 events may arrive out of order.
    """

    url: str = ""
    secret_env: str = "EMA_WEBHOOK_SECRET"
    events: list[str] = field(default_factory=lambda: list(EVENTS))
    timeout_s: float = 5.0
    max_attempts: int = 8
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    queue_size: int = 10000
    when_full: str = "drop_oldest"
    concurrency: int = 4

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def secret(self) -> bytes:
        """The signing key, read from ``secret_env``."""
        value = os.environ.get(self.secret_env, "")
        if not value:
            raise ConfigError(f"webhooks.secret_env: environment variable {self.secret_env} "
                              "is not set (it holds the webhook signing key)")
        if len(value) < MIN_SECRET_CHARS:
            raise ConfigError(f"webhooks.secret_env: {self.secret_env} must hold at least "
                              f"{MIN_SECRET_CHARS} characters")
        return value.encode()

    def validate(self) -> None:
        if self.url:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"url: expected an http:// or https:// URL, got {self.url!r}")
        if not _ENV_NAME.match(self.secret_env):
            raise ConfigError(f"secret_env: expected an environment variable name, "
                              f"got {self.secret_env!r}")
        for i, event in enumerate(self.events):
            if event not in EVENTS:
                raise ConfigError(f"events[{i}]: expected one of {', '.join(EVENTS)}, "
                                  f"got {event!r}")
        if not 0 < self.timeout_s <= 300:
            raise ConfigError(f"timeout_s: expected 0 < value <= 300, got {self.timeout_s}")
        if not 1 <= self.max_attempts <= 100:
            raise ConfigError(f"max_attempts: expected 1..100, got {self.max_attempts}")
        if not 0 < self.backoff_s <= self.backoff_max_s:
            raise ConfigError(f"backoff_s: expected 0 < value <= backoff_max_s "
                              f"({self.backoff_max_s}), got {self.backoff_s}")
        if self.backoff_max_s > 3600:
            raise ConfigError(f"backoff_max_s: expected at most 3600, got {self.backoff_max_s}")
        if self.queue_size < 1:
            raise ConfigError(f"queue_size: expected >= 1, got {self.queue_size}")
        if self.when_full not in WHEN_FULL:
            raise ConfigError(f"when_full: expected one of {', '.join(WHEN_FULL)}, "
                              f"got {self.when_full!r}")
        if not 1 <= self.concurrency <= 64:
            raise ConfigError(f"concurrency: expected 1..64, got {self.concurrency}")
        if self.url:
            self.secret()
