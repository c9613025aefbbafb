"""Webhooks from the live agent: a real call's decision and final record reach a real
receiver, signed; a 500 is retried; a receiver that never answers changes nothing for the
dialer, and the agent still stops cleanly."""

from __future__ import annotations

import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from agent.sip.harness import AgentProcess, CallResult, parse_trace, place_call
from tests.webhook_receiver import Delivery, Receiver

SECRET = "e2e-webhook-secret-0123456789"
ENV = "EMA_E2E_WEBHOOK_SECRET"


def carrier_final_t(workdir: Path) -> float:
    """When the SIPp carrier sent its final response (epoch seconds)."""
    carrier = parse_trace((workdir / "carrier.msg").read_text(errors="replace"))
    [sent] = [msg for msg in carrier if msg.sent and (msg.status or 0) >= 300]
    assert sent.t
    return sent.t


def final_gap_s(result: CallResult, workdir: Path) -> float:
    """Seconds from the carrier sending its final response to the dialer receiving one."""
    assert result.final is not None and result.final.t
    return result.final.t - carrier_final_t(workdir)


def of_call(deliveries: list[Delivery], call_id: str) -> dict[str, list[Delivery]]:
    """A call's deliveries by event, in the order they arrived."""
    out: dict[str, list[Delivery]] = {}
    for d in deliveries:
        if d.json["call"]["call_id"] == call_id:
            out.setdefault(d.json["event"], []).append(d)
    return out


def answered(deliveries: list[Delivery], call_id: str) -> set[str]:
    return {e for e, ds in of_call(deliveries, call_id).items() if ds[-1].status == 200}


def test_a_call_s_decision_and_final_record_are_pushed_and_a_hung_receiver_costs_nothing(
        e2e_root: Path, model_path: Path, audio: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, SECRET)
    receiver = Receiver(SECRET.encode(), statuses=(500,)).start_in_thread()
    agent = AgentProcess(workdir=e2e_root / "webhooks", model=model_path, rewrite=True,
                         extra={"webhooks": {"url": receiver.url, "secret_env": ENV,
                                             "timeout_s": 20, "max_attempts": 3,
                                             "backoff_s": 0.2, "backoff_max_s": 1}})
    agent.start()
    try:
        # 1. A busy tone behind the carrier's 480; the first POST is answered 500.
        one = place_call(agent, workdir=tmp_path / "one", carrier="carrier_early_final.xml",
                         audio=audio["busy"], final_code=480, early_ms=6000)
        assert one.code == 486
        events = of_call(receiver.wait_sync(
            lambda ds: answered(ds, one.call_id) == {"decision", "final"}), one.call_id)
        assert all(d.signed for ds in events.values() for d in ds)
        assert sorted(d.status for ds in events.values() for d in ds) == [200, 200, 500]
        retried = next(ds for ds in events.values() if len(ds) == 2)
        assert retried[0].body == retried[1].body  # sent again as it was, same id
        decision, final = events["decision"][-1].json, events["final"][-1].json
        assert decision["call"]["inferred"]["sip_code"] == 486
        assert final["call"]["state"] == "failed"
        quoted = urllib.parse.quote(one.call_id, safe="")
        assert final["call"] == agent.api(f"/v1/calls/{quoted}")
        with urllib.request.urlopen(f"http://127.0.0.1:{agent.api_port}/metrics") as resp:
            metrics = resp.read().decode()
        assert 'ema_webhook_deliveries_total{event="final",result="delivered"} 1.0' in metrics
        assert 'ema_webhook_deliveries_total{event="decision",result="delivered"} 1.0' in metrics
        retries = [line for line in metrics.splitlines()
                   if line.startswith("ema_webhook_retries_total{")]
        assert sum(float(line.rsplit(" ", 1)[1]) for line in retries) == 1, retries

        # 2. The same call while the receiver takes every POST and never answers.
        receiver.hang = True
        two = place_call(agent, workdir=tmp_path / "two", carrier="carrier_early_final.xml",
                         audio=audio["busy"], final_code=480, early_ms=6000)
        assert two.code == 486 and two.record["state"] == "failed"
        hung = of_call(receiver.wait_sync(lambda ds: len(of_call(ds, two.call_id)) == 2),
                       two.call_id)
        assert {e: [d.status for d in ds] for e, ds in hung.items()} == {
            "decision": [None], "final": [None]}
        # The decision's POST was hanging before the carrier gave up, yet the dialer got
        # the inferred code as fast as with a receiver that answers.
        assert hung["decision"][0].arrived < carrier_final_t(tmp_path / "two")
        gaps = final_gap_s(one, tmp_path / "one"), final_gap_s(two, tmp_path / "two")
        assert gaps[1] < gaps[0] + 0.5, gaps
    finally:
        t0 = time.monotonic()
        rc = agent.stop()
        stop_s = time.monotonic() - t0
        receiver.stop_thread()
    assert rc == 0 and stop_s < 15, (rc, stop_s)
