"""CDR export over HTTP (``GET /v1/calls/export``), served for real on a loopback port:
CSV and JSON Lines of the same records the API returns, oldest first, streamed in pages,
filtered by an ISO 8601 or epoch ``since``; bad parameters are a one-line 400."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from agent.api.app import create_app
from agent.api.config import ApiConfig
from agent.labels import Decision, Inferred, SecondResult
from agent.store.calls import CallStore
from agent.store.export import CSV_COLUMNS
from tests.test_api import conform

NOW = datetime.now(UTC).replace(microsecond=0)
BUSY = Inferred(486, 'busy, "really"', 17, "tone", [{"detector": "tone", "kind": "busy"}])


def fill(store: CallStore) -> None:
    """Three calls: one decided and failed, one answered, one an hour older."""
    store.create("a@gw", correlation_id="job,1", carrier="acme", route="uk",
                 started_at=NOW - timedelta(minutes=5))
    store.add_second("a@gw", SecondResult(0, "ringback", {"ringback": 0.9, "silence": 0.1}))
    store.add_decision("a@gw", Decision("ringback", 2.0))
    store.set_inferred("a@gw", BUSY)
    store.set_carrier_final("a@gw", 480)
    store.set_state("a@gw", "failed")
    store.create("b@gw", carrier="beta", started_at=NOW - timedelta(minutes=4))
    store.set_answered("b@gw", 200)
    store.create("old@gw", carrier="acme", started_at=NOW - timedelta(hours=1))


def fetch(store: CallStore, url: str) -> tuple[int, str, str]:
    async def scenario() -> tuple[int, str, str]:
        app = create_app(store, config=ApiConfig(retention_days=0), registry=CollectorRegistry())
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            resp = await client.get(url)
            return resp.status, resp.headers["Content-Type"], await resp.text()

    return asyncio.run(scenario())


def since(minutes: int) -> str:
    return (NOW - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def test_jsonl_is_one_api_call_record_per_line_oldest_first(store: CallStore) -> None:
    fill(store)
    status, ctype, text = fetch(store, f"/v1/calls/export?since={since(10)}&format=jsonl")
    assert status == 200 and ctype.startswith("application/x-ndjson")
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines == [store.get("a@gw").as_json(), store.get("b@gw").as_json()]
    for line in lines:
        conform("/v1/calls/{id}", 200, line)


def test_csv_has_a_header_stable_columns_and_nested_fields_as_json(store: CallStore) -> None:
    fill(store)
    status, ctype, text = fetch(store, f"/v1/calls/export?since={since(10)}&format=csv")
    assert status == 200 and ctype.startswith("text/csv")
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    decided, answered = list(reader)
    record = store.get("a@gw").as_json()
    assert decided["call_id"] == "a@gw" and decided["correlation_id"] == "job,1"
    assert (decided["inferred_sip_code"], decided["inferred_reason"],
            decided["inferred_q850_cause"], decided["inferred_source"]) == (
        "486", 'busy, "really"', "17", "tone")
    assert (decided["carrier_final_code"], decided["state"]) == ("480", "failed")
    assert decided["decision_label"] == "ringback" and decided["fas_suspected"] == ""
    for nested in ("inferred", "decision", "decisions", "seconds", "evidence"):
        assert json.loads(decided[nested]) == record[nested]
    assert decided["started_at"] == record["started_at"]
    assert answered["state"] == "connected" and answered["inferred"] == ""
    assert answered["correlation_id"] == "" and answered["carrier_final_code"] == "200"
    # Every field of the API's record is in the CSV, under its own name or taken apart.
    assert set(record) <= set(CSV_COLUMNS)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_since_takes_epoch_seconds_too(store: CallStore, fmt: str) -> None:
    fill(store)
    epoch = int((NOW - timedelta(minutes=10)).timestamp())
    iso = fetch(store, f"/v1/calls/export?since={since(10)}&format={fmt}")
    assert fetch(store, f"/v1/calls/export?since={epoch}&format={fmt}") == iso
    everything = fetch(store, f"/v1/calls/export?since=0&format={fmt}")[2]
    assert "old@gw" in everything and "old@gw" not in iso[2]


def test_without_parameters_it_is_jsonl_of_the_default_window(store: CallStore) -> None:
    fill(store)
    store.create("ancient@gw", started_at=NOW - timedelta(days=3))
    status, _, text = fetch(store, "/v1/calls/export")
    assert status == 200
    assert [json.loads(x)["call_id"] for x in text.splitlines()] == ["old@gw", "a@gw", "b@gw"]


def test_an_empty_window_is_a_header_or_nothing(store: CallStore) -> None:
    assert fetch(store, "/v1/calls/export?format=csv")[2].strip() == ",".join(CSV_COLUMNS)
    assert fetch(store, "/v1/calls/export?format=jsonl")[2] == ""


def test_a_large_export_is_streamed_in_pages_without_loss_or_repeat(store: CallStore) -> None:
    # Pages are 200 calls; calls sharing a start time straddle a page boundary.
    t = NOW - timedelta(minutes=30)
    ids = [f"c{i:04d}" for i in range(450)]
    for i, call_id in enumerate(ids):
        store.create(call_id, started_at=t + timedelta(seconds=i // 3))
    status, _, text = fetch(store, f"/v1/calls/export?since={since(31)}&format=csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert status == 200 and [r["call_id"] for r in rows] == ids


def test_a_call_id_named_export_is_still_found_by_its_own_route(store: CallStore) -> None:
    """``export`` is a path of its own; ids merely starting with it are calls."""
    store.create("export@gw")
    status, _, text = fetch(store, "/v1/calls/export%40gw")
    assert status == 200 and json.loads(text)["call_id"] == "export@gw"


@pytest.mark.parametrize(("query", "param"), [
    ("since=yesterday", "since"),
    ("since=2026-13-01", "since"),
    ("since=-5", "since"),
    ("since=1e99", "since"),
    ("since=99999999999999999999", "since"),
    ("format=xml", "format"),
    ("format=CSV", "format"),
    ("since=0&format=json", "format"),
])
def test_bad_parameters_are_a_one_line_400_naming_the_parameter(
        store: CallStore, query: str, param: str) -> None:
    status, ctype, text = fetch(store, f"/v1/calls/export?{query}")
    body: Any = json.loads(text)
    assert status == 400 and ctype.startswith("application/json")
    conform("/v1/calls/export", 400, body)
    assert body["error"].startswith(f"{param}:") and "\n" not in body["error"]
