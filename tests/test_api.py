"""The dialer's HTTP API, served for real on a loopback port: lookups, long polls woken by
another thread or another process, parameter errors, metrics, dashboard, and conformance of
every response to agent/api/openapi.yaml."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import jsonschema
import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate as validate_spec
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from agent.api.app import NOTIFIER, OPENAPI_PATH, CallNotifier, create_app, start
from agent.api.config import ApiConfig
from agent.api.metrics import AgentMetrics
from agent.config import build
from agent.errors import ConfigError
from agent.labels import Decision, Inferred, SecondResult, ToneEvent
from agent.store.calls import CallStore

SPEC = yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))
NOW = datetime.now(UTC)
BUSY = Inferred(
    sip_code=486, reason="busy tone", q850_cause=17, source="tone",
    evidence=[ToneEvent(kind="busy", start_s=0.5, detected_s=1.2, country="in").as_json()],
)
# Bounds a request so a long poll that is never woken fails the test instead of hanging it.
BOUND = aiohttp.ClientTimeout(total=20)


def conform(template: str, status: int, body: Any) -> Any:
    """Validate ``body`` against the documented JSON schema of GET ``template`` → ``status``."""
    response = SPEC["paths"][template]["get"]["responses"][str(status)]
    if "$ref" in response:
        response = SPEC["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = {**response["content"]["application/json"]["schema"], "components": SPEC["components"]}
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(body)
    return body


@contextlib.asynccontextmanager
async def served(
    store: CallStore, *, config: ApiConfig | None = None, registry: CollectorRegistry | None = None
) -> AsyncIterator[TestClient]:
    app = create_app(
        store,
        config=config or ApiConfig(retention_days=0),
        registry=registry or CollectorRegistry(),
    )
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def get_json(
    client: TestClient,
    url: str,
    template: str,
    status: int = 200,
    *,
    timeout: aiohttp.ClientTimeout = BOUND,
) -> Any:
    resp = await client.get(url, timeout=timeout)
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    return conform(template, status, await resp.json())


@pytest.fixture
def store() -> CallStore:
    s = CallStore(":memory:")
    s.create("abc@10.0.0.1", correlation_id="job-42", carrier="acme", route="in-mob",
             started_at=NOW - timedelta(seconds=5))
    s.add_second("abc@10.0.0.1", SecondResult(t=0, label="ringback", p={"ringback": 0.97,
                                                                         "silence": 0.03}))
    yield s
    s.close()


def test_a_call_is_found_by_call_id_and_by_correlation_id(store: CallStore) -> None:
    async def scenario() -> None:
        async with served(store) as client:
            by_id = await get_json(client, "/v1/calls/abc@10.0.0.1", "/v1/calls/{id}")
            by_corr = await get_json(client, "/v1/calls/job-42", "/v1/calls/{id}")
            assert by_id == by_corr == store.get("abc@10.0.0.1").as_json()
            assert by_id["seconds"] == [
                {"t": 0, "label": "ringback", "p": {"ringback": 0.97, "silence": 0.03}}
            ]
            assert by_id["state"] == "early" and by_id["inferred"] is None

    asyncio.run(scenario())


def test_a_decided_call_carries_its_inferred_code_and_evidence(store: CallStore) -> None:
    store.set_inferred("abc@10.0.0.1", BUSY)

    async def scenario() -> None:
        async with served(store) as client:
            body = await get_json(client, "/v1/calls/job-42", "/v1/calls/{id}")
            assert body["inferred"] == BUSY.as_json()
            assert body["state"] == "decided" and body["decided_at"] is not None

    asyncio.run(scenario())


def test_a_call_record_carries_its_decision_history(store: CallStore) -> None:
    store.add_decision("abc@10.0.0.1", Decision("ringback", 2.0))
    store.add_decision("abc@10.0.0.1", Decision("announcement", 21.0))

    async def scenario() -> None:
        async with served(store) as client:
            body = await get_json(client, "/v1/calls/job-42", "/v1/calls/{id}")
            assert body["decisions"] == [{"label": "ringback", "at_s": 2.0},
                                         {"label": "announcement", "at_s": 21.0}]
            assert body["decision"] == {"label": "announcement", "at_s": 21.0}
            listed = await get_json(client, "/v1/calls", "/v1/calls")
            assert listed["calls"][0]["decisions"] == body["decisions"]

    asyncio.run(scenario())


@pytest.mark.parametrize("call_id", ["a/b@10.0.0.1", "x%20y+z@gw", "q?r#s@[::1]", 'w"<>:@h'])
def test_call_ids_with_reserved_characters_are_found_percent_encoded(call_id: str) -> None:
    store = CallStore(":memory:")
    store.create(call_id)

    async def scenario() -> None:
        async with served(store) as client:
            body = await get_json(client, f"/v1/calls/{quote(call_id, safe='')}", "/v1/calls/{id}")
            assert body["call_id"] == call_id

    asyncio.run(scenario())


def test_an_unknown_call_is_a_json_404(store: CallStore) -> None:
    async def scenario() -> None:
        async with served(store) as client:
            body = await get_json(client, "/v1/calls/nobody", "/v1/calls/{id}", 404)
            assert "nobody" in body["error"]

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("url", "template", "param"),
    [
        ("/v1/calls/job-42?wait=soon", "/v1/calls/{id}", "wait"),
        ("/v1/calls/job-42?wait=-1", "/v1/calls/{id}", "wait"),
        ("/v1/calls/job-42?wait=61", "/v1/calls/{id}", "wait"),
        ("/v1/calls/job-42?wait=nan", "/v1/calls/{id}", "wait"),
        ("/v1/calls/job-42?wait=inf", "/v1/calls/{id}", "wait"),
        ("/v1/calls?since=yesterday", "/v1/calls", "since"),
        ("/v1/calls?since=2026-13-01", "/v1/calls", "since"),
        ("/v1/calls?limit=0", "/v1/calls", "limit"),
        ("/v1/calls?limit=1001", "/v1/calls", "limit"),
        ("/v1/calls?limit=ten", "/v1/calls", "limit"),
        ("/v1/stats/asr", "/v1/stats/asr", "by"),
        ("/v1/stats/asr?by=country", "/v1/stats/asr", "by"),
        ("/v1/stats/asr?by=carrier&since=x", "/v1/stats/asr", "since"),
        ("/dashboard?since=last-week", "/dashboard", "since"),
    ],
)
def test_bad_parameters_are_a_one_line_400_naming_the_parameter(
    store: CallStore, url: str, template: str, param: str
) -> None:
    async def scenario() -> None:
        async with served(store) as client:
            body = await get_json(client, url, template, 400)
            assert body["error"].startswith(f"{param}:")
            assert "\n" not in body["error"] and "Traceback" not in body["error"]

    asyncio.run(scenario())


def test_long_poll_is_woken_by_a_notification_from_another_thread(store: CallStore) -> None:
    # Store re-reads are spaced beyond the request bound: only the notifier can answer in time.
    config = ApiConfig(retention_days=0, poll_interval_s=10.0)
    bound = aiohttp.ClientTimeout(total=5)

    async def scenario() -> None:
        async with served(store, config=config) as client:
            notifier = client.app[NOTIFIER]

            def decide() -> None:
                store.set_inferred("abc@10.0.0.1", BUSY)
                notifier.notify("abc@10.0.0.1")

            timer = threading.Timer(0.3, decide)
            timer.start()
            body = await get_json(
                client, "/v1/calls/job-42?wait=60", "/v1/calls/{id}", timeout=bound
            )
            timer.join()
            assert body["inferred"] == BUSY.as_json()

    asyncio.run(scenario())


def test_long_poll_sees_a_decision_written_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite"
    store = CallStore(path)
    store.create("p1@gw", correlation_id="proc-job")
    writer = textwrap.dedent(
        f"""
        import time
        from agent.labels import Inferred
        from agent.store.calls import CallStore
        time.sleep(0.3)
        inferred = Inferred(404, "no such number", 1, "fingerprint")
        CallStore({str(path)!r}).set_inferred("p1@gw", inferred)
        """
    )

    async def scenario() -> None:
        async with served(store) as client:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-c", writer)
            body = await get_json(client, "/v1/calls/proc-job?wait=60", "/v1/calls/{id}")
            assert await proc.wait() == 0
            assert body["inferred"]["sip_code"] == 404
            assert body["state"] == "decided"

    asyncio.run(scenario())
    store.close()


def test_long_poll_waits_for_a_call_that_is_not_stored_yet(store: CallStore) -> None:
    def place_and_decide() -> None:
        store.create("late@gw", correlation_id="late-job")
        store.set_inferred("late@gw", BUSY)

    async def scenario() -> None:
        async with served(store) as client:
            timer = threading.Timer(0.3, place_and_decide)
            timer.start()
            body = await get_json(client, "/v1/calls/late-job?wait=60", "/v1/calls/{id}")
            timer.join()
            assert body["call_id"] == "late@gw" and body["inferred"]["sip_code"] == 486

    asyncio.run(scenario())


def test_long_poll_ends_when_the_call_fails_without_a_decision(store: CallStore) -> None:
    async def scenario() -> None:
        async with served(store) as client:
            notifier = client.app[NOTIFIER]

            def fail() -> None:
                store.set_carrier_final("abc@10.0.0.1", 503)
                store.set_state("abc@10.0.0.1", "failed")
                notifier.notify("abc@10.0.0.1")

            timer = threading.Timer(0.3, fail)
            timer.start()
            body = await get_json(client, "/v1/calls/abc@10.0.0.1?wait=60", "/v1/calls/{id}")
            timer.join()
            assert body["state"] == "failed" and body["inferred"] is None
            assert body["carrier_final_code"] == 503

    asyncio.run(scenario())


def test_a_long_poll_that_runs_out_returns_the_undecided_call(store: CallStore) -> None:
    async def scenario() -> None:
        async with served(store) as client:
            body = await get_json(client, "/v1/calls/job-42?wait=0.3", "/v1/calls/{id}")
            assert body["state"] == "early" and body["inferred"] is None
            await get_json(client, "/v1/calls/nobody?wait=0.2", "/v1/calls/{id}", 404)

    asyncio.run(scenario())


def test_a_long_poll_stops_when_the_client_hangs_up(store: CallStore) -> None:
    async def until(condition, what: str) -> None:
        for _ in range(400):
            if condition():
                return
            await asyncio.sleep(0.025)
        raise AssertionError(f"never {what}")

    async def scenario() -> None:
        # Served as in production (start(): AppRunner, which does not cancel handlers
        # when a client disconnects), unlike aiohttp's TestServer.
        config = ApiConfig(port=0, retention_days=0)
        app = create_app(store, config=config, registry=CollectorRegistry())
        runner = await start(app, config)
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as session:
                url = f"http://127.0.0.1:{port}/v1/calls/job-42?wait=60"
                request = asyncio.create_task(session.get(url))
                await until(lambda: app[NOTIFIER].watching() == 1, "started waiting")
                request.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await request
            await until(lambda: app[NOTIFIER].watching() == 0, "stopped waiting")
        finally:
            await runner.cleanup()

    asyncio.run(scenario())


def test_notifications_before_the_app_serves_are_dropped_harmlessly() -> None:
    notifier = CallNotifier()
    notifier.notify("anything")


def test_list_calls_filters_by_since_and_limits_newest_first(store: CallStore) -> None:
    base = NOW - timedelta(hours=1)
    for i in range(4):
        store.create(f"l{i}", carrier="beta", started_at=base + timedelta(minutes=i))

    async def scenario() -> None:
        async with served(store) as client:
            since = (base + timedelta(minutes=1)).isoformat()
            # The unescaped '+' of the offset arrives as a space; an escaped one as '+'.
            for raw in (since, since.replace("+", "%2B")):
                body = await get_json(client, f"/v1/calls?since={raw}", "/v1/calls")
                assert [c["call_id"] for c in body["calls"]] == ["abc@10.0.0.1", "l3", "l2", "l1"]
            body = await get_json(client, "/v1/calls?limit=2", "/v1/calls")
            assert [c["call_id"] for c in body["calls"]] == ["abc@10.0.0.1", "l3"]
            naive = (base + timedelta(minutes=3)).replace(tzinfo=None).isoformat()
            body = await get_json(client, f"/v1/calls?since={naive}", "/v1/calls")
            assert [c["call_id"] for c in body["calls"]] == ["abc@10.0.0.1", "l3"]

    asyncio.run(scenario())


def _traffic(store: CallStore) -> None:
    for cid, carrier, route, final, inferred in [
        ("x1", "acme", "in-mob", 200, None),
        ("x2", "acme", "in-fix", 480, 404),
        ("x3", "zeta<b>", "in-fix", 503, 486),
    ]:
        store.create(cid, carrier=carrier, route=route, started_at=NOW - timedelta(minutes=1))
        store.set_carrier_final(cid, final)
        if inferred:
            store.set_inferred(cid, Inferred(inferred, "r", None, "fingerprint"))
        store.set_state(cid, "connected" if final == 200 else "failed")


def test_asr_stats_report_each_carrier_and_route(store: CallStore) -> None:
    _traffic(store)

    async def scenario() -> None:
        async with served(store) as client:
            body = await get_json(client, "/v1/stats/asr?by=carrier", "/v1/stats/asr")
            rows = {r["key"]: r for r in body["rows"]}
            assert body["by"] == "carrier"
            assert rows["acme"] == {"key": "acme", "attempts": 3, "answered": 1,
                                    "asr": 0.3333, "inferred": {"404": 1}}
            assert rows["zeta<b>"]["inferred"] == {"486": 1}
            body = await get_json(client, "/v1/stats/asr?by=route", "/v1/stats/asr")
            assert {r["key"]: r["attempts"] for r in body["rows"]} == {"in-mob": 2, "in-fix": 2}
            later = (NOW + timedelta(hours=1)).isoformat()
            body = await get_json(client, f"/v1/stats/asr?by=route&since={later}", "/v1/stats/asr")
            assert body["rows"] == []

    asyncio.run(scenario())


def test_dashboard_is_self_contained_html_listing_carriers_routes_and_codes(
    store: CallStore,
) -> None:
    _traffic(store)

    async def scenario() -> None:
        async with served(store) as client:
            resp = await client.get("/dashboard")
            assert resp.status == 200 and resp.content_type == "text/html"
            html = await resp.text()
            for text in ("acme", "in-mob", "in-fix", "Busy Here", "Not Found", "abc@10.0.0.1",
                         "33.3%"):
                assert text in html
            assert "zeta&lt;b&gt;" in html and "zeta<b>" not in html
            for external in ("<script", "src=", "http://", "https://", "<link"):
                assert external not in html

    asyncio.run(scenario())


def test_dashboard_of_an_empty_store_says_so() -> None:
    async def scenario() -> None:
        async with served(CallStore(":memory:")) as client:
            resp = await client.get("/dashboard")
            assert resp.status == 200
            assert "No calls in this window" in await resp.text()

    asyncio.run(scenario())


def test_metrics_expose_what_the_supervisor_recorded(store: CallStore) -> None:
    registry = CollectorRegistry()
    m = AgentMetrics(registry)
    m.call_started()
    m.call_started()
    m.call_ended(carrier="acme", outcome="failed")
    m.second_classified("ringback")
    m.second_classified("ringback")
    m.code_inferred(sip_code=486, source="tone", lag_s=1.2)
    m.analysis_failed()
    m.carrier_final_code(480)

    async def scenario() -> str:
        async with served(store, registry=registry) as client:
            resp = await client.get("/metrics")
            assert resp.status == 200 and resp.content_type == "text/plain"
            return await resp.text()

    text = asyncio.run(scenario())
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }
    assert samples[("ema_calls_total", (("carrier", "acme"), ("outcome", "failed"),
                                        ("route", "unknown")))] == 1
    assert samples[("ema_inferred_total", (("carrier", "unknown"), ("sip_code", "486"),
                                           ("source", "tone")))] == 1
    assert samples[("ema_classified_seconds_total", (("label", "ringback"),))] == 2
    assert samples[("ema_decision_lag_seconds_bucket", (("le", "1.5"),))] == 1
    assert samples[("ema_decision_lag_seconds_bucket", (("le", "1.0"),))] == 0
    assert samples[("ema_active_calls", ())] == 1
    assert samples[("ema_analysis_failures_total", ())] == 1
    assert samples[("ema_carrier_final_total", (("carrier", "unknown"), ("code", "480")))] == 1


@pytest.mark.parametrize(
    "record",
    [
        lambda m: m.call_ended(carrier="acme", outcome="ok"),
        lambda m: m.second_classified("speech"),
        lambda m: m.code_inferred(sip_code=486, source="guess", lag_s=1.0),
    ],
    ids=["outcome", "label", "source"],
)
def test_metrics_reject_label_values_outside_their_sets(record) -> None:
    with pytest.raises(ValueError):
        record(AgentMetrics(CollectorRegistry()))


def test_healthz_reports_ok_and_the_version(store: CallStore) -> None:
    from agent import __version__

    async def scenario() -> None:
        async with served(store) as client:
            assert await get_json(client, "/healthz", "/healthz") == {
                "ok": True, "version": __version__,
            }

    asyncio.run(scenario())


def test_unknown_paths_and_methods_answer_json(store: CallStore) -> None:
    async def scenario() -> None:
        async with served(store) as client:
            resp = await client.get("/v2/calls")
            assert resp.status == 404 and "error" in await resp.json()
            resp = await client.post("/v1/calls/job-42")
            assert resp.status == 405 and "error" in await resp.json()

    asyncio.run(scenario())


class _BrokenStore(CallStore):
    """A real store whose reads fail, to see what the client gets when something breaks."""

    def get(self, id: str):  # noqa: A002 - same signature as the store
        raise RuntimeError("database disk image is malformed at /secret/path")


def test_an_internal_error_is_a_500_without_details() -> None:
    async def scenario() -> None:
        async with served(_BrokenStore(":memory:")) as client:
            resp = await client.get("/v1/calls/x")
            assert resp.status == 500
            body = await resp.json()
            assert body == {"error": "internal error"}

    asyncio.run(scenario())


def test_the_startup_prunes_calls_older_than_the_retention() -> None:
    store = CallStore(":memory:")
    store.create("ancient", started_at=NOW - timedelta(days=45))
    store.create("recent", started_at=NOW - timedelta(days=1))

    async def scenario() -> None:
        async with served(store, config=ApiConfig(retention_days=30)) as client:
            for _ in range(100):  # the prune runs in a worker thread right after startup
                if store.get("ancient") is None:
                    break
                await asyncio.sleep(0.05)
            await get_json(client, "/v1/calls/ancient", "/v1/calls/{id}", 404)
            await get_json(client, "/v1/calls/recent", "/v1/calls/{id}")

    asyncio.run(scenario())


def test_openapi_document_is_valid_and_served(store: CallStore) -> None:
    validate_spec(SPEC)

    async def scenario() -> None:
        async with served(store) as client:
            resp = await client.get("/openapi.yaml")
            assert resp.status == 200
            assert yaml.safe_load(await resp.text()) == SPEC

    asyncio.run(scenario())


def test_openapi_documents_exactly_the_routes_the_app_serves(store: CallStore) -> None:
    app = create_app(store, registry=CollectorRegistry())
    served = {(r.resource.canonical, r.method.lower()) for r in app.router.routes()
              if r.method in ("GET", "POST")}
    documented = {(path, method) for path, ops in SPEC["paths"].items() for method in ops
                  if method in ("get", "post")}
    assert served == documented


def test_api_config_is_validated_naming_the_key() -> None:
    cfg = build(ApiConfig, {"port": 9000, "max_wait_s": 30}, "api")
    assert (cfg.port, cfg.max_wait_s, cfg.list_limit_max) == (9000, 30.0, 1000)
    for section, key in [
        ({"port": 70000}, "api.port"),
        ({"max_wait_s": 0}, "api.max_wait_s"),
        ({"list_limit_default": 5000}, "api.list_limit_default"),
        ({"retention_days": -1}, "api.retention_days"),
        ({"listen": "0.0.0.0"}, "api.listen"),
    ]:
        with pytest.raises(ConfigError, match=rf"^{key}"):
            build(ApiConfig, section, "api")


def test_max_wait_comes_from_the_config(store: CallStore) -> None:
    async def scenario() -> None:
        async with served(store, config=ApiConfig(retention_days=0, max_wait_s=5)) as client:
            body = await get_json(client, "/v1/calls/job-42?wait=6", "/v1/calls/{id}", 400)
            assert "wait" in body["error"] and "5" in body["error"]

    asyncio.run(scenario())
