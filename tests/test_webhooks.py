"""Push delivery (agent.webhooks) to a real HTTP receiver on loopback: signature, payload,
retries, refusals, a receiver that hangs, queue overflow, the metrics that show it, the
config that sets it up, and the supervisor's hooks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.api.app import OPENAPI_PATH
from agent.api.metrics import AgentMetrics
from agent.config import build
from agent.errors import ConfigError
from agent.labels import Inferred
from agent.settings import AgentConfig, load_agent_config
from agent.sip import messages as m
from agent.sip.supervisor import Supervisor
from agent.store.calls import CallStore
from agent.webhooks.config import WebhookConfig
from agent.webhooks.delivery import WebhookSink, backoff
from agent.webhooks.signature import sign, verify
from tests.child_pipe import Pipe
from tests.webhook_receiver import Delivery, Receiver

SECRET = "s3cret-for-webhook-tests"
ENV = "EMA_TEST_WEBHOOK_SECRET"
SPEC = yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))
BUSY = Inferred(486, "busy tone", 17, "tone", [{"detector": "tone", "kind": "busy"}])
UNALLOCATED = Inferred(404, "number does not exist", 1, "fingerprint",
                       [{"detector": "fingerprint", "entry_id": 3}])


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, SECRET)


def config(url: str, **kw: Any) -> WebhookConfig:
    return build(WebhookConfig, {"url": url, "secret_env": ENV, "backoff_s": 0.05,
                                 "backoff_max_s": 0.2, **kw}, "webhooks")


def conforms(body: Any) -> None:
    """``body`` is a WebhookEvent of agent/api/openapi.yaml (its ``call`` the API's Call)."""
    schema = {"$ref": "#/components/schemas/WebhookEvent", "components": SPEC["components"]}
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(body)


def sample(metrics: AgentMetrics, name: str, **labels: str) -> float:
    """A sample as /metrics exposes it (the text format, parsed back)."""
    text = generate_latest(metrics.registry).decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    raise AssertionError(f"{name}{labels} not exposed")


@asynccontextmanager
async def pushing(receiver: Receiver, store: CallStore, **kw: Any
                  ) -> AsyncIterator[WebhookSink]:
    await receiver.start()
    sink = WebhookSink(config(receiver.url, **kw), store=store,
                       metrics=AgentMetrics(CollectorRegistry()))
    await sink.start()
    try:
        yield sink
    finally:
        await sink.stop(grace_s=0.2)
        await receiver.stop()


def decided_call(store: CallStore, call_id: str = "c1@10.0.0.1",
                 inferred: Inferred = BUSY) -> str:
    store.create(call_id, correlation_id="job-7", carrier="acme", route="uk")
    store.set_inferred(call_id, inferred)
    return call_id


# --- the signature ------------------------------------------------------------------------

def test_the_signature_is_hmac_sha256_over_the_timestamp_a_dot_and_the_body() -> None:
    body = b'{"id":"1","event":"final"}'
    expected = hmac.new(b"k" * 16, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(b"k" * 16, 1700000000, body) == f"t=1700000000,v1={expected}"


@pytest.mark.parametrize(("header", "body", "now", "ok"), [
    ("good", b"{}", 1700000000, True),
    ("good", b"{} ", 1700000000, False),  # a byte of the body changed
    ("good", b"{}", 1700000000 + 301, False),  # replayed five minutes later
    ("good", b"{}", 1700000000 - 301, False),  # from the future
    ("other-secret", b"{}", 1700000000, False),
    (None, b"{}", 1700000000, False),
    ("", b"{}", 1700000000, False),
    ("v1=00", b"{}", 1700000000, False),
    ("t=\u00b2,v1=00", b"{}", 1700000000, False),
], ids=["good", "tampered", "replayed", "future", "wrong-secret", "missing", "empty",
        "no-time", "odd-digits"])
def test_verify_accepts_only_a_fresh_signature_of_the_same_body(header, body, now, ok) -> None:
    if header == "good":
        header = sign(b"k" * 16, 1700000000, b"{}")
    elif header == "other-secret":
        header = sign(b"x" * 16, 1700000000, b"{}")
    assert verify(b"k" * 16, header, body, now=now) is ok


def test_backoff_doubles_up_to_its_cap() -> None:
    cfg = build(WebhookConfig, {"backoff_s": 1, "backoff_max_s": 60}, "webhooks")
    assert [backoff(cfg, n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


# --- the config ---------------------------------------------------------------------------

@pytest.mark.parametrize(("section", "key"), [
    ({"retries": 3}, "webhooks.retries"),
    ({"url": "ftp://example.com/x"}, "webhooks.url"),
    ({"url": "http:///no-host"}, "webhooks.url"),
    ({"events": ["decision", "started"]}, r"webhooks.events\[1\]"),
    ({"when_full": "block"}, "webhooks.when_full"),
    ({"max_attempts": 0}, "webhooks.max_attempts"),
    ({"backoff_s": 90, "backoff_max_s": 60}, "webhooks.backoff_s"),
    ({"queue_size": 0}, "webhooks.queue_size"),
    ({"timeout_s": "soon"}, "webhooks.timeout_s"),
    ({"secret_env": "NOT-A-NAME"}, "webhooks.secret_env"),
    ({"url": "https://hooks.example/x", "secret_env": "EMA_UNSET_SECRET"},
     "webhooks.secret_env"),
    ({"url": "https://hooks.example/x", "secret_env": "EMA_SHORT_SECRET"},
     "webhooks.secret_env"),
])
def test_the_config_is_checked_at_start_naming_the_key(
        monkeypatch: pytest.MonkeyPatch, section: dict, key: str) -> None:
    monkeypatch.delenv("EMA_UNSET_SECRET", raising=False)
    monkeypatch.setenv("EMA_SHORT_SECRET", "short")
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        build(AgentConfig, {"webhooks": section})


def test_a_bad_webhook_key_stops_run_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("webhooks:\n  url: https://hooks.example/ema\n  secret_env: EMA_NOT_SET\n")
    proc = subprocess.run([sys.executable, "-m", "agent", "run", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "early-media-agent: error: webhooks.secret_env: environment variable EMA_NOT_SET "
        "is not set (it holds the webhook signing key)"]


def test_the_shipped_config_documents_every_key_and_leaves_pushing_off() -> None:
    cfg = load_agent_config()
    assert cfg.webhooks == WebhookConfig() and not cfg.webhooks.enabled
    text = (Path(__file__).parents[1] / "config" / "agent.yaml").read_text()
    section = yaml.safe_load(text)["webhooks"]
    assert set(section) == set(WebhookConfig.__dataclass_fields__)


# --- delivery -----------------------------------------------------------------------------

def test_a_decision_and_the_final_record_arrive_signed_as_the_api_s_call(store) -> None:
    async def scenario() -> list[Delivery]:
        receiver = Receiver(SECRET.encode())
        async with pushing(receiver, store) as sink:
            call_id = decided_call(store)
            sink.publish("decision", call_id)
            expected_decision = store.get(call_id).as_json()
            sink.publish("decision", call_id)  # the same verdict again: not pushed twice
            store.set_carrier_final(call_id, 480)
            store.set_state(call_id, "failed")
            sink.publish("final", call_id)
            got = await receiver.wait_for(2)
            assert got[0].json["call"] == expected_decision
            assert got[1].json["call"] == store.get(call_id).as_json()
            await asyncio.sleep(0.1)
            assert len(receiver.deliveries) == 2
            assert sample(sink.metrics, "ema_webhook_deliveries_total", event="decision",
                          result="delivered") == 1
            assert sample(sink.metrics, "ema_webhook_deliveries_total", event="final",
                          result="delivered") == 1
            return got

    decision, final = asyncio.run(scenario())
    for d, event in ((decision, "decision"), (final, "final")):
        assert d.signed and d.status == 200
        assert d.headers["X-EMA-Event"] == event == d.json["event"]
        assert d.headers["X-EMA-Delivery"] == d.json["id"]
        assert d.headers["Content-Type"] == "application/json"
        assert d.headers["User-Agent"].startswith("early-media-agent/")
        conforms(d.json)
    assert decision.json["call"]["inferred"]["sip_code"] == 486
    assert decision.json["call"]["state"] == "decided"
    assert final.json["call"]["state"] == "failed"
    assert final.json["call"]["carrier_final_code"] == 480


def test_a_changed_verdict_is_a_new_decision(store) -> None:
    async def scenario() -> list[Delivery]:
        receiver = Receiver(SECRET.encode())
        async with pushing(receiver, store) as sink:
            call_id = decided_call(store)
            sink.publish("decision", call_id)
            await receiver.wait_for(1)
            store.set_inferred(call_id, UNALLOCATED)
            sink.publish("decision", call_id)
            return await receiver.wait_for(2)

    first, second = asyncio.run(scenario())
    codes = [d.json["call"]["inferred"]["sip_code"] for d in (first, second)]
    assert codes == [486, 404] and first.json["id"] != second.json["id"]


def test_only_the_configured_events_are_pushed(store) -> None:
    async def scenario() -> list[Delivery]:
        receiver = Receiver(SECRET.encode())
        async with pushing(receiver, store, events=["final"]) as sink:
            call_id = decided_call(store)
            sink.publish("decision", call_id)
            store.set_state(call_id, "failed")
            sink.publish("final", call_id)
            await receiver.wait_for(1)
            await asyncio.sleep(0.1)
            return receiver.deliveries

    assert [d.json["event"] for d in asyncio.run(scenario())] == ["final"]


def test_an_event_answered_500_is_sent_again_with_the_same_id_and_body(store) -> None:
    async def scenario() -> tuple[list[Delivery], AgentMetrics]:
        receiver = Receiver(SECRET.encode(), statuses=(500,))
        async with pushing(receiver, store) as sink:
            sink.publish("decision", decided_call(store))
            return await receiver.wait_for(2), sink.metrics

    (first, second), metrics = asyncio.run(scenario())
    assert (first.status, second.status) == (500, 200)
    assert first.body == second.body and first.signed and second.signed
    assert sample(metrics, "ema_webhook_retries_total", event="decision") == 1
    assert sample(metrics, "ema_webhook_deliveries_total", event="decision",
                  result="delivered") == 1
    assert sample(metrics, "ema_webhook_deliveries_total", event="decision",
                  result="failed") == 0


def test_a_refusal_is_not_retried_and_counts_as_failed(store) -> None:
    async def scenario() -> AgentMetrics:
        receiver = Receiver(SECRET.encode(), statuses=(401,))
        async with pushing(receiver, store) as sink:
            sink.publish("decision", decided_call(store))
            await receiver.wait_for(1)
            await asyncio.sleep(0.3)  # longer than the backoff: a retry would be here
            assert len(receiver.deliveries) == 1
            return sink.metrics

    metrics = asyncio.run(scenario())
    assert sample(metrics, "ema_webhook_deliveries_total", event="decision",
                  result="failed") == 1
    assert sample(metrics, "ema_webhook_retries_total", event="decision") == 0


def test_an_event_is_given_up_after_max_attempts(store) -> None:
    async def scenario() -> AgentMetrics:
        receiver = Receiver(SECRET.encode(), statuses=(503, 429, 502, 200))
        async with pushing(receiver, store, max_attempts=3) as sink:
            sink.publish("decision", decided_call(store))
            await receiver.wait_for(3)
            await asyncio.sleep(0.5)
            assert [d.status for d in receiver.deliveries] == [503, 429, 502]
            return sink.metrics

    metrics = asyncio.run(scenario())
    assert sample(metrics, "ema_webhook_retries_total", event="decision") == 2
    assert sample(metrics, "ema_webhook_deliveries_total", event="decision",
                  result="failed") == 1


def test_a_receiver_that_is_down_is_retried_until_it_is_back(store) -> None:
    async def scenario() -> tuple[Delivery, AgentMetrics]:
        receiver = Receiver(SECRET.encode())
        await receiver.start()
        port = receiver.port
        await receiver.stop()  # nothing listens on the port now
        sink = WebhookSink(config(f"http://127.0.0.1:{port}/hook", backoff_s=0.2,
                                  backoff_max_s=0.4), store=store,
                           metrics=AgentMetrics(CollectorRegistry()))
        await sink.start()
        try:
            sink.publish("decision", decided_call(store))
            await asyncio.sleep(0.5)
            back = await Receiver(SECRET.encode()).start(port=port)  # the retries find it
            try:
                [got] = await back.wait_for(1)
            finally:
                await back.stop()
        finally:
            await sink.stop(grace_s=0)
        return got, sink.metrics

    got, metrics = asyncio.run(scenario())
    assert got.signed and got.json["event"] == "decision"
    assert sample(metrics, "ema_webhook_retries_total", event="decision") >= 1
    assert sample(metrics, "ema_webhook_deliveries_total", event="decision",
                  result="delivered") == 1


def test_a_receiver_that_never_answers_holds_up_nothing(store) -> None:
    async def scenario() -> None:
        receiver = Receiver(SECRET.encode(), hang=True)
        async with pushing(receiver, store, timeout_s=30, concurrency=1) as sink:
            t0 = time.perf_counter()
            for i in range(50):
                call_id = decided_call(store, f"c{i}")
                sink.publish("decision", call_id)
            publish_s = time.perf_counter() - t0
            await receiver.wait_for(1)
            # The loop the supervisor and the API share stays free while a POST hangs.
            t0 = time.perf_counter()
            await asyncio.sleep(0.05)
            assert time.perf_counter() - t0 < 0.5
            assert publish_s < 0.5, publish_s
            assert sample(sink.metrics, "ema_webhook_queue_depth") == 49
            t0 = time.perf_counter()
        assert time.perf_counter() - t0 < 3, "stop() waited for the hung receiver"

    asyncio.run(scenario())


@pytest.mark.parametrize(("when_full", "delivered"), [
    ("drop_oldest", ["c0", "c3", "c4"]),
    ("drop_newest", ["c0", "c1", "c2"]),
])
def test_a_full_queue_drops_and_counts(store, when_full: str, delivered: list[str]) -> None:
    async def scenario() -> AgentMetrics:
        receiver = Receiver(SECRET.encode(), hold=True)
        async with pushing(receiver, store, queue_size=2, concurrency=1,
                           when_full=when_full) as sink:
            sink.publish("decision", decided_call(store, "c0"))
            await receiver.wait_for(1)  # c0 is in flight, held by the receiver
            for i in range(1, 5):
                sink.publish("decision", decided_call(store, f"c{i}"))
            assert sample(sink.metrics, "ema_webhook_queue_depth") == 2
            assert sample(sink.metrics, "ema_webhook_deliveries_total", event="decision",
                          result="dropped") == 2
            receiver.hold = False
            receiver.release()
            got = await receiver.wait_for(3)
            await asyncio.sleep(0.1)
            assert [d.json["call"]["call_id"] for d in receiver.deliveries] == delivered
            assert all(d.status == 200 for d in got)
            assert sample(sink.metrics, "ema_webhook_queue_depth") == 0
            return sink.metrics

    metrics = asyncio.run(scenario())
    assert sample(metrics, "ema_webhook_deliveries_total", event="decision",
                  result="delivered") == 3


# --- the supervisor's hooks ---------------------------------------------------------------

@asynccontextmanager
async def supervised(store: CallStore, receiver: Receiver, *, rewrite: bool
                     ) -> AsyncIterator[Supervisor]:
    async with pushing(receiver, store) as sink:
        cfg = AgentConfig()
        cfg = replace(cfg, sip=replace(cfg.sip, rewrite_final_response=rewrite))
        sup = Supervisor(cfg, "unused.yaml", store=store, metrics=sink.metrics,
                         notifier=None, sink=sink)
        for child in (*sup.workers, *sup.analysts):
            child.writer = Pipe()  # type: ignore[assignment]
        yield sup


def _start(sup: Supervisor, call_id: str) -> None:
    worker, analyst = sup.workers[0], sup.analysts[0]
    sup.on_message(worker, m.CallStarted(call_id=call_id, correlation_id="job-1",
                                         from_uri="sip:d@h", to_uri="sip:1@h",
                                         source="127.0.0.1", t=time.time(), carrier="acme"))
    sup.on_message(worker, m.EarlyMedia(call_id=call_id, codec="PCMU", path="/x.wav",
                                        t=time.time()))
    sup.on_message(analyst, m.AnalysisEvent(call_id=call_id, kind="inferred",
                                            data=BUSY.as_json(), audio_s=2.0, lag_s=0.01))


def test_the_supervisor_pushes_the_decision_then_the_final_record(store) -> None:
    async def scenario() -> list[Delivery]:
        receiver = Receiver(SECRET.encode())
        async with supervised(store, receiver, rewrite=True) as sup:
            worker, analyst = sup.workers[0], sup.analysts[0]
            _start(sup, "c1")
            await receiver.wait_for(1)
            sup.on_message(worker, m.CarrierFinal(call_id="c1", code=480, reason=None,
                                                  t=time.time(), wait=True))
            sup.on_message(analyst, m.FinalInference(call_id="c1", inferred=BUSY.as_json(),
                                                     audio_s=3.0))
            sup.on_message(worker, m.CallEnded(call_id="c1", state="failed", dialer_code=486,
                                               carrier_code=480, rewritten=True,
                                               t=time.time()))
            got = await receiver.wait_for(2)
            await asyncio.sleep(0.1)
            assert len(receiver.deliveries) == 2
            return got

    decision, final = asyncio.run(scenario())
    assert [decision.json["event"], final.json["event"]] == ["decision", "final"]
    assert decision.json["call"]["state"] == "decided"
    assert final.json["call"]["state"] == "failed"
    assert final.json["call"]["inferred"]["sip_code"] == 486


def test_a_final_record_waits_for_the_inference_that_comes_after_the_call_ended(store) -> None:
    """Relayed failures end the call before the analysis has its last word: the final
    record is pushed after that word, with it."""
    async def scenario() -> list[Delivery]:
        receiver = Receiver(SECRET.encode())
        async with supervised(store, receiver, rewrite=False) as sup:
            worker, analyst = sup.workers[0], sup.analysts[0]
            _start(sup, "c2")
            sup.on_message(worker, m.CarrierFinal(call_id="c2", code=480, reason=None,
                                                  t=time.time(), wait=False))
            sup.on_message(worker, m.CallEnded(call_id="c2", state="failed", dialer_code=480,
                                               carrier_code=480, rewritten=False,
                                               t=time.time()))
            await asyncio.sleep(0.2)
            assert [d.json["event"] for d in receiver.deliveries] == ["decision"]
            sup.on_message(analyst, m.FinalInference(
                call_id="c2", inferred=UNALLOCATED.as_json(), audio_s=3.0))
            return await receiver.wait_for(3)

    events = asyncio.run(scenario())
    assert [(d.json["event"], d.json["call"]["inferred"]["sip_code"]) for d in events] == [
        ("decision", 486), ("decision", 404), ("final", 404)]
    assert events[-1].json["call"]["state"] == "failed"


def test_a_rejected_call_is_pushed_as_a_final_record(store) -> None:
    async def scenario() -> Delivery:
        receiver = Receiver(SECRET.encode())
        async with supervised(store, receiver, rewrite=False) as sup:
            sup.on_message(sup.workers[0], m.CallRejected(call_id="r1", code=403,
                                                          reason="Forbidden",
                                                          source="10.9.9.9"))
            [got] = await receiver.wait_for(1)
            return got

    got = asyncio.run(scenario())
    assert got.json["event"] == "final" and got.json["call"]["state"] == "failed"
    assert got.json["call"]["evidence"][0]["rejected"] == 403
