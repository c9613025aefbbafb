"""The dashboard's front page, ``/dashboard``: activity over time, ASR per carrier and route,
inferred codes, and the recent calls, each linked to its call page."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from agent.api.dashboard.charts import PALETTE, Series, line_chart, stacked_bars
from agent.api.dashboard.layout import (
    SIP_REASONS,
    Links,
    Window,
    bar,
    code,
    page,
    picker,
    scroll,
    text,
    when,
)
from agent.store.queries import HonestyRow, Timeline
from agent.store.records import AsrRow, CallRecord

#: Carriers drawn as their own line; the others are summed as "other".
MAX_LINES = 6
#: Inferred codes drawn as their own layer; the others are summed as "other".
MAX_CODES = 7


def _name(key: str | None) -> str:
    return "(none)" if key is None else key


def _top_keys(table: dict[str | None, list[int]]) -> list[str | None]:
    return sorted(table, key=lambda k: (-sum(table[k]), _name(k)))


def _grouped(table: dict[str | None, list[int]], keys: list[str | None]) -> dict[str, list[int]]:
    """The ``MAX_LINES`` biggest keys of ``table`` by name, the rest summed as "other"."""
    out = {_name(k): table[k] for k in keys[:MAX_LINES]}
    rest = keys[MAX_LINES:]
    if rest:
        out["other"] = [sum(table[k][i] for k in rest) for i in range(len(table[rest[0]]))]
    return out


def activity_charts(tl: Timeline) -> str:
    """Attempts and ASR per carrier, and the inferred codes, over the window."""
    if not tl.attempts:
        return ""
    edges = tl.edges()
    keys = _top_keys(tl.attempts)
    attempts = _grouped(tl.attempts, keys)
    answered = _grouped(tl.answered, keys)
    colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(attempts)}
    asr = {name: [a / n if n else None for a, n in zip(answered[name], attempts[name],
                                                        strict=True)]
           for name in attempts}
    return (
        '<div class="charts">'
        + line_chart("Attempts per carrier", edges,
                     [Series(k, colour[k], v) for k, v in attempts.items()])
        + line_chart("ASR per carrier", edges,
                     [Series(k, colour[k], v) for k, v in asr.items()], percent=True)
        + codes_chart("Inferred codes", tl)
        + "</div>"
    )


def codes_chart(title: str, tl: Timeline) -> str:
    """Stacked bars of the inferred codes per bucket."""
    codes = sorted(tl.codes, key=lambda c: (-sum(tl.codes[c]), c))
    layers = [Series(f"{c} {SIP_REASONS.get(c, '')}".strip(), PALETTE[i % len(PALETTE)],
                     tl.codes[c]) for i, c in enumerate(codes[:MAX_CODES])]
    if codes[MAX_CODES:]:
        layers.append(Series("other", "#bab0ac", [sum(tl.codes[c][i] for c in codes[MAX_CODES:])
                                                  for i in range(tl.n)]))
    return stacked_bars(title, tl.edges(), layers)


def _differ_cell(h: HonestyRow | None, links: Links, window: Window) -> str:
    """The share of judged calls whose code differs, linked to the carrier's honesty page."""
    if h is None or h.share is None:
        return '<td class=n><span class="muted">&ndash;</span></td>'
    share = f"{h.share:.0%}"
    if h.key is not None:
        href = links.href("/dashboard/honesty", {**window.params(), "carrier": h.key})
        share = f'<a href="{href}">{share}</a>'
    return f"<td class=n>{share} of {h.judged}</td>"


def _asr_table(title: str, rows: list[AsrRow], *, links: Links, window: Window,
               honesty: dict[str | None, HonestyRow] | None = None) -> str:
    if not rows:
        return f"<h2>{text(title)}</h2><p class=muted>No calls in this window.</p>"
    head = title.split()[-1]
    extra_head = "<th>codes differ</th>" if honesty is not None else ""
    body = []
    for r in rows:
        extra = "" if honesty is None else _differ_cell(honesty.get(r.key), links, window)
        body.append(
            f"<tr><td>{text(r.key)}</td><td class=n>{r.attempts}</td><td class=n>{r.answered}</td>"
            f"<td class=n>{r.asr:.1%}</td><td>{bar(r.asr)}</td>{extra}"
            f"<td>{text(', '.join(f'{c}: {n}' for c, n in sorted(r.inferred.items())))}</td></tr>"
        )
    return (
        f"<h2>{text(title)}</h2>" + scroll(
            f"<table><tr><th>{text(head)}</th><th>attempts</th><th>answered</th><th>ASR</th>"
            f"<th></th>{extra_head}<th>inferred codes</th></tr>{''.join(body)}</table>")
    )


