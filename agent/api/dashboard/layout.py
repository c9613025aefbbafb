"""The frame every dashboard page shares: the HTML document, its CSS, the navigation, the
time picker, links that keep the access token, and escaping.

Pages are self-contained HTML (inline CSS, inline SVG, no scripts, no external resources)
so they work on an operator network without internet access and their tables read without
JavaScript. Every text that comes from a call or a user goes through :func:`text` or
:func:`attr`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from urllib.parse import quote, urlencode

from agent import __version__
from agent.errors import UserError
from agent.reasons import REASON_PHRASES
from agent.store.export import parse_since

#: Seconds between reloads of a page that shows the present (no ``until``).
REFRESH_S = 15
#: The time picker's quick choices, as ``since`` values.
PRESETS: tuple[str, ...] = ("1h", "24h", "7d")
_RELATIVE = re.compile(r"^([1-9][0-9]{0,4})([mhd])$")
_UNITS = {"m": 60, "h": 3600, "d": 86400}

#: Reason phrases of the SIP codes a page may show.
SIP_REASONS = REASON_PHRASES

NAV: tuple[tuple[str, str], ...] = (
    ("/dashboard", "Overview"),
    ("/dashboard/honesty", "Carrier honesty"),
    ("/dashboard/review", "Review queue"),
)

CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1f2328;background:#f6f7f9}
header{background:#24313f;color:#e8eef5;padding:.55em 1em;display:flex;flex-wrap:wrap;
 gap:.3em 1.4em;align-items:baseline}
header strong{font-size:1.05em}header .muted{color:#9fb0c2}header a{color:#bcd3f5}
header nav{display:flex;flex-wrap:wrap;gap:.2em 1em}
header a.on{color:#fff;font-weight:600;text-decoration:none;border-bottom:2px solid #f28e2b}
main{padding:.2em 1em 2em;max-width:1600px}
h1{font-size:1.3em;margin:.7em 0 .3em;overflow-wrap:anywhere}h2{font-size:1.1em;margin:1.5em 0 .4em}
p{margin:.4em 0}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;background:#fff;margin:.2em 0}
th,td{border:1px solid #d8dde3;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#eceff3;white-space:nowrap}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.id{overflow-wrap:anywhere;min-width:9em;max-width:22em}
.nw{white-space:nowrap}.muted{color:#6a737d}
.bar{display:inline-block;height:.8em;background:#4e79a7;vertical-align:middle}
.bad{background:#e15759}
.flag{display:inline-block;padding:0 .45em;border-radius:.7em;font-size:.9em;background:#eceff3}
.flag.lie{background:#fde2e1;color:#8a1c17}.flag.ok{background:#e3f4e1;color:#1f5b17}
.note{background:#fff8e1;border:1px solid #f0d98c;padding:.4em .7em;max-width:60em}
.error{background:#fde2e1;border:1px solid #e8a19d;padding:.4em .7em;max-width:60em}
.done{background:#e3f4e1;border:1px solid #9fd195;padding:.4em .7em;max-width:60em;
 margin:.4em 0}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,400px),1fr));gap:1em}
figure{margin:0;background:#fff;border:1px solid #d8dde3;padding:.5em .6em;min-width:0}
figcaption{font-weight:600;margin-bottom:.2em}
svg{display:block;width:100%;height:auto}
.legend{list-style:none;padding:0;margin:.3em 0 0;display:flex;flex-wrap:wrap;gap:.1em 1em;
 font-size:.9em}
.sw{display:inline-block;width:.8em;height:.8em;margin-right:.3em;vertical-align:-.05em}
form.picker{display:flex;flex-wrap:wrap;gap:.4em .8em;align-items:center;margin:.6em 0;
 padding:.4em .6em;background:#fff;border:1px solid #d8dde3}
form.picker a.on{font-weight:600;text-decoration:none;color:#1f2328}
form.inline{display:inline}
form.label{display:flex;flex-wrap:wrap;gap:.3em .6em;align-items:end}
form.label label{display:flex;flex-direction:column;font-size:.85em;color:#444}
input[type=number]{width:5.5em}input[type=text]{width:12em}
button{padding:.2em .7em}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1em;margin:.5em 0}
dl.facts dt{color:#555}dl.facts dd{margin:0;overflow-wrap:anywhere}
audio{max-width:16em;height:2em}
@media (max-width:640px){body{font-size:13px}main{padding:.2em .5em 2em}
 header{padding:.5em}.charts{grid-template-columns:1fr}}
"""


def text(value: object) -> str:
    """``value`` as escaped HTML text; None is a dash."""
    return '<span class="muted">&ndash;</span>' if value is None else escape(str(value))


def attr(value: object) -> str:
    """``value`` escaped for a double-quoted attribute."""
    return escape(str(value), quote=True)


def code(value: int | None) -> str:
    """A SIP code with its reason phrase as a tooltip."""
    if value is None:
        return text(None)
    phrase = SIP_REASONS.get(value)
    return f'<span title="{attr(phrase)}">{value}</span>' if phrase else str(value)


def bar(fraction: float, *, width_px: int = 120, bad: bool = False) -> str:
    """A horizontal bar ``fraction`` (0–1) of ``width_px`` long."""
    cls = "bar bad" if bad else "bar"
    return f'<span class="{cls}" style="width:{max(0.0, min(1.0, fraction)) * width_px:.0f}px">' \
           "</span>"


