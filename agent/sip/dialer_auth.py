"""An optional digest check on the dialer's INVITEs (RFC 3261 §22, RFC 2617 MD5), for
deployments where the source allow-list is not enough.

The agent keeps no state per challenge: a nonce is the time it was issued and an HMAC of
that time under a key made at start, so any worker (and a restarted one, within the
nonce's life) can check it. A nonce older than :data:`NONCE_LIFE_S` is refused as stale.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
from dataclasses import dataclass

import structlog

from agent.errors import ConfigError
from agent.sip.headers import header, start_line

log = structlog.get_logger("agent.sip.worker")

#: How long a nonce answers a challenge.
NONCE_LIFE_S = 60.0
#: The environment variable by which the supervisor hands its workers the nonce key.
NONCE_KEY_ENV = "EMA_DIALER_NONCE_KEY"
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class DialerAuth:
    """Credentials the dialer must prove with each INVITE; empty username: no check."""

    username: str = ""
    password: str = ""
    realm: str = "early-media-agent"

    def validate(self) -> None:
        if self.username and not self.password:
            raise ConfigError("dialer_auth.password: required with dialer_auth.username")
        if self.username and not re.fullmatch(r"[^\"\\\r\n]+", self.realm):
            raise ConfigError("dialer_auth.realm: a realm without quotes or line breaks")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


class DigestCheck:
    """Issues challenges and checks answers for one :class:`DialerAuth`.

    ``key`` signs nonces; workers of one agent share it (the supervisor passes it in the
    environment), so a challenge issued by one is answered at any.
    """

    def __init__(self, auth: DialerAuth, key: bytes | None = None) -> None:
        self.auth = auth
        self.key = key or os.urandom(16)

    def _sign(self, stamp: str) -> str:
        return hmac.new(self.key, stamp.encode(), hashlib.sha256).hexdigest()[:24]

    def challenge(self, *, now: float | None = None, stale: bool = False) -> str:
        """A Proxy-Authenticate value with a fresh nonce."""
        stamp = str(int(now if now is not None else time.time()))  # floor: never ahead
        extra = ", stale=true" if stale else ""
        return (f'Digest realm="{self.auth.realm}", nonce="{stamp}.{self._sign(stamp)}", '
                f"algorithm=MD5{extra}")

    def verify(self, msg: str, *, now: float | None = None) -> str:
        """``ok``, ``stale`` (a right answer to an expired nonce) or ``missing``/``bad``."""
        value = header(msg, "proxy-authorization") or header(msg, "authorization")
        if not value or not value.lower().startswith("digest "):
            return "missing"
        params = {k.lower(): (q if q else t) for k, q, t in _PARAM.findall(value[7:])}
        nonce = params.get("nonce", "")
        stamp, _, sig = nonce.partition(".")
        if not stamp.isdigit() or not hmac.compare_digest(sig, self._sign(stamp)):
            return "bad"
        if params.get("username") != self.auth.username \
                or params.get("realm") != self.auth.realm:
            return "bad"
        method = start_line(msg).split(" ", 1)[0]
        ha1 = _md5(f"{self.auth.username}:{self.auth.realm}:{self.auth.password}")
        ha2 = _md5(f"{method}:{params.get('uri', '')}")
        qop = params.get("qop")
        if qop:
            expected = _md5(f"{ha1}:{nonce}:{params.get('nc', '')}:{params.get('cnonce', '')}"
                            f":{qop}:{ha2}")
        else:
            expected = _md5(f"{ha1}:{nonce}:{ha2}")
        if not hmac.compare_digest(params.get("response", ""), expected):
            return "bad"
        age = (now if now is not None else time.time()) - int(stamp)
        return "ok" if -1 <= age <= NONCE_LIFE_S else "stale"

    def refusal(self, msg: str, call_id: str) -> tuple[int, str, dict[str, str]] | None:
        """How to refuse an INVITE: 407 with a challenge if it carries no valid digest (or
        a stale one), 403 if it carries a wrong one; None if it may go on."""
        verdict = self.verify(msg)
        if verdict == "ok":
            return None
        if verdict == "bad":
            log.warning("dialer_auth_failed", call_id=call_id)
            return 403, "Bad Credentials", {}
        return 407, "Proxy Authentication Required", {
            "Proxy-Authenticate": self.challenge(stale=verdict == "stale")}
