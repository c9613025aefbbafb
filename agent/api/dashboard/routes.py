"""The dashboard's HTTP side: its routes on the API application, the library it labels
into, and the checks on its forms.

Pages are GET and change nothing; every change is a form POST to
``/dashboard/review/{entry_id}/{action}`` that passes :func:`agent.api.guard.form_post_problem`
(besides the bearer token every request needs when one is configured) and answers with a
redirect back to the review page. Store and library reads run in a worker thread so a
page over many calls does not hold up the API's long polls.
"""

from __future__ import annotations

import asyncio
import io
import threading
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web

from agent.api.config import ApiConfig
from agent.api.dashboard.call import render_call, render_missing
from agent.api.dashboard.honesty import render_honesty
from agent.api.dashboard.layout import Links, Window, page, parse_window, text
from agent.api.dashboard.overview import render_dashboard
from agent.api.dashboard.review import Heard, render_review
from agent.api.guard import form_post_problem
from agent.audio import SAMPLE_RATE
from agent.errors import UserError
from agent.store import queries

#: Recent calls on the front page.
RECENT_CALLS = 50
#: Rows of each review table; the most heard (or latest labelled) come first.
REVIEW_ROWS = 100
#: Differing pairs read for the honesty page (its tables show the top ones).
PAIRS = 500
#: The review forms' actions, and what the page says after each.
PAST = {"label": "labelled", "edit": "edited", "unlabel": "unlabelled", "remove": "removed"}
#: Sent with every page: no script may run, nothing is loaded from elsewhere, forms post
#: only here, and no other site may frame the page.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "media-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LibraryAccess:
    """The announcement library, opened on first use and kept open.

    Parameters
    ----------
    location : str or Path
        The library file (created if missing, as the agent does) or URL.
    config : FingerprintConfig or None
        The agent's fingerprint settings (threshold, retention).
    """

    def __init__(self, location: str | Path, config: Any = None) -> None:
        self.location = str(location)
        self.config = config
        self._library: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        """The :class:`agent.fingerprint.Library`; UserError if it cannot be opened."""
        with self._lock:
            if self._library is None:
                from agent.fingerprint import open_library

                self._library = open_library(self.location, config=self.config)
            return self._library

    def close(self) -> None:
        with self._lock:
            if self._library is not None:
                self._library.close()
                self._library = None


@dataclass(frozen=True, slots=True)
class Dashboard:
    """What the pages read: the call store, the API settings and the library (None: off)."""

    store: Any  # agent.store.calls.CallStore: the reports need its read()
    config: ApiConfig
    library: LibraryAccess | None


DASHBOARD = web.AppKey("dashboard", Dashboard)


def _links(request: web.Request) -> Links:
    return Links(token=request.query.get("access_token") or None)


def _html(body: str, *, status: int = 200) -> web.Response:
    return web.Response(text=body, content_type="text/html", status=status, headers=HEADERS)


async def _render(request: web.Request, build: Callable[[Dashboard, Links], str]) -> web.Response:
    dash = request.app[DASHBOARD]
    return _html(await asyncio.to_thread(build, dash, _links(request)))


def _window(request: web.Request) -> Window:
    return parse_window(request.query, default_s=request.app[DASHBOARD].config.default_window_s)


async def overview(request: web.Request) -> web.Response:
    window = _window(request)

    def build(dash: Dashboard, links: Links) -> str:
        store, since, until = dash.store, window.since, window.until
        return render_dashboard(
            carriers=store.asr("carrier", since, until), routes=store.asr("route", since, until),
            calls=store.list_since(since, limit=RECENT_CALLS, until=until), window=window,
            timeline=queries.timeline(store, since, until),
            honesty=queries.honesty(store, "carrier", since, until), links=links)

    return await _render(request, build)


async def honesty(request: web.Request) -> web.Response:
    window = _window(request)
    carrier = request.query.get("carrier") or None

    def build(dash: Dashboard, links: Links) -> str:
        store, since, until = dash.store, window.since, window.until
        return render_honesty(
            carriers=queries.honesty(store, "carrier", since, until),
            routes=queries.honesty(store, "route", since, until),
            pairs=queries.code_pairs(store, since, until, limit=PAIRS),
            timeline=queries.timeline(store, since, until, carrier=carrier),
            window=window, links=links, carrier=carrier)

    return await _render(request, build)


async def call_page(request: web.Request) -> web.Response:
    call_id = request.match_info["call_id"]
    dash = request.app[DASHBOARD]
    links = _links(request)
    call = await asyncio.to_thread(dash.store.get, call_id)
    if call is None:
        return _html(render_missing(call_id, links=links), status=404)
    return _html(render_call(call, links=links))


