"""Several pjsua2 workers behind Kamailio: one SIP address, calls spread, a dead worker replaced."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from agent.sip.harness import AgentProcess, place_calls


@pytest.fixture(scope="module")
def pool_agent(e2e_root, model_path):
    agent = AgentProcess(workdir=e2e_root / "pool", model=model_path, rewrite=True, workers=3)
    agent.start()
    yield agent
    assert agent.stop() == 0


def test_pool_behind_kamailio_takes_all_calls_at_once(pool_agent, audio, tmp_path):
    results = place_calls(pool_agent, workdir=tmp_path, carrier="carrier_early_final.xml",
                          audio=audio["busy"], calls=6, final_code=480, early_ms=3000)
    assert len(results) == 6
    assert [r.code for r in results] == [486] * 6
    assert all(r.final.header("x-carrier-final-code") == "480" for r in results)
    assert all(r.record["inferred"]["sip_code"] == 486 for r in results)
    workers = {e["worker"] for e in pool_agent.log_events()
               if e.get("event") == "call_started" and "worker" in e
               and e["call_id"] in {r.call_id for r in results}}
    assert workers == {0, 1, 2}


def test_killed_worker_is_restarted_and_calls_go_on(pool_agent, audio, tmp_path):
    pids = [e["pid"] for e in pool_agent.log_events()
            if e.get("event") == "child_started" and e.get("kind") == "worker"]
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        events = pool_agent.log_events()
        restarted = [e for e in events if e.get("event") == "worker_ready"]
        if len(restarted) >= 4:
            break
        time.sleep(0.2)
    assert any(e.get("event") == "child_died" for e in pool_agent.log_events())
    media = Path(pool_agent.config()["sip"]["media_dir"])
    assert not list(media.glob(f"w0-{pids[0]}-*.wav")), "the dead worker's taps were left"
    results = place_calls(pool_agent, workdir=tmp_path, carrier="carrier_early_final.xml",
                          audio=audio["ringback"], calls=6, final_code=480, early_ms=2000)
    assert [r.code for r in results] == [480] * 6
