"""The supervisor on answered calls, decision times and false answers (issue 14, items 8
and 9), fed the messages a worker and an analysis process send, writing to a real call
store and metrics."""

from __future__ import annotations

from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry

from agent.api.dashboard import render_dashboard
from agent.api.metrics import AgentMetrics
from agent.labels import Decision, Inferred, SecondResult
from agent.settings import AgentConfig
from agent.sip import messages as m
from agent.sip.fas import FasConfig
from agent.sip.supervisor import Supervisor
from agent.store.calls import CallStore
from tests.child_pipe import Pipe

RINGBACK = Inferred(480, "Temporarily unavailable (ringback)", 18, "classifier",
                    [{"detector": "classifier", "label": "ringback", "at_s": 3.0}])


@pytest.fixture
def sup() -> Supervisor:
    cfg = AgentConfig()
    cfg = replace(cfg, sip=replace(cfg.sip, rewrite_final_response=True))
    s = Supervisor(cfg, "unused.yaml", store=CallStore(":memory:"),
                   metrics=AgentMetrics(CollectorRegistry()), notifier=None)
    for child in (*s.workers, *s.analysts):
        child.writer = Pipe()  # type: ignore[assignment]
    yield s
    s.store.close()


def early_call(sup: Supervisor, call_id: str = "c1") -> None:
    worker, analyst = sup.workers[0], sup.analysts[0]
    sup.on_message(worker, m.CallStarted(call_id=call_id, correlation_id=None,
                                         from_uri="sip:d@h", to_uri="sip:123@h",
                                         source="127.0.0.1", t=1.0, route="default",
                                         carrier="default"))
    sup.on_message(worker, m.EarlyMedia(call_id=call_id, codec="PCMU", path="/x.wav", t=1.0))
    second = SecondResult(t=0, label="announcement", p={"announcement": 0.9})
    for kind, data in (("second", second.as_json()),
                       ("decision", Decision("announcement", 2.0).as_json()),
                       ("inferred", RINGBACK.as_json())):
        sup.on_message(analyst, m.AnalysisEvent(call_id=call_id, kind=kind, data=data,
                                                audio_s=3.0, lag_s=0.01))
    assert sup.store.get(call_id).inferred is not None


def inferred_total(sup: Supervisor) -> float:
    reg = sup.metrics.registry
    return sum(s.value for metric in reg.collect() if metric.name == "ema_inferred"
               for s in metric.samples if s.name == "ema_inferred_total")


def test_a_200_ok_after_an_announcement_drops_the_inference(sup) -> None:
    early_call(sup)
    worker, analyst = sup.workers[0], sup.analysts[0]
    sup.on_message(worker, m.CarrierProgress(call_id="c1", code=200, t=5.0))
    # Analysis lags the SIP leg: a verdict and the final inference after the answer.
    sup.on_message(analyst, m.AnalysisEvent(call_id="c1", kind="inferred",
                                            data=RINGBACK.as_json(), audio_s=4.0, lag_s=0.0))
    sup.on_message(analyst, m.FinalInference(call_id="c1", inferred=RINGBACK.as_json(),
                                             audio_s=4.0))
    sup.on_message(worker, m.CallEnded(call_id="c1", state="connected", dialer_code=200,
                                       carrier_code=200, rewritten=False, t=9.0))
    body = sup.store.get("c1").as_json()
    assert body["inferred"] is None and body["decided_at"] is None
    assert body["carrier_final_code"] == 200 and body["state"] == "ended"
    assert [d["label"] for d in body["decisions"]] == ["announcement"]
    assert body["seconds"] and {"detector": "carrier", "answered": 200,
                                "inferred_before_answer": 480} in body["evidence"]
    assert inferred_total(sup) == 0
    reg = sup.metrics.registry
    assert reg.get_sample_value("ema_calls_total", {"carrier": "default", "route": "default",
                                                    "outcome": "answered"}) == 1
    [row] = sup.store.asr("carrier", sup.store.get("c1").started_at)
    assert (row.answered, row.inferred) == (1, {})