def scroll(table_html: str) -> str:
    """Wrap a table so a narrow screen scrolls it sideways instead of the whole page."""
    return f'<div class="scroll">{table_html}</div>'


def when(t: datetime | float | None) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS`` UTC."""
    if t is None:
        return text(None)
    if not isinstance(t, datetime):
        t = datetime.fromtimestamp(t, UTC)
    return f'<span class="nw">{t.astimezone(UTC):%Y-%m-%d %H:%M:%S}</span>'


@dataclass(frozen=True, slots=True)
class Window:
    """The time window a page covers: ``[since, until)``; ``until`` None is up to now.

    ``since_raw`` and ``until_raw`` are the query values as given, kept in links so a
    preset (``24h``) stays relative when the page reloads.
    """

    since: datetime
    until: datetime | None
    since_raw: str | None = None
    until_raw: str | None = None

    @property
    def end(self) -> datetime:
        return self.until or datetime.now(UTC)

    def params(self) -> dict[str, str]:
        """The query parameters that select this window again."""
        out = {}
        if self.since_raw:
            out["since"] = self.since_raw
        if self.until_raw:
            out["until"] = self.until_raw
        return out

    def describe(self) -> str:
        start, end = self.since.astimezone(UTC), self.end.astimezone(UTC)
        return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"


def parse_window(query: Mapping[str, str], *, default_s: float,
                 now: datetime | None = None) -> Window:
    """The window of ``?since=&until=``: each an ISO 8601 time (naive is UTC) or epoch
    seconds; ``since`` may also be relative, ``90m``, ``24h``, ``7d``. Absent ``since`` is
    ``default_s`` before now; absent ``until`` is now."""
    now = now or datetime.now(UTC)
    since_raw = query.get("since") or None
    until_raw = query.get("until") or None
    match = _RELATIVE.match(since_raw.strip()) if since_raw else None
    if match:
        since = now - timedelta(seconds=int(match[1]) * _UNITS[match[2]])
    else:
        since = parse_since(since_raw, default=now - timedelta(seconds=default_s))
    until = parse_since(until_raw, default=now, name="until") if until_raw else None
    if until is not None and until <= since:
        raise UserError(f"until: must be after since ({since.isoformat()}), got {until_raw!r}")
    return Window(since, until, since_raw, until_raw)


@dataclass(frozen=True, slots=True)
class Links:
    """Builds the dashboard's URLs, carrying ``?access_token=`` when the page was opened
    with one (a browser cannot send the bearer header)."""

    token: str | None = None

    def url(self, path: str, params: Mapping[str, str | int | None] | None = None) -> str:
        """``path`` with ``params`` (None values dropped) and the token."""
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        if self.token:
            query["access_token"] = self.token
        return f"{path}?{urlencode(query)}" if query else path

    def href(self, path: str, params: Mapping[str, str | int | None] | None = None) -> str:
        """:meth:`url`, escaped for an attribute."""
        return attr(self.url(path, params))

    def call(self, call_id: str) -> str:
        """The call page of ``call_id``."""
        return self.href(f"/dashboard/calls/{quote(call_id, safe='')}")

    def hidden_token(self) -> str:
        """The token as a hidden field of a GET form (a POST carries it in its action)."""
        if not self.token:
            return ""
        return f'<input type="hidden" name="access_token" value="{attr(self.token)}">'


def picker(links: Links, path: str, window: Window, *,
           keep: Mapping[str, str | None] | None = None) -> str:
    """The time picker: presets as links, and a form for any ``since``/``until`` (UTC)."""
    keep = {k: v for k, v in (keep or {}).items() if v is not None}
    presets = " ".join(
        f'<a href="{links.href(path, {**keep, "since": p})}"'
        f'{" class=on" if window.since_raw == p and not window.until else ""}>last {p}</a>'
        for p in PRESETS
    )
    hidden = links.hidden_token() + "".join(
        f'<input type="hidden" name="{attr(k)}" value="{attr(v)}">' for k, v in keep.items())
    since = f"{window.since.astimezone(UTC):%Y-%m-%dT%H:%M}"
    until = f"{window.until.astimezone(UTC):%Y-%m-%dT%H:%M}" if window.until else ""
    return (
        f'<form class="picker" method="get" action="{attr(path)}">{presets}'
        f'<label>from <input type="datetime-local" name="since" value="{since}"></label>'
        f'<label>to <input type="datetime-local" name="until" value="{until}"></label>'
        f'<span class="muted">UTC; empty "to" is now</span>{hidden}'
        '<button type="submit">Show</button></form>'
        f'<p class="muted">Calls started {escape(window.describe())}.</p>'
    )


def page(*, title: str, body: str, links: Links, active: str | None = None,
         refresh: bool = False) -> str:
    """One complete HTML document: header with navigation, then ``body``."""
    nav = " ".join(
        f'<a href="{links.href(path)}"{" class=on" if path == active else ""}>{escape(name)}</a>'
        for path, name in NAV
    )
    meta = f'<meta http-equiv="refresh" content="{REFRESH_S}">' if refresh else ""
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"{meta}<title>{escape(title)} · early-media-agent</title>"
        f"<style>{CSS}</style></head><body>"
        f"<header><strong>early-media-agent</strong>"
        f'<span class="muted">{escape(__version__)}</span><nav>{nav}</nav></header>'
        f"<main>{body}</main></body></html>"
    )
