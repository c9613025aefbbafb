"""The carrier honesty page, ``/dashboard/honesty``: which carriers send failure codes their
own early media contradicts, how often, and with what ("sent 480, really 404")."""

from __future__ import annotations

from agent.api.dashboard.charts import PALETTE, Series, line_chart
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
)
from agent.api.dashboard.overview import MAX_LINES, codes_chart
from agent.store.queries import CodePair, HonestyRow, Timeline

#: Rows of the "sent X, really Y" table.
MAX_PAIRS = 20
INTRO = ("A call <em>failed</em> when the carrier's final response was 300 or above; it is "
         "<em>judged</em> when the agent also inferred a code from the early media; its code "
         "<em>differs</em> when the inferred code is not the one the carrier sent.")


def _share(row: HonestyRow) -> str:
    if row.share is None:
        return '<td class=n><span class="muted">&ndash;</span></td><td></td>'
    return f"<td class=n>{row.share:.1%}</td><td>{bar(row.share, bad=True)}</td>"


def _pair(p: CodePair | None) -> str:
    if p is None:
        return text(None)
    return f"sent {code(p.sent)}, really {code(p.really)} <span class=muted>×{p.calls}</span>"


def _table(title: str, rows: list[HonestyRow], top: dict[str | None, CodePair] | None, *,
           links: Links, window: Window, selected: str | None = None) -> str:
    """Rows per carrier (linked to narrow the page to one, with its most frequent pair
    from ``top``) or per route (``top`` None)."""
    head = "carrier" if top is not None else "route"
    if not rows:
        return f"<h2>{text(title)}</h2><p class=muted>No calls in this window.</p>"
    body = []
    for r in rows:
        name = text(r.key)
        if top is not None and r.key is not None:
            href = links.href("/dashboard/honesty", {**window.params(), "carrier": r.key})
            name = f'<a href="{href}">{name}</a>'
            if r.key == selected:
                name = f"<strong>{name}</strong>"
        body.append(f"<tr><td>{name}</td><td class=n>{r.attempts}</td><td class=n>{r.failed}</td>"
                    f"<td class=n>{r.judged}</td><td class=n>{r.differs}</td>{_share(r)}"
                    + (f"<td>{_pair(top.get(r.key))}</td>" if top is not None else "")
                    + "</tr>")
    most = "<th>most frequent</th>" if top is not None else ""
    return (f"<h2>{text(title)}</h2>" + scroll(
        f"<table><tr><th>{head}</th><th>attempts</th><th>failed</th><th>judged</th>"
        f"<th>code differs</th><th>share differing</th><th></th>{most}</tr>"
        + "".join(body) + "</table>"))


def _pairs_table(pairs: list[CodePair], judged: dict[str | None, int]) -> str:
    if not pairs:
        return ("<h2>Sent X, really Y</h2><p class=muted>No failed call's inferred code "
                "differs from the carrier's in this window.</p>")
    body = "".join(
        f"<tr><td>{text(p.key)}</td><td class=n>{code(p.sent)}</td>"
        f"<td>{text(SIP_REASONS.get(p.sent))}</td><td class=n>{code(p.really)}</td>"
        f"<td>{text(SIP_REASONS.get(p.really))}</td><td class=n>{p.calls}</td>"
        f"<td class=n>{p.calls / judged[p.key]:.1%}</td></tr>"
        if judged.get(p.key) else "" for p in pairs)
    return ("<h2>Sent X, really Y</h2>" + scroll(
        "<table><tr><th>carrier</th><th>sent</th><th></th><th>really</th><th></th>"
        f"<th>calls</th><th>of its judged calls</th></tr>{body}</table>"))


def _charts(tl: Timeline, selected: str | None) -> str:
    if not tl.attempts:
        return ""
    keys = sorted((k for k in tl.judged if sum(tl.judged[k])),
                  key=lambda k: (-sum(tl.judged[k]), k or ""))[:MAX_LINES]
    lines = [Series("(none)" if k is None else k, PALETTE[i % len(PALETTE)],
                    tl.differing_share(k)) for i, k in enumerate(keys)]
    title = "Inferred codes" + (f" of {selected}" if selected is not None else "")
    return ('<div class="charts">'
            + line_chart("Share of judged calls whose code differs", tl.edges(), lines,
                         percent=True)
            + codes_chart(title, tl) + "</div>")


def render_honesty(*, carriers: list[HonestyRow], routes: list[HonestyRow],
                   pairs: list[CodePair], timeline: Timeline, window: Window, links: Links,
                   carrier: str | None = None) -> str:
    """The honesty page as one HTML string.

    Parameters
    ----------
    carriers, routes : list of HonestyRow
        :func:`agent.store.queries.honesty` by carrier and by route.
    pairs : list of CodePair
        Differing pairs of every carrier, most frequent first
        (:func:`agent.store.queries.code_pairs`).
    timeline : Timeline
        Counts over time (of ``carrier`` only, when given).
    carrier : str or None
        The carrier the pairs table and the charts are narrowed to.
    """
    top: dict[str | None, CodePair] = {}
    for p in pairs:
        top.setdefault(p.key, p)
    shown = [p for p in pairs if carrier is None or p.key == carrier][:MAX_PAIRS]
    judged = {r.key: r.judged for r in carriers}
    heading = "Carrier honesty"
    if carrier is not None:
        everyone = links.href("/dashboard/honesty", window.params())
        heading += (f" &mdash; {text(carrier)} <a class=muted style=\"font-size:.7em\" "
                    f'href="{everyone}">all carriers</a>')
    body = (
        f"<h1>{heading}</h1>"
        + picker(links, "/dashboard/honesty", window, keep={"carrier": carrier})
        + f"<p>{INTRO}</p>"
        + _charts(timeline, carrier)
        + _table("Per carrier", carriers, top, links=links, window=window, selected=carrier)
        + _pairs_table(shown, judged)
        + _table("Per route", routes, None, links=links, window=window)
    )
    return page(title="Carrier honesty", body=body, links=links, active="/dashboard/honesty",
                refresh=window.until is None)
