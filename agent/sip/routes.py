"""Routes and carriers: which carrier gets a call, at which address, with which analysis.

A route matches the dialer's INVITE on the Request-URI (a prefix of its user part, its
host) and/or a header the PBX sets (``X-Carrier: acme``); the first route that matches
wins and names a carrier. A carrier is a friendly name, its addresses in order (the next
one is tried when one answers 503) and its transport. The names are what the API, the
metrics and the dashboard show, so their number stays bounded whatever the dialled
numbers.

A single-carrier deployment needs none of this: ``sip.carrier: host:port`` is the carrier
``default`` and every call takes the route ``default``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.errors import ConfigError
from agent.sip.headers import header, request_user, start_line

if TYPE_CHECKING:
    from agent.sip.config import SipConfig

DEFAULT = "default"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
_ADDRESS = re.compile(r"^[A-Za-z0-9_.-]+:\d{1,5}$")


@dataclass(frozen=True)
class CarrierConfig:
    """One carrier: its addresses (``host:port``, tried in order) and its transport."""

    addresses: list[str]
    transport: str = "udp"

    def validate(self) -> None:
        if not self.addresses:
            raise ConfigError("addresses: at least one host:port")
        for address in self.addresses:
            if not _ADDRESS.match(str(address)) or not 1 <= int(address.rsplit(":", 1)[1]) <= 65535:
                raise ConfigError(f"addresses: {address!r} is not host:port")
        if self.transport not in ("udp", "tcp", "tls"):
            raise ConfigError(f"transport: {self.transport!r} is not one of udp, tcp, tls")


@dataclass(frozen=True)
class RouteConfig:
    """One row of the route table; empty match fields match anything."""

    name: str
    carrier: str
    prefix: str = ""  # the Request-URI user starts with this
    host: str = ""  # the Request-URI host is this
    header: str = ""  # the dialer's INVITE has this header ...
    value: str = ""  # ... with this value (case-insensitive)
    rewrite: bool | None = None  # sip.rewrite_final_response for this route
    tone_countries: list[str] = field(default_factory=list)  # tones.countries for it

    def validate(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(f"name: {self.name!r} is not a route name (letters, digits, "
                              "'.', '_', '-'; up to 40)")
        if bool(self.header) != bool(self.value):
            raise ConfigError("header and value: give both, or neither")

    def matches(self, user: str, host: str, msg: str) -> bool:
        if self.prefix and not user.startswith(self.prefix):
            return False
        if self.host and host.lower() != self.host.lower():
            return False
        if self.header:
            got = header(msg, self.header.lower())
            if got is None or got.strip().lower() != self.value.lower():
                return False
        return True

    def shadows(self, later: RouteConfig) -> bool:
        """Whether every call ``later`` matches is taken by this route first."""
        return ((not self.prefix or later.prefix.startswith(self.prefix))
                and (not self.host or self.host.lower() == later.host.lower())
                and (not self.header or (self.header.lower() == later.header.lower()
                                         and self.value.lower() == later.value.lower())))


@dataclass(frozen=True)
class Target:
    """Where one call goes, and how it is analysed."""

    route: str
    carrier: str
    addresses: tuple[str, ...]
    transport: str
    rewrite: bool
    tone_countries: tuple[str, ...] = ()

    def uri(self, user: str, attempt: int) -> str:
        """The carrier leg's Request-URI for address number ``attempt``."""
        param = "" if self.transport == "udp" else f";transport={self.transport}"
        return f"sip:{user}@{self.addresses[attempt]}{param}"


def carriers(cfg: SipConfig) -> dict[str, CarrierConfig]:
    """The configured carriers, or ``default`` at ``sip.carrier``."""
    return dict(cfg.carriers) or {DEFAULT: CarrierConfig(addresses=[cfg.carrier])}


def routes(cfg: SipConfig) -> list[RouteConfig]:
    """The configured routes, or ``default`` to the only carrier."""
    if cfg.routes:
        return list(cfg.routes)
    return [RouteConfig(name=DEFAULT, carrier=next(iter(carriers(cfg))))]


def check_routes(cfg: SipConfig) -> None:
    """Raise ConfigError naming the route or carrier that cannot work."""
    for name in cfg.carriers:
        if not _NAME.match(str(name)):
            raise ConfigError(f"carriers.{name}: not a carrier name (letters, digits, '.', "
                              "'_', '-'; up to 40)")
    if cfg.routes and not cfg.carriers:
        raise ConfigError("routes: need sip.carriers to name their carriers")
    if cfg.carriers and not cfg.routes:
        raise ConfigError("carriers: need sip.routes to send calls to them")
    known = carriers(cfg)
    seen: set[str] = set()
    table = cfg.routes
    for i, route in enumerate(table):
        key = f"routes[{i}]"
        if route.name in seen:
            raise ConfigError(f"{key}.name: {route.name} is used twice")
        seen.add(route.name)
        if route.carrier not in known:
            raise ConfigError(f"{key}.carrier: {route.carrier} is not in sip.carriers "
                              f"({', '.join(sorted(known))})")
        for j, earlier in enumerate(table[:i]):
            if earlier.shadows(route):
                raise ConfigError(f"{key}: never used, routes[{j}] ({earlier.name}) takes "
                                  "every call it matches (first match wins)")


def route_call(cfg: SipConfig, msg: str) -> Target | None:
    """Where the dialer's INVITE ``msg`` goes; None if no route matches."""
    parts = start_line(msg).split()
    uri = parts[1] if len(parts) > 1 else ""
    m = re.match(r"(?:sips?|tel):(?:[^@;>]*@)?([^;:>]*)", uri, re.IGNORECASE)
    user, host = request_user(msg), (m.group(1) if m else "")
    known = carriers(cfg)
    for route in routes(cfg):
        if route.matches(user, host, msg):
            carrier = known[route.carrier]
            return Target(
                route=route.name, carrier=route.carrier,
                addresses=tuple(carrier.addresses), transport=carrier.transport,
                rewrite=cfg.rewrite_final_response if route.rewrite is None else route.rewrite,
                tone_countries=tuple(route.tone_countries))
    return None