def _review(dash: Dashboard, links: Links, *, done: tuple[str, int] | None = None,
            error: str | None = None) -> str:
    if dash.library is None:
        return render_review(unknown=[], labelled=[], other_known=0, links=links, location=None)
    try:
        entries = dash.library.get().entries(kind=None)
    except UserError as exc:
        return render_review(unknown=[], labelled=[], other_known=0, links=links,
                             location=dash.library.location, error=str(exc))
    unknown = sorted((e for e in entries if e.kind == "unknown"),
                     key=lambda e: (-e.count, -e.last_seen, -e.id))[:REVIEW_ROWS]
    learnt = sorted((e for e in entries if e.kind == "known" and e.call_id is not None),
                    key=lambda e: -e.id)
    other = sum(1 for e in entries if e.kind == "known" and e.call_id is None)

    def heard(e: Any) -> Heard:
        return Heard(e, dash.store.get(e.call_id) if e.call_id is not None else None)

    return render_review(unknown=[heard(e) for e in unknown],
                         labelled=[heard(e) for e in learnt[:REVIEW_ROWS]], other_known=other,
                         links=links, location=dash.library.location, done=done, error=error)


async def review(request: web.Request) -> web.Response:
    action, entry = request.query.get("done", ""), request.query.get("entry", "")
    done = (action, int(entry)) if action in PAST.values() and entry.isdigit() else None
    return await _render(request, lambda dash, links: _review(dash, links, done=done))


def wav_bytes(samples: np.ndarray) -> bytes:
    """8 kHz mono float audio as a 16-bit PCM WAV file, which every browser plays."""
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
    return out.getvalue()


async def entry_audio(request: web.Request) -> web.Response:
    dash = request.app[DASHBOARD]
    entry_id = int(request.match_info["entry_id"])
    library = dash.library
    if library is None:
        raise web.HTTPNotFound()

    def read() -> bytes | None:
        samples = library.get().unknown_audio(entry_id)
        return None if samples is None else wav_bytes(samples)

    data = await asyncio.to_thread(read)
    if data is None:
        raise web.HTTPNotFound()
    return web.Response(body=data, content_type="audio/wav",
                        headers={**HEADERS, "Cache-Control": "private, max-age=3600"})


def _int(form: Any, name: str, *, required: bool) -> int | None:
    raw = str(form.get(name, "")).strip()
    if not raw and not required:
        return None
    try:
        return int(raw)
    except ValueError:
        raise UserError(f"{name}: expected a whole number, got {raw!r}") from None


def _apply(library: Any, action: str, entry_id: int, form: Any) -> None:
    """Carry out one review form on the library."""
    if action == "remove":
        library.remove(entry_id)
    elif action == "unlabel":
        library.unlabel(entry_id)
    else:
        meaning = {"sip_code": _int(form, "code", required=True),
                   "reason": str(form.get("reason", "")),
                   "q850_cause": _int(form, "q850", required=False),
                   "carrier": str(form.get("carrier", ""))}
        (library.label_unknown if action == "label" else library.edit)(entry_id, **meaning)


async def review_action(request: web.Request) -> web.Response:
    dash = request.app[DASHBOARD]
    links = _links(request)
    problem = form_post_problem(request, token=dash.config.token)
    if problem is not None:
        body = f"<h1>Refused</h1><p class=error>{text(problem)}</p>"
        return _html(page(title="Refused", body=body, links=links), status=403)
    library = dash.library
    if library is None:
        raise web.HTTPNotFound()
    action = request.match_info["action"]
    entry_id = int(request.match_info["entry_id"])
    form = await request.post()

    def run() -> str | None:
        try:
            _apply(library.get(), action, entry_id, form)
        except UserError as exc:
            return _review(dash, links, error=f"entry {entry_id}: {exc}")
        return None

    refused = await asyncio.to_thread(run)
    if refused is not None:
        return _html(refused, status=400)
    target = links.url("/dashboard/review", {"done": PAST[action], "entry": entry_id})
    raise web.HTTPSeeOther(f"{target}#entry-{entry_id}")


def register(app: web.Application, *, store: Any, config: ApiConfig,
             library: LibraryAccess | None) -> None:
    """Serve the dashboard on ``app``: its pages, the entry audio and the review forms."""
    app[DASHBOARD] = Dashboard(store=store, config=config, library=library)
    app.router.add_get("/dashboard", overview)
    app.router.add_get("/dashboard/honesty", honesty)
    app.router.add_get("/dashboard/calls/{call_id:.+}", call_page)  # a Call-ID may hold "/"
    app.router.add_get("/dashboard/review", review)
    app.router.add_get(r"/dashboard/review/{entry_id:\d+}/audio.wav", entry_audio)
    app.router.add_post(r"/dashboard/review/{entry_id:\d+}/{action:" + "|".join(PAST) + "}",
                        review_action)

    async def close_library(_: web.Application) -> None:
        if library is not None:
            library.close()

    app.on_cleanup.append(close_library)
