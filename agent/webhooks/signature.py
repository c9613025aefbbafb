"""The webhook signature: HMAC-SHA256 over a timestamp and the exact body bytes.

Every delivery carries ``X-EMA-Signature: t=<unix seconds>,v1=<hex digest>`` where the
digest is ``HMAC-SHA256(secret, "<t>." + body)``. A receiver recomputes it over the raw
body it read, compares in constant time, and refuses a ``t`` older (or newer) than a few
minutes, so a captured request cannot be replayed later; each event's ``id`` (the same
on every retry) lets it drop the duplicates a retry can cause. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

HEADER = "X-EMA-Signature"
#: How far a receiver lets the signed time differ from its clock, by default.
TOLERANCE_S = 300


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-EMA-Signature`` value for ``body`` sent at ``timestamp``.

    Examples
    --------
    >>> sign(b"0123456789abcdef", 1700000000, b"{}")[:15]
    't=1700000000,v1'
    """
    digest = hmac.new(secret, b"%d." % timestamp + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: bytes, header: str | None, body: bytes, *, now: float | None = None,
           tolerance_s: float = TOLERANCE_S) -> bool:
    """True if ``header`` signs ``body`` with ``secret`` within ``tolerance_s`` of ``now``.

    A missing or malformed header, a wrong digest or a stale time is False.
    """
    if not header:
        return False
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    stamp, digest = fields.get("t", ""), fields.get("v1", "")
    if not re.fullmatch(r"[0-9]{1,12}", stamp) or not digest:
        return False
    t = int(stamp)
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    expected = sign(secret, t, body).rsplit("v1=", 1)[1]
    return hmac.compare_digest(expected, digest)