def _codes_table(rows: Iterable[AsrRow]) -> str:
    counts: Counter[int] = Counter()
    for r in rows:
        counts.update(r.inferred)
    if not counts:
        return "<h2>Inferred codes</h2><p class=muted>No codes inferred in this window.</p>"
    total = sum(counts.values())
    body = "".join(
        f"<tr><td>{c}</td><td>{text(SIP_REASONS.get(c, ''))}</td>"
        f"<td class=n>{n}</td><td class=n>{n / total:.1%}</td><td>{bar(n / total)}</td></tr>"
        for c, n in counts.most_common()
    )
    return "<h2>Inferred codes</h2>" + scroll(
        "<table><tr><th>code</th><th>reason</th><th>calls</th>"
        f"<th>share</th><th></th></tr>{body}</table>")


def _fas(fas: dict | None) -> str | None:
    """The false-answer column: suspected, no, or empty when the check did not run."""
    if fas is None:
        return None
    return "suspected" if fas.get("suspected") else "no"


def calls_table(calls: list[CallRecord], *, links: Links, title: str = "Recent calls") -> str:
    """Calls, newest first, each Call-ID linking to its call page."""
    if not calls:
        return f"<h2>{text(title)}</h2><p class=muted>No calls in this window.</p>"
    body = []
    for c in calls:
        inf = c.inferred
        sent, really = c.carrier_final_code, inf.sip_code if inf else None
        differs = sent is not None and sent >= 300 and really is not None and really != sent
        flag = ' <span class="flag lie" title="differs from the carrier\'s code">&ne;</span>' \
            if differs else ""
        body.append(
            f"<tr><td>{when(c.started_at)}</td>"
            f'<td class=id><a href="{links.call(c.call_id)}">{text(c.call_id)}</a></td>'
            f"<td class=id>{text(c.correlation_id)}</td>"
            f"<td class=nw>{text(c.carrier)}</td><td class=nw>{text(c.route)}</td>"
            f"<td>{text(c.state)}</td>"
            f"<td class=n>{code(sent)}</td><td class=n>{code(really)}{flag}</td>"
            f"<td>{text(inf.source if inf else None)}</td>"
            f"<td>{text(inf.reason if inf else None)}</td>"
            f"<td>{text(_fas(c.fas))}</td></tr>"
        )
    return (
        f"<h2>{text(title)}</h2>" + scroll(
            "<table><tr><th>started (UTC)</th><th>Call-ID</th>"
            "<th>correlation</th><th>carrier</th><th>route</th><th>state</th><th>carrier code</th>"
            "<th>inferred</th><th>source</th><th>reason</th><th>false answer</th></tr>"
            + "".join(body) + "</table>")
    )


def render_dashboard(
    *,
    carriers: list[AsrRow],
    routes: list[AsrRow],
    calls: list[CallRecord],
    since: datetime | None = None,
    window: Window | None = None,
    timeline: Timeline | None = None,
    honesty: list[HonestyRow] | None = None,
    links: Links | None = None,
) -> str:
    """The front page as one HTML string.

    Parameters
    ----------
    carriers, routes : list of AsrRow
        ``CallStore.asr("carrier" | "route", since, until)``.
    calls : list of CallRecord
        The most recent calls of the window, newest first.
    since : datetime or None
        Start of the window, when ``window`` is not given (up to now).
    window : Window or None
        The window the numbers cover, with the query that selected it.
    timeline : Timeline or None
        Counts over time for the charts (none drawn without it).
    honesty : list of HonestyRow or None
        Per carrier, for the "codes differ" column (left out without it).
    links : Links or None
        How to build links (carrying the access token); None is plain links.
    """
    if window is None:
        if since is None:
            raise ValueError("render_dashboard: give since or window")
        window = Window(since, None)
    links = links or Links()
    by_carrier = {h.key: h for h in honesty} if honesty is not None else None
    body = (
        "<h1>Overview</h1>"
        + picker(links, "/dashboard", window)
        + (activity_charts(timeline) if timeline is not None else "")
        + _asr_table("ASR per carrier", carriers, links=links, window=window,
                     honesty=by_carrier)
        + _asr_table("ASR per route", routes, links=links, window=window)
        + _codes_table(carriers)
        + calls_table(calls, links=links)
        + "<p class=muted>ASR = answered / attempts. <em>codes differ</em>: of the failed "
          "calls with an inferred code, the share whose code is not the one the carrier "
          "sent.</p>"
    )
    return page(title="Overview", body=body, links=links, active="/dashboard",
                refresh=window.until is None)
