"""Which INVITEs a worker takes: the source allow-list, the edge, Call-ID form, INVITE rate.

With one worker the worker is the edge and applies all of it. Behind Kamailio the edge is
Kamailio (allow-list, ``pike`` rate limit and ``sanity`` checks in config/kamailio): the
worker then takes new INVITEs from Kamailio's address only, and reads the real source
from the ``X-EMA-Source`` header Kamailio sets (after removing any the dialer sent).
"""

from __future__ import annotations

import ipaddress
import re
import time

import structlog

from agent.sip.config import SipConfig
from agent.sip.headers import header

log = structlog.get_logger("agent.sip.admission")

SOURCE_HEADER = "X-EMA-Source"
# RFC 3261 §25.1: callid = word [ "@" word ]; word is printable ASCII minus a few.
_WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
_CALL_ID = re.compile(rf"{_WORD}(?:@{_WORD})?")
MAX_CALL_ID = 256


def valid_call_id(value: str) -> bool:
    """Whether ``value`` is a Call-ID of RFC 3261's form (and at most 256 characters)."""
    return 0 < len(value) <= MAX_CALL_ID and _CALL_ID.fullmatch(value) is not None


def split_address(addr: str) -> str:
    """The IP of pjsua2's ``"ip:port"`` / ``"[v6]:port"`` form."""
    return addr.rpartition(":")[0].strip("[]") if ":" in addr else addr


class Admission:
    """The worker's admission checks for new INVITEs (see the module docstring)."""

    def __init__(self, cfg: SipConfig) -> None:
        self.cfg = cfg
        self.networks = cfg.allowed_networks()
        self.behind_edge = cfg.workers > 1
        self._buckets: dict[str, tuple[float, float]] = {}
        self._warned: dict[str, float] = {}

    def from_edge(self, src_addr: str) -> bool:
        """Behind Kamailio, only Kamailio may start calls on a worker port."""
        return not self.behind_edge or split_address(src_addr) == self.cfg.listen_host

    def source(self, msg: str, src_addr: str) -> str:
        """The address a call really came from (Kamailio's header when it is in front)."""
        ip = split_address(src_addr)
        if self.behind_edge and ip == self.cfg.listen_host:
            named = (header(msg, SOURCE_HEADER) or "").strip()
            try:
                return str(ipaddress.ip_address(named))
            except ValueError:
                pass
        return ip

    def allowed(self, source: str) -> bool:
        """Whether ``source`` lies in ``sip.allowed_sources``."""
        try:
            ip = ipaddress.ip_address(source)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def rate_limited(self, source: str, *, now: float | None = None) -> bool:
        """A token bucket per source: ``invite_rate_per_source`` a second, bursts of twice
        that. Behind Kamailio its ``pike`` module does this at the edge instead."""
        rate = self.cfg.invite_rate_per_source
        if rate <= 0 or self.behind_edge:
            return False
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(source, (2 * rate, now))
        tokens = min(2 * rate, tokens + (now - last) * rate)
        if tokens < 1.0:
            self._buckets[source] = (tokens, now)
            if now - self._warned.get(source, -1e9) > 10.0:
                self._warned[source] = now
                log.warning("invite_rate_limited", source=source, per_second=rate)
            return True
        self._buckets[source] = (tokens - 1.0, now)
        if len(self._buckets) > 10000:
            self._buckets.clear()
        return False
