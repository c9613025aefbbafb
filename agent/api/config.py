"""Configuration of the HTTP API (the ``api:`` section of the agent's YAML)."""

from __future__ import annotations

from dataclasses import dataclass

from agent.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """Where the API listens and the bounds it puts on clients.

    Build it from YAML with ``agent.config.build(ApiConfig, section, "api")``.

    Attributes
    ----------
    host, port
        Listen address; port 0 picks a free port (tests).
    max_wait_s
        Upper bound of ``?wait=`` on ``GET /v1/calls/{id}``; larger values are a 400.
    poll_interval_s
        How often a long poll re-reads the store, for decisions written by another
        process that cannot notify this one.
    list_limit_default, list_limit_max
        ``?limit=`` of ``GET /v1/calls`` when absent, and its largest accepted value.
    default_window_s
        How far back ``since`` reaches when a request leaves it out.
    retention_days
        Calls older than this are pruned from the store (hourly); 0 keeps them forever.
    token
        Bearer token every request but ``/healthz`` must carry (``Authorization: Bearer``);
        required when ``host`` is beyond loopback, optional on it. Write it as
        ``${EMA_API_TOKEN}`` to keep it out of the file.
    header_timeout_s
        A request's headers must arrive within this many seconds of its first byte (and a
        new connection's first request within this of opening), else it is closed.
    max_connections
        Open connections beyond this are closed at once.
    keepalive_s
        An idle keep-alive connection is closed after this long.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    max_wait_s: float = 60.0
    poll_interval_s: float = 0.1
    list_limit_default: int = 100
    list_limit_max: int = 1000
    default_window_s: float = 86400.0
    retention_days: float = 30.0
    token: str = ""
    header_timeout_s: float = 10.0
    max_connections: int = 512
    keepalive_s: float = 15.0

    def validate(self) -> None:
        from agent.api.guard import is_loopback

        if not self.token and not is_loopback(self.host):
            raise ConfigError(f"token: required when host ({self.host}) is beyond loopback; "
                              "set token: ${EMA_API_TOKEN} and export it")
        if self.token and len(self.token) < 16:
            raise ConfigError("token: use at least 16 characters")
        if not 0 < self.header_timeout_s <= 300:
            raise ConfigError(f"header_timeout_s: expected 0 < value <= 300, got "
                              f"{self.header_timeout_s}")
        if self.max_connections < 1:
            raise ConfigError(f"max_connections: expected >= 1, got {self.max_connections}")
        if self.keepalive_s <= 0:
            raise ConfigError(f"keepalive_s: expected > 0, got {self.keepalive_s}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port: expected 0..65535, got {self.port}")
        if not 0 < self.max_wait_s <= 3600:
            raise ConfigError(f"max_wait_s: expected 0 < value <= 3600, got {self.max_wait_s}")
        if not 0 < self.poll_interval_s <= 10:
            raise ConfigError(
                f"poll_interval_s: expected 0 < value <= 10, got {self.poll_interval_s}"
            )
        if self.list_limit_max < 1:
            raise ConfigError(f"list_limit_max: expected >= 1, got {self.list_limit_max}")
        if not 1 <= self.list_limit_default <= self.list_limit_max:
            raise ConfigError(
                f"list_limit_default: expected 1..list_limit_max ({self.list_limit_max}),"
                f" got {self.list_limit_default}"
            )
        if self.default_window_s <= 0:
            raise ConfigError(f"default_window_s: expected > 0, got {self.default_window_s}")
        if self.retention_days < 0:
            raise ConfigError(f"retention_days: expected >= 0, got {self.retention_days}")
