"""Answered calls and decision times through the real agent (issue 14, items 8 and 9):
a 200 OK after early media ends the failure inference; ``decided_at`` is when the verdict
was made, not the carrier's final response; an agreeing verdict is marked on the response."""

from __future__ import annotations

import time
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from agent.sip.harness import AgentProcess, CallResult, parse_trace, place_call
from agent.sip.reason import parse_reasons


def _when(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _call(agent: AgentProcess, tmp_path: Path, audio: Path, **kw: object) -> CallResult:
    result = place_call(agent, workdir=tmp_path, audio=audio, **kw)  # type: ignore[arg-type]
    assert result.call_id, "the dialer sent no INVITE"
    assert result.record, f"the API does not know call {result.call_id}"
    return result


def test_a_call_answered_after_an_announcement_has_no_inferred_code(rewriting_agent, audio,
                                                                    tmp_path):
    result = _call(rewriting_agent, tmp_path, audio["announcement"],
                   carrier="carrier_answer.xml", early_ms=5000)
    assert result.code == 200
    record = result.record
    assert record["carrier_final_code"] == 200
    assert record["state"] in ("connected", "ended")
    # The early media was heard and decided on, and all of that stays on the record ...
    assert record["seconds"], "no second of the early media was classified"
    assert "announcement" in [d["label"] for d in record["decisions"]]
    assert {"detector": "carrier", "early_media": "PCMU"} in record["evidence"]
    # ... but the answer ended the failure inference.
    assert record["inferred"] is None
    assert record["decided_at"] is None and record["first_decided_at"] is None
    since = urllib.parse.quote(record["started_at"], safe="")
    [row] = rewriting_agent.api(f"/v1/stats/asr?by=carrier&since={since}")["rows"]
    assert (row["attempts"], row["answered"], row["inferred"]) == (1, 1, {})


def test_an_agreeing_inference_is_marked_and_decided_before_the_carrier_final(
        rewriting_agent, audio, tmp_path):
    result = _call(rewriting_agent, tmp_path, audio["ringback"],
                   carrier="carrier_early_final.xml", final_code=480, early_ms=5000)
    # The dialer gets the carrier's code, marked as decided by the agent.
    assert result.code == 480
    assert result.final.header("x-carrier-final-code") == "480"
    [reason] = parse_reasons(result.final.headers("reason"))
    assert reason.protocol == "Q.850" and reason.cause is not None
    record = result.record
    assert record["inferred"]["sip_code"] == 480
    assert record["carrier_final_code"] == 480
    # The verdict was made on the early media; the carrier's 480 only confirmed it.
    first, last = _when(record["first_decided_at"]), _when(record["decided_at"])
    assert first <= last
    carrier_final = next(msg for msg in parse_trace((tmp_path / "carrier.msg").read_text())
                         if msg.sent and msg.status == 480)
    assert carrier_final.t > 0, "the carrier's trace has no times"
    assert last < carrier_final.t


@pytest.fixture(scope="session")
def fas_agent(e2e_root: Path, model_path: Path, workers: int):
    """An agent that checks answered calls for false answer supervision for 4 s."""
    agent = AgentProcess(workdir=e2e_root / f"fas-{workers}", model=model_path, rewrite=True,
                         workers=workers, extra={"fas": {"seconds": 4}})
    agent.start()
    yield agent
    assert agent.stop() == 0


def _fas_settled(agent: AgentProcess, record: dict) -> dict:
    """The record once its FAS check found something or the analysis had 10 s to."""
    deadline = time.monotonic() + 10.0
    while not (record.get("fas") or {}).get("suspected") and time.monotonic() < deadline:
        time.sleep(0.2)
        record = agent.api(f"/v1/calls/{urllib.parse.quote(record['call_id'], safe='')}")
    return record


def test_ringback_after_the_answer_is_a_suspected_false_answer(fas_agent, audio, tmp_path):
    result = _call(fas_agent, tmp_path, audio["ringback"], carrier="carrier_false_answer.xml",
                   early_ms=3000)
    assert result.code == 200
    record = _fas_settled(fas_agent, result.record)
    assert record["inferred"] is None and record["carrier_final_code"] == 200
    assert record["fas"]["suspected"] is True
    assert all(e["after_answer_s"] >= 0 for e in record["fas"]["evidence"])
    assert "ringback" in {e.get("label") or e.get("kind") for e in record["fas"]["evidence"]}
    with urllib.request.urlopen(f"http://127.0.0.1:{fas_agent.api_port}/metrics") as resp:
        assert "ema_fas_suspected_total{" in resp.read().decode()
    with urllib.request.urlopen(f"http://127.0.0.1:{fas_agent.api_port}/dashboard") as resp:
        assert "<td>suspected</td>" in resp.read().decode()


def test_silence_after_the_answer_is_a_real_answer(fas_agent, audio, tmp_path):
    result = _call(fas_agent, tmp_path, audio["ringback"], carrier="carrier_answer.xml",
                   early_ms=3000)
    assert result.code == 200
    assert result.record["fas"] == {"suspected": False, "evidence": []}
    assert result.record["inferred"] is None
