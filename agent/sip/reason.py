"""The SIP ``Reason`` header (RFC 3326, RFC 6432): tolerant parsing and formatting.

Proxies rewrite spacing and quoting, and one message may carry several Reason headers or
several comma-separated values in one header; parsing never raises on odd input, it skips
what it cannot read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_PARAM = re.compile(
    r"""\s*;\s*([A-Za-z0-9_.!%*+`'~-]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"?|[^;,\s]*))?""",
)
_PROTOCOL = re.compile(r"\s*([A-Za-z0-9_.!%*+`'~-]+)")


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason value: ``protocol`` (``Q.850``, ``SIP``, …), its ``cause`` and ``text``."""

    protocol: str
    cause: int | None
    text: str | None = None

    def __str__(self) -> str:
        return format_reason(protocol=self.protocol, cause=self.cause, text=self.text)


def _unquote(value: str) -> str:
    if value.startswith('"'):
        value = value[1:-1] if value.endswith('"') and len(value) > 1 else value[1:]
        return re.sub(r"\\(.)", r"\1", value)
    return value


def _parse_one(value: str) -> tuple[Reason | None, str]:
    """Parse one reason-value at the start of ``value``; return it and the rest."""
    m = _PROTOCOL.match(value)
    if not m:
        return None, value
    protocol, pos = m.group(1), m.end()
    params: dict[str, str] = {}
    while True:
        pm = _PARAM.match(value, pos)
        if not pm:
            break
        params[pm.group(1).lower()] = _unquote(pm.group(2) or "")
        pos = pm.end()
    cause_text = params.get("cause", "").strip()
    cause = int(cause_text) if cause_text.isdigit() else None
    text = params.get("text")
    return Reason(protocol=protocol, cause=cause, text=text), value[pos:]


def parse_reasons(values: str | Iterable[str]) -> list[Reason]:
    """All reason values in one or several ``Reason`` header values.

    Parameters
    ----------
    values : str or iterable of str
        Header values without the ``Reason:`` name (a name, if present, is stripped).

    Returns
    -------
    list of Reason
        In order; values whose protocol cannot be read are skipped.

    Examples
    --------
    >>> [(r.protocol, r.cause, r.text) for r in parse_reasons(
    ...     'Q.850 ; cause = 17 ; text="User busy", SIP;cause=486')]
    [('Q.850', 17, 'User busy'), ('SIP', 486, None)]
    """
    if isinstance(values, str):
        values = [values]
    found: list[Reason] = []
    for raw in values:
        rest = re.sub(r"^\s*reason\s*:", "", raw, flags=re.IGNORECASE)
        while rest.strip():
            reason, rest = _parse_one(rest)
            if reason is not None:
                found.append(reason)
            # Skip to the next comma-separated value (or give up on garbage).
            comma = rest.find(",")
            if comma < 0:
                break
            rest = rest[comma + 1:]
    return found


def q850_cause(values: str | Iterable[str]) -> int | None:
    """The first Q.850 cause among the Reason values, or None."""
    for reason in parse_reasons(values):
        if reason.protocol.upper() == "Q.850" and reason.cause is not None:
            return reason.cause
    return None


def format_reason(*, protocol: str = "Q.850", cause: int | None, text: str | None = None) -> str:
    """One Reason header value, e.g. ``Q.850;cause=17;text="User busy"`` (RFC 6432).

    Quotes and backslashes in ``text`` are escaped; control characters are dropped.
    """
    parts = [protocol]
    if cause is not None:
        parts.append(f"cause={int(cause)}")
    if text:
        clean = "".join(ch for ch in text if ch >= " " and ch != "\x7f")
        clean = clean.replace("\\", "\\\\").replace('"', '\\"')
        parts.append(f'text="{clean}"')
    return ";".join(parts)


def verdict_headers(*, code_header: str, carrier_code: int, q850: int | None,
                    text: str | None, carrier_reason: str | None) -> dict[str, str]:
    """The headers of a final response the agent decided (rewriting on).

    Whether the inferred code replaced the carrier's or agreed with it, the response says
    the carrier's code in ``code_header`` and the agent's Q.850 Reason (the carrier's own
    Reason when the inference has no cause): a relayed response without them is one the
    agent did not decide.
    """
    headers = {code_header: str(carrier_code)}
    if q850 is not None:
        headers["Reason"] = format_reason(cause=q850, text=text or None)
    elif carrier_reason:
        headers["Reason"] = carrier_reason
    return headers