def test_a_failed_call_counts_its_inferred_code_once_when_it_is_over(sup) -> None:
    early_call(sup)
    worker, analyst = sup.workers[0], sup.analysts[0]
    assert inferred_total(sup) == 0  # not yet: the carrier may still answer
    sup.on_message(worker, m.CarrierFinal(call_id="c1", code=480, reason=None, t=9.0,
                                          wait=True))
    sup.on_message(worker, m.CallEnded(call_id="c1", state="failed", dialer_code=480,
                                       carrier_code=480, rewritten=False, t=9.1))
    sup.on_message(analyst, m.FinalInference(call_id="c1", inferred=RINGBACK.as_json(),
                                             audio_s=8.0))
    assert sup.metrics.registry.get_sample_value(
        "ema_inferred_total", {"sip_code": "480", "source": "classifier",
                               "carrier": "default"}) == 1
    assert "c1" not in sup.calls


def test_the_final_inference_confirming_the_code_keeps_decided_at(sup) -> None:
    early_call(sup)
    decided = sup.store.get("c1").decided_at
    worker, analyst = sup.workers[0], sup.analysts[0]
    sup.on_message(worker, m.CarrierFinal(call_id="c1", code=480, reason=None, t=9.0,
                                          wait=True))
    confirmed = {**RINGBACK.as_json(),
                 "evidence": [*RINGBACK.evidence, {"detector": "carrier", "final_code": 480}]}
    sup.on_message(analyst, m.FinalInference(call_id="c1", inferred=confirmed, audio_s=8.0))
    rec = sup.store.get("c1")
    assert rec.decided_at == decided == rec.first_decided_at
    assert rec.inferred.evidence[-1] == {"detector": "carrier", "final_code": 480}
    # The agreeing verdict still goes to the worker, so the dialer learns it was decided.
    [verdict] = [msg for msg in worker.writer.sent if isinstance(msg, m.Verdict)]
    assert (verdict.code, verdict.q850_cause) == (480, 18)


@pytest.fixture
def fas_sup(sup):
    sup.cfg = replace(sup.cfg, fas=FasConfig(seconds=4.0))
    return sup


def test_the_worker_is_told_how_long_to_tap_after_the_answer(fas_sup) -> None:
    argv = fas_sup._child("worker", 0).argv
    assert argv[argv.index("--fas-seconds") + 1] == "4.0"


def test_a_lying_answer_is_recorded_counted_and_shown(fas_sup) -> None:
    sup = fas_sup
    early_call(sup)  # early media began at t=1.0
    worker, analyst = sup.workers[0], sup.analysts[0]
    sup.on_message(worker, m.CarrierProgress(call_id="c1", code=200, t=5.0))
    assert not any(isinstance(msg, m.Finalize) for msg in analyst.writer.sent), \
        "the analysis must go on after the answer"
    assert sup.store.get("c1").fas == {"suspected": False, "evidence": []}
    for t in (4, 5, 6):  # the answer fell 4 s into the audio
        ringback = SecondResult(t, "ringback", {"ringback": 0.9}).as_json()
        sup.on_message(analyst, m.AnalysisEvent(call_id="c1", kind="second", data=ringback,
                                                audio_s=t + 1.0, lag_s=0.0))
    rec = sup.store.get("c1")
    assert rec.fas["suspected"] and rec.fas["evidence"][0]["at_s"] == 4.0
    assert rec.inferred is None and rec.answered
    assert sup.metrics.registry.get_sample_value(
        "ema_fas_suspected_total", {"carrier": "default"}) == 1
    sup.on_message(worker, m.CallEnded(call_id="c1", state="connected", dialer_code=200,
                                       carrier_code=200, rewritten=False, t=9.0))
    assert any(isinstance(msg, m.Finalize) for msg in analyst.writer.sent)
    html = render_dashboard(carriers=[], routes=[], calls=[sup.store.get("c1")],
                            since=rec.started_at)
    assert "<th>false answer</th>" in html and "<td>suspected</td>" in html


def test_without_fas_the_analysis_stops_at_the_answer(sup) -> None:
    early_call(sup)
    worker, analyst = sup.workers[0], sup.analysts[0]
    sup.on_message(worker, m.CarrierProgress(call_id="c1", code=200, t=5.0))
    assert any(isinstance(msg, m.Finalize) for msg in analyst.writer.sent)
    assert sup.store.get("c1").fas is None
    assert "--fas-seconds" not in sup._child("worker", 0).argv
