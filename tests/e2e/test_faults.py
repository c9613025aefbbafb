"""Each fault of bench/faults.py once, on one worker and on three behind Kamailio, and a
short soak: outcomes are asserted (every dialer answered, nothing died, nothing lost),
never timings (bench/faults.py and bench/soak.py measure those)."""

from __future__ import annotations

import json
import random
import socket
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from agent.sip import faults
from agent.sip.early_media import early_media, write_ulaw
from agent.sip.harness import (
    AgentProcess,
    classify_final,
    invite_final,
    parse_trace,
    steady_calls,
)


@pytest.fixture(scope="module")
def fault_agent(e2e_root: Path, model_path: Path, workers: int):
    agent = AgentProcess(workdir=e2e_root / f"faults-{workers}", model=model_path,
                         rewrite=True, workers=workers)
    agent.start()
    yield agent
    agent.stop()


@pytest.fixture(scope="module")
def ring(e2e_root: Path) -> Path:
    return write_ulaw(e2e_root / "fault-ring.ul", early_media("ringback", 9.0))


def _deaths(agent: AgentProcess) -> list[dict]:
    return [e for e in agent.log_events() if e.get("event") == "child_died"]


def _health(agent: AgentProcess) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{agent.api_port}/healthz", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_killed_worker_calls_get_a_503_and_their_carrier_a_cancel(fault_agent, audio, ring,
                                                                  tmp_path, workers):
    result = faults.kill_worker_mid_call(fault_agent, workdir=tmp_path, audio=ring,
                                         calls=fault_agent.capacity, limit_s=30.0)
    assert result.lost == 0, result.line()
    assert result.values["affected"] >= 1 and result.values["restarted"]
    # The dead worker's calls are closed in the store, saying why.
    failed_over = [e for e in fault_agent.log_events() if e.get("event") == "call_failed_over"]
    assert failed_over and all(e["dialer_code"] == 503 for e in failed_over)
    record = fault_agent.call_record(failed_over[-1]["call_id"])
    assert record["state"] == "failed"
    assert any(e.get("agent_failure") for e in record["evidence"])
    assert faults.wait_for(lambda: _health(fault_agent)[0] == 200, 20)


def test_killed_analysis_leaves_every_call_answered(fault_agent, audio, tmp_path, workers):
    result = faults.kill_analysis_mid_call(fault_agent, workdir=tmp_path, audio=audio["busy"],
                                           calls=fault_agent.capacity)
    assert result.lost == 0 and result.tried == fault_agent.capacity, result.line()
    assert result.values["analysis_restarted"]


def test_burst_beyond_capacity_gets_final_responses_and_kills_nothing(fault_agent, audio,
                                                                     tmp_path):
    deaths = len(_deaths(fault_agent))
    result = faults.invite_burst(fault_agent, workdir=tmp_path, audio=audio["busy"], factor=3)
    assert result.lost == 0, result.line()
    codes = result.values["codes"]
    assert codes.get(503, 0) >= result.values["calls"] // 3, codes  # the overflow is refused
    assert set(codes) <= {486, 480, 503}, codes
    assert len(_deaths(fault_agent)) == deaths


def test_rtp_garbage_during_calls_changes_nothing(fault_agent, audio, tmp_path, workers):
    result = faults.rtp_garbage(fault_agent, workdir=tmp_path, audio=audio["busy"],
                                calls=fault_agent.capacity, packets=1500)
    assert result.lost == 0 and result.tried == fault_agent.capacity, result.line()


def test_non_utf8_call_id_is_refused_with_400_and_recorded(fault_agent):
    call_id = b"\xff\xfe-ema@host"
    invite = faults._bad_invite(random.Random(1), call_id=call_id)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        invite = invite.replace(b"127.0.0.1:9", f"127.0.0.1:{port}".encode())
        s.settimeout(10)
        s.sendto(invite, ("127.0.0.1", fault_agent.sip_port))
        finals = []
        while not finals:
            data = s.recv(65536)
            status = int(data.split(b" ", 2)[1])
            if status >= 200:
                finals.append(status)
    assert finals == [400]
    escaped = "\\xff\\xfe-ema@host"
    record = fault_agent.call_record(escaped)
    assert record.get("state") == "failed"
    assert _health(fault_agent)[0] == 200


def test_malformed_messages_kill_nothing_and_calls_go_on(fault_agent, audio, tmp_path):
    kinds = len(faults.MALFORMED)
    result = faults.malformed_flood(fault_agent, count=2 * kinds, seed=3, workdir=tmp_path,
                                    audio=audio["busy"])
    assert result.values["kinds"] >= 20
    assert result.values["deaths"] == 0 and result.lost == 0, result.line()


def test_restarted_agent_keeps_every_finished_record(fault_agent, audio, tmp_path, workers):
    result = faults.restart_agent(fault_agent, workdir=tmp_path, audio=audio["busy"],
                                  calls=workers + 1)
    assert result.tried == workers + 1 and result.lost == 0, result.line()


def test_short_soak_relays_every_call_and_no_worker_dies(e2e_root, model_path, tmp_path,
                                                        workers):
    if workers == 1:
        pytest.skip("ten concurrent calls need more than one worker (2 calls each)")
    agent = AgentProcess(workdir=e2e_root / "soak", model=model_path, rewrite=True, workers=6,
                         extra_sip={"carrier_timeout_s": 30.0})
    agent.start(timeout_s=180)
    busy = write_ulaw(tmp_path / "busy.ul", early_media("busy", 7.0))
    try:
        trace = steady_calls(agent, workdir=tmp_path / "calls", audio=busy, calls=10,
                             minutes=1.0, early_s=6.0)
    finally:
        events = agent.log_events()
        assert agent.stop() == 0
    by_call = defaultdict(list)
    for msg in parse_trace(trace.read_text(errors="replace")):
        by_call[msg.header("call-id")].append(msg)
    buckets: Counter[str] = Counter()
    for msgs in by_call.values():
        final = invite_final(msgs)
        buckets[classify_final(final.status if final else None,
                               final.header("x-carrier-final-code") if final else None)] += 1
    assert len(by_call) >= 60, buckets
    assert set(buckets) <= {"rewritten"} | {k for k in buckets if k.startswith("rewritten")}, \
        buckets
    assert not [e for e in events if e.get("event") == "child_died"]
