"""The built-in ``/dashboard`` page: ASR per carrier and route, inferred codes, recent calls.

Rendered on the server as one self-contained HTML document (inline CSS, no scripts, no
external resources) so it works on an operator network without internet access; it
reloads itself every :data:`REFRESH_S` seconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape

from agent import __version__
from agent.store.calls import AsrRow, CallRecord

REFRESH_S = 15

#: Reason phrases of the codes the agent infers (RFC 3261 section 21).
SIP_REASONS: dict[int, str] = {
    180: "Ringing", 183: "Session Progress", 403: "Forbidden", 404: "Not Found",
    408: "Request Timeout", 410: "Gone", 480: "Temporarily Unavailable",
    484: "Address Incomplete", 486: "Busy Here", 487: "Request Terminated",
    502: "Bad Gateway", 503: "Service Unavailable", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere",
}

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;background:#fff;min-width:40em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;white-space:nowrap}
th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;height:.8em;background:#3a7bd5;vertical-align:middle}
.muted{color:#777}
"""


def _text(value: object) -> str:
    return '<span class="muted">&ndash;</span>' if value is None else escape(str(value))


def _bar(fraction: float, width_px: int = 160) -> str:
    return f'<span class="bar" style="width:{max(0, min(1, fraction)) * width_px:.0f}px"></span>'


def _asr_table(title: str, rows: list[AsrRow]) -> str:
    if not rows:
        return f"<h2>{escape(title)}</h2><p class=muted>No calls in this window.</p>"
    body = "".join(
        f"<tr><td>{_text(r.key)}</td><td class=n>{r.attempts}</td><td class=n>{r.answered}</td>"
        f"<td class=n>{r.asr:.1%}</td><td>{_bar(r.asr)}</td>"
        f"<td>{escape(', '.join(f'{c}: {n}' for c, n in sorted(r.inferred.items())))}</td></tr>"
        for r in rows
    )
    return (
        f"<h2>{escape(title)}</h2><table><tr><th>{escape(title.split()[-1])}</th><th>attempts"
        "</th><th>answered</th><th>ASR</th><th></th><th>inferred codes</th></tr>"
        f"{body}</table>"
    )


def _codes_table(rows: Iterable[AsrRow]) -> str:
    counts: Counter[int] = Counter()
    for r in rows:
        counts.update(r.inferred)
    if not counts:
        return "<h2>Inferred codes</h2><p class=muted>No codes inferred in this window.</p>"
    total = sum(counts.values())
    body = "".join(
        f"<tr><td>{code}</td><td>{escape(SIP_REASONS.get(code, ''))}</td>"
        f"<td class=n>{n}</td><td class=n>{n / total:.1%}</td><td>{_bar(n / total)}</td></tr>"
        for code, n in counts.most_common()
    )
    return (
        "<h2>Inferred codes</h2><table><tr><th>code</th><th>reason</th><th>calls</th>"
        f"<th>share</th><th></th></tr>{body}</table>"
    )


def _fas(fas: dict | None) -> str | None:
    """The false-answer column: suspected, no, or empty when the check did not run."""
    if fas is None:
        return None
    return "suspected" if fas.get("suspected") else "no"


def _calls_table(calls: list[CallRecord]) -> str:
    if not calls:
        return "<h2>Recent calls</h2><p class=muted>No calls in this window.</p>"
    body = []
    for c in calls:
        inf = c.inferred
        body.append(
            f"<tr><td>{c.started_at.strftime('%Y-%m-%d %H:%M:%S')}</td>"
            f"<td>{_text(c.call_id)}</td><td>{_text(c.correlation_id)}</td>"
            f"<td>{_text(c.carrier)}</td><td>{_text(c.route)}</td><td>{_text(c.state)}</td>"
            f"<td class=n>{_text(c.carrier_final_code)}</td>"
            f"<td class=n>{_text(inf.sip_code if inf else None)}</td>"
            f"<td>{_text(inf.source if inf else None)}</td>"
            f"<td>{_text(inf.reason if inf else None)}</td>"
            f"<td>{_text(_fas(c.fas))}</td></tr>"
        )
    return (
        "<h2>Recent calls</h2><table><tr><th>started (UTC)</th><th>Call-ID</th>"
        "<th>correlation</th><th>carrier</th><th>route</th><th>state</th><th>carrier code</th>"
        "<th>inferred</th><th>source</th><th>reason</th><th>false answer</th></tr>"
        + "".join(body) + "</table>"
    )


def render_dashboard(
    *,
    carriers: list[AsrRow],
    routes: list[AsrRow],
    calls: list[CallRecord],
    since: datetime,
    now: datetime | None = None,
) -> str:
    """The dashboard page as one HTML string.

    Parameters
    ----------
    carriers, routes : list of AsrRow
        ``CallStore.asr("carrier" | "route", since)``.
    calls : list of CallRecord
        The most recent calls, newest first.
    since : datetime
        Start of the window the numbers cover.
    now : datetime or None
        The time shown as "generated"; None is the current time.
    """
    now = now or datetime.now(UTC)
    window = f"{since.astimezone(UTC):%Y-%m-%d %H:%M} to {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="refresh" content="{REFRESH_S}">'
        "<title>early-media-agent</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>early-media-agent <span class=muted>{escape(__version__)}</span></h1>"
        f"<p class=muted>Calls started {escape(window)}. ASR = answered / attempts.</p>"
        + _asr_table("ASR per carrier", carriers)
        + _asr_table("ASR per route", routes)
        + _codes_table(carriers)
        + _calls_table(calls)
        + "</body></html>"
    )
