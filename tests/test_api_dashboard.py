"""The dashboard's pages and forms over HTTP: what each page shows, the time window, escaping
of what callers control, and the checks a review form must pass (same origin, the token)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from agent.api.app import create_app
from agent.api.config import ApiConfig
from agent.api.dashboard import LibraryAccess
from agent.api.dashboard.layout import parse_window
from agent.errors import UserError
from agent.fingerprint import open_library
from agent.store.calls import CallStore
from tests.dashboard_site import add_call, announcement

NOW = datetime.now(UTC)
EVIL = 'x"><script>alert(1)</script>@10.0.0.1'
TOKEN = "dashboard-token-0123456789"


@pytest.fixture
def calls(tmp_path: Path) -> CallStore:
    store = CallStore(tmp_path / "calls.sqlite")
    rng = np.random.default_rng(1)
    add_call(store, "liar@10.0.0.1", carrier="globex", route="in-mob", outcome="vacant",
             sent=480, started=NOW - timedelta(minutes=5), rng=rng, correlation_id="job-1")
    add_call(store, "honest@10.0.0.2", carrier="acme", route="in-fix", outcome="busy",
             sent=486, started=NOW - timedelta(minutes=4), rng=rng)
    add_call(store, "old@10.0.0.3", carrier="acme", route="in-fix", outcome="answer",
             sent=200, started=NOW - timedelta(hours=3), rng=rng)
    add_call(store, EVIL, carrier="<b>carrier</b>", route="r<1>", outcome="off", sent=503,
             started=NOW - timedelta(minutes=2), rng=rng)
    yield store
    store.close()


@pytest.fixture
def library(tmp_path: Path) -> Path:
    path = tmp_path / "library.sqlite"
    with open_library(path) as lib:
        for _ in range(3):
            lib.record_unknown(announcement(1), call_id="liar@10.0.0.1", carrier="globex")
        lib.record_unknown(announcement(2), call_id=EVIL, carrier="<i>x</i>")
    return path


@contextlib.asynccontextmanager
async def served(store: CallStore, library: Path | None, *,
                 token: str = "") -> AsyncIterator[TestClient]:
    app = create_app(store, config=ApiConfig(retention_days=0, token=token),
                     registry=CollectorRegistry(),
                     library=LibraryAccess(library) if library is not None else None)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


def run(scenario):  # noqa: ANN001, ANN201
    return asyncio.run(scenario())


async def page(client: TestClient, url: str, status: int = 200) -> str:
    resp = await client.get(url)
    assert resp.status == status, await resp.text()
    assert resp.content_type == "text/html"
    assert "script-src" not in resp.headers["Content-Security-Policy"]
    assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
    return await resp.text()


def origin(client: TestClient) -> dict[str, str]:
    return {"Origin": str(client.make_url("")).rstrip("/")}


def test_the_overview_links_every_call_to_its_page_and_escapes_what_callers_set(calls) -> None:
    async def scenario() -> None:
        async with served(calls, None) as client:
            html = await page(client, "/dashboard")
            assert f'href="/dashboard/calls/{quote("liar@10.0.0.1", safe="")}"' in html
            assert "<script" not in html and "&lt;script&gt;" in html
            assert "&lt;b&gt;carrier&lt;/b&gt;" in html and "<b>carrier" not in html
            assert html.count("<svg") == 3  # attempts, ASR, inferred codes
            assert "old@10.0.0.3" not in await page(client, "/dashboard?since=1h")
            assert "old@10.0.0.3" in html

    run(scenario)


def test_the_call_page_shows_verdict_seconds_decisions_matches_and_the_sip_events(calls) -> None:
    async def scenario() -> None:
        async with served(calls, None) as client:
            html = await page(client, "/dashboard/calls/job-1")  # by correlation id too
            for piece in ("480 Temporarily Unavailable", "404 Not Found",
                          "sent 480, really 404", "rewritten by the agent",
                          "<th>p(announcement)</th>", "Decision history", "ringback",
                          "library entry", "number does not exist", "183 Session Progress",
                          "early media (RTP)", "are not stored", "not kept after the call"):
                assert piece in html, piece
            busy = await page(client, "/dashboard/calls/honest%4010.0.0.2")
            assert "the carrier's code matches" in busy and "<td>busy</td>" in busy

    run(scenario)


def test_a_call_id_holding_a_script_is_escaped_on_its_own_page(calls) -> None:
    async def scenario() -> None:
        async with served(calls, None) as client:
            html = await page(client, f"/dashboard/calls/{quote(EVIL, safe='')}")
            assert "<script" not in html
            assert "x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;@10.0.0.1" in html
            missing = await page(client, "/dashboard/calls/%3Cscript%3Enope", 404)
            assert "No such call" in missing and "<script" not in missing

    run(scenario)


def test_the_honesty_page_names_carriers_that_send_other_codes(calls) -> None:
    async def scenario() -> None:
        async with served(calls, None) as client:
            html = await page(client, "/dashboard/honesty")
            assert "Sent X, really Y" in html
            assert '<span title="Temporarily Unavailable">480</span>, really ' \
                   '<span title="Not Found">404</span>' in html
            assert "href=\"/dashboard/honesty?carrier=globex\"" in html
            one = await page(client, "/dashboard/honesty?carrier=acme&since=1h")
            assert "Carrier honesty &mdash; acme" in one
            assert 'name="carrier" value="acme"' in one  # the picker keeps the carrier
            assert "No failed call's inferred code differs" in one

    run(scenario)


def test_the_time_window_is_checked_and_kept_in_links(calls) -> None:
    async def scenario() -> None:
        async with served(calls, None) as client:
            resp = await client.get("/dashboard?since=2h&until=yesterday")
            assert resp.status == 400 and (await resp.json())["error"].startswith("until:")
            html = await page(client, "/dashboard?since=7d")
            assert '<a href="/dashboard?since=7d" class=on>last 7d</a>' in html
            assert 'http-equiv="refresh"' in html
            until = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
            past = await page(client, f"/dashboard?since=1d&until={until}")
            assert 'http-equiv="refresh"' not in past  # a window in the past stays put
            assert "old@10.0.0.3" in past and "liar@10.0.0.1" not in past

    run(scenario)


def test_parse_window_takes_relative_and_absolute_times() -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    w = parse_window({"since": "90m"}, default_s=86400, now=now)
    assert w.since == now - timedelta(minutes=90) and w.until is None
    assert w.params() == {"since": "90m"}
    w = parse_window({"since": "2026-03-01T00:00", "until": "1772409600"}, default_s=1, now=now)
    assert w.until == datetime(2026, 3, 2, tzinfo=UTC) and w.since.tzinfo is not None
    assert parse_window({}, default_s=3600, now=now).since == now - timedelta(hours=1)
    with pytest.raises(UserError, match="until: must be after since"):
        parse_window({"since": "1h", "until": "2026-03-01"}, default_s=1, now=now)


def test_the_review_queue_lists_unknown_announcements_with_players(calls, library) -> None:
    async def scenario() -> None:
        async with served(calls, library) as client:
            html = await page(client, "/dashboard/review")
            assert html.index('id="entry-1"') < html.index('id="entry-2"')  # most heard first
            assert "3×" in html and "first: globex" in html and "(globex, route in-mob)" in html
            assert "&lt;i&gt;x&lt;/i&gt;" in html and "<script" not in html
            assert '<audio controls preload="none" src="/dashboard/review/1/audio.wav">' in html
            assert 'method="post" action="/dashboard/review/1/label"' in html
            resp = await client.get("/dashboard/review/1/audio.wav")
            assert resp.status == 200 and resp.content_type == "audio/wav"
            with wave.open(io.BytesIO(await resp.read())) as w:
                assert (w.getframerate(), w.getsampwidth()) == (8000, 2)
                assert w.getnframes() == announcement(1).size
            assert (await client.get("/dashboard/review/99/audio.wav")).status == 404

    run(scenario)


def test_labelling_is_reversible_edit_unlabel_and_remove(calls, library) -> None:
    async def scenario() -> None:
        async with served(calls, library) as client:
            form = {"code": "404", "reason": "number not in service", "q850": "1",
                    "carrier": "globex"}
            resp = await client.post("/dashboard/review/1/label", data=form,
                                     headers=origin(client), allow_redirects=False)
            assert resp.status == 303
            assert resp.headers["Location"] == \
                "/dashboard/review?done=labelled&entry=1#entry-1"
            html = await page(client, "/dashboard/review?done=labelled&entry=1")
            assert "Entry 1 is now known" in html and 'action="/dashboard/review/1/unlabel"' in html
            with open_library(library) as lib:
                found = lib.match(announcement(1)[8000:24000])
                assert found is not None and (found.entry_id, found.sip_code) == (1, 404)
            edit = {**form, "code": "410", "reason": "number changed", "q850": "", "carrier": ""}
            resp = await client.post("/dashboard/review/1/edit", data=edit,
                                     headers=origin(client))
            assert resp.status == 200  # followed to the review page
            with open_library(library) as lib:
                e = lib.store.get(1)
                assert (e.sip_code, e.reason, e.q850_cause, e.carrier) == (410, "number changed",
                                                                          None, None)
            await client.post("/dashboard/review/1/unlabel", headers=origin(client))
            await client.post("/dashboard/review/2/remove", headers=origin(client))
            with open_library(library) as lib:
                assert [(e.id, e.kind) for e in lib.entries(kind=None)] == [(1, "unknown")]

    run(scenario)


def test_a_bad_label_is_refused_on_the_page_and_changes_nothing(calls, library) -> None:
    async def scenario() -> None:
        async with served(calls, library) as client:
            resp = await client.post("/dashboard/review/1/label", headers=origin(client),
                                     data={"code": "200", "reason": "ok"})
            assert resp.status == 400 and resp.content_type == "text/html"
            assert "SIP code 200: expected a failure code 400–699" in await resp.text()
            resp = await client.post("/dashboard/review/1/edit", headers=origin(client),
                                     data={"code": "404", "reason": "x"})
            assert "label it first" in await resp.text()
            with open_library(library) as lib:
                assert lib.store.get(1).kind == "unknown"

    run(scenario)


@pytest.mark.parametrize("headers", [
    {},
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Referer": "http://evil.example/page"},
])
def test_a_form_post_from_elsewhere_is_refused(calls, library, headers) -> None:
    async def scenario() -> None:
        async with served(calls, library) as client:
            resp = await client.post("/dashboard/review/1/remove", headers=headers)
            assert resp.status == 403 and "posted from the dashboard" in await resp.text()
            with open_library(library) as lib:
                assert len(lib.entries(kind="unknown")) == 2

    run(scenario)


def test_without_a_token_forms_need_a_loopback_host(calls, library) -> None:
    async def scenario() -> None:
        async with served(calls, library) as client:
            rebound = {"Host": "rebound.example:8080", "Origin": "http://rebound.example:8080"}
            resp = await client.post("/dashboard/review/1/remove", headers=rebound)
            assert resp.status == 403 and "loopback" in await resp.text()

    run(scenario)


def test_with_a_token_pages_and_forms_need_it_and_carry_it_on(calls, library) -> None:
    async def scenario() -> None:
        async with served(calls, library, token=TOKEN) as client:
            assert (await client.get("/dashboard")).status == 401
            assert (await client.get("/dashboard/calls/job-1")).status == 401
            assert (await client.post("/dashboard/review/1/remove",
                                      headers=origin(client))).status == 401
            html = await page(client, f"/dashboard?access_token={TOKEN}")
            assert f"/dashboard/honesty?access_token={TOKEN}" in html
            assert f'name="access_token" value="{TOKEN}"' in html  # the picker's form
            assert f"/dashboard/calls/liar%4010.0.0.1?access_token={TOKEN}" in html
            review = await page(client, f"/dashboard/review?access_token={TOKEN}")
            assert f'action="/dashboard/review/1/label?access_token={TOKEN}"' in review
            assert f'src="/dashboard/review/1/audio.wav?access_token={TOKEN}"' in review
            resp = await client.post(f"/dashboard/review/2/remove?access_token={TOKEN}",
                                     headers=origin(client), allow_redirects=False)
            assert resp.status == 303
            assert f"access_token={TOKEN}" in resp.headers["Location"]

    run(scenario)


def test_without_a_library_the_review_page_says_so(calls) -> None:
    async def scenario() -> None:
        async with served(calls, None) as client:
            assert "fingerprint library is turned off" in await page(client, "/dashboard/review")
            resp = await client.post("/dashboard/review/1/remove", headers=origin(client))
            assert resp.status == 404

    run(scenario)


def test_charts_escape_series_names_and_break_lines_where_a_bucket_is_empty() -> None:
    from agent.api.dashboard.charts import Series, line_chart, second_strip, stacked_bars

    edges = [NOW + timedelta(hours=i) for i in range(5)]
    svg = line_chart("ASR", edges, [Series("<b>x</b>", "#000", [0.5, None, 0.25, 1.0])],
                     percent=True)
    assert "&lt;b&gt;x&lt;/b&gt;" in svg and "<b>" not in svg
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 3  # the lone point: no line
    assert ">100%</text>" in svg and ": 25%</title>" in svg
    bars = stacked_bars("codes", edges, [Series("404", "#111", [1, 0, 2, 0]),
                                         Series("480", "#222", [3, 0, 0, 0])])
    assert bars.count("<rect") == 3 and ">5</text>" in bars  # axis up to 5 over a total of 4
    strip = second_strip([(0, "ringback", {"ringback": 0.9, "silence": 0.1}),
                          (1, "announcement", {"announcement": 1.0})],
                         marks=[(1.0, "decision: <announcement>")])
    assert "0–1 s: ringback (ringback 0.90, silence 0.10)" in strip
    assert "decision: &lt;announcement&gt; at 1 s" in strip
