"""Every carrier scenario through the real agent: what the dialer got, what the API says."""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from agent.sip.early_media import early_media, write_alaw
from agent.sip.harness import AgentProcess, CallResult, place_call
from agent.sip.reason import parse_reasons, q850_cause


def _call(agent: AgentProcess, tmp_path: Path, audio: dict[str, Path], kind: str | None,
          carrier: str | None = "carrier_early_final.xml", **kw: object) -> CallResult:
    result = place_call(agent, workdir=tmp_path, carrier=carrier,
                        audio=audio[kind] if kind else None, **kw)  # type: ignore[arg-type]
    assert result.call_id, "the dialer sent no INVITE"
    assert result.record, f"the API does not know call {result.call_id}"
    return result


def _inferred_code(result: CallResult) -> int | None:
    inferred = result.record.get("inferred")
    return inferred["sip_code"] if inferred else None


@pytest.mark.parametrize(
    ("kind", "carrier_code", "inferred"),
    [("announcement", 480, 480), ("ringback", 480, 480), ("music", 487, 480),
     ("silence", 408, 408)],
)
def test_relaying_agent_passes_carrier_code_and_reports_inference(
        relaying_agent, audio, tmp_path, kind, carrier_code, inferred):
    result = _call(relaying_agent, tmp_path, audio, kind, final_code=carrier_code)
    assert result.code == carrier_code
    assert result.final.header("x-carrier-final-code") is None
    assert [m.status for m in result.dialer if m.status == 183], "no early media upstream"
    assert result.record["carrier_final_code"] == carrier_code
    assert result.record["state"] == "failed"
    assert _inferred_code(result) == inferred
    assert result.record["seconds"], "no second was classified"


def test_api_finds_the_call_by_correlation_id_and_counts_it(relaying_agent, audio, tmp_path):
    result = _call(relaying_agent, tmp_path, audio, "ringback", final_code=480)
    correlation = result.dialer[0].header("x-correlation-id")
    quoted = urllib.parse.quote(correlation, safe="")
    assert relaying_agent.api(f"/v1/calls/{quoted}")["call_id"] == result.call_id
    with urllib.request.urlopen(f"http://127.0.0.1:{relaying_agent.api_port}/metrics") as resp:
        metrics = resp.read().decode()
    # Counted under the carrier the API names for the call (a configured name, never a URI).
    carrier = relaying_agent.api(f"/v1/calls/{quoted}")["carrier"] or "unknown"
    counted = [line for line in metrics.splitlines()
               if line.startswith("ema_carrier_final_total{") and 'code="480"' in line]
    assert counted and all(f'carrier="{carrier}"' in line for line in counted), counted


def test_dialer_hears_the_early_media(relaying_agent, audio, tmp_path):
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    rtp.settimeout(0.2)
    packets: list[bytes] = []
    done = threading.Event()

    def listen() -> None:
        while not done.is_set():
            try:
                packets.append(rtp.recv(2048))
            except TimeoutError:
                continue

    listener = threading.Thread(target=listen)
    listener.start()
    result = place_call(relaying_agent, workdir=tmp_path, carrier="carrier_early_final.xml",
                        audio=audio["ringback"], final_code=480, early_ms=3000,
                        dialer="dialer_listen.xml",
                        dialer_args=("-key", "dialer_rtp", str(rtp.getsockname()[1])))
    done.set()
    listener.join()
    rtp.close()
    assert result.code == 480
    # 3 s of early media is 150 packets of 20 ms; allow for set-up and the jitter buffer.
    assert len(packets) >= 100, len(packets)
    assert all(len(p) >= 12 and p[0] >> 6 == 2 for p in packets)  # RTP version 2


def test_lying_carrier_503_after_sit_is_rewritten_to_404(rewriting_agent, audio, tmp_path):
    result = _call(rewriting_agent, tmp_path, audio, "sit_vc", final_code=503, final_cause=41)
    assert result.code == 404
    assert result.final.header("x-carrier-final-code") == "503"
    assert q850_cause(result.final.headers("reason")) == 1
    assert result.record["inferred"]["source"] == "tone"
    assert result.record["carrier_final_code"] == 503


def test_busy_tone_behind_generic_480_is_rewritten_to_486(rewriting_agent, audio, tmp_path):
    result = _call(rewriting_agent, tmp_path, audio, "busy", final_code=480)
    assert result.code == 486
    assert result.final.header("x-carrier-final-code") == "480"
    [reason] = parse_reasons(result.final.headers("reason"))
    assert (reason.protocol, reason.cause) == ("Q.850", 17)
    assert _inferred_code(result) == 486
    # The classifier hears a busy tone as ringback-like audio: the record says what drove 486.
    assert result.record["inferred"]["basis"] == "busy tone"


def test_every_line_the_agent_writes_is_one_json_object(rewriting_agent, audio, tmp_path):
    """pjsip's own lines (and Kamailio's, with several workers) go through the JSON log."""
    _call(rewriting_agent, tmp_path, audio, "busy", final_code=480)
    lines = [line for line in rewriting_agent.log_path.read_text().splitlines() if line]
    assert lines
    for line in lines:
        assert line.startswith("{"), f"not a JSON log line: {line!r}"
        assert isinstance(json.loads(line), dict)


def test_pcma_carrier_and_pcma_ptime40_dialer_are_bridged_and_analysed(rewriting_agent,
                                                                      tmp_path):
    alaw = write_alaw(tmp_path / "busy.al", early_media("busy", 6.0))
    result = place_call(rewriting_agent, workdir=tmp_path / "call",
                        carrier="carrier_pcma_final.xml", audio=alaw, audio_name="early.al",
                        dialer="dialer_pcma.xml", final_code=480)
    assert result.code == 486
    assert {"detector": "carrier", "early_media": "PCMA"} in result.record["evidence"]
    answer = next(m for m in result.dialer if m.status == 183 and "m=audio" in m.text)
    assert "RTP/AVP 8" in answer.text


def test_rewrite_keeps_carrier_code_when_inference_agrees(rewriting_agent, audio, tmp_path):
    result = _call(rewriting_agent, tmp_path, audio, "ringback", final_code=480)
    assert result.code == 480
    # Marked as decided (agreed), unlike an undecided relay (tests/e2e/test_answered.py).
    assert result.final.header("x-carrier-final-code") == "480"
    assert _inferred_code(result) == 480


def test_183_without_sdp_relays_failure_without_inference(rewriting_agent, audio, tmp_path):
    result = _call(rewriting_agent, tmp_path, audio, None, carrier="carrier_nosdp_final.xml",
                   final_code=486, early_ms=1000)
    assert result.code == 486
    assert result.record["inferred"] is None
    assert result.record["carrier_final_code"] == 486


def test_180_only_is_relayed_then_failure(rewriting_agent, audio, tmp_path):
    result = _call(rewriting_agent, tmp_path, audio, None, carrier="carrier_ringing_final.xml",
                   final_code=480, early_ms=1000)
    assert 180 in [m.status for m in result.dialer]
    assert result.code == 480
    assert result.record["state"] == "failed"


def test_answered_call_connects_and_carrier_bye_reaches_dialer(rewriting_agent, audio, tmp_path):
    result = _call(rewriting_agent, tmp_path, audio, "ringback", carrier="carrier_answer.xml",
                   early_ms=2000)
    assert result.code == 200
    assert any(m.first_line.startswith("BYE") for m in result.dialer if not m.sent)
    assert result.dialer_rc == 0
    assert result.record["carrier_final_code"] == 200
    assert result.record["state"] in ("connected", "ended")


def test_dialer_cancel_during_early_media_propagates(rewriting_agent, audio, tmp_path):
    result = _call(rewriting_agent, tmp_path, audio, "music", carrier="carrier_until_cancel.xml",
                   dialer="dialer_cancel.xml", dialer_pause_ms=2500)
    assert result.code == 487
    assert result.dialer_rc == 0
    assert result.carrier_rc == 0, "the carrier did not see the CANCEL"
    assert result.record["state"] == "ended"


def test_silent_carrier_times_out_with_configured_code(rewriting_agent, audio, tmp_path):
    result = _call(rewriting_agent, tmp_path, audio, None, carrier="carrier_silent.xml",
                   early_ms=9000)
    assert result.code == 408
    assert result.record["state"] == "failed"


def test_dialer_hanging_up_right_after_the_answer_is_stored_as_answered(rewriting_agent, audio,
                                                                        tmp_path):
    result = place_call(rewriting_agent, workdir=tmp_path, carrier="carrier_answer.xml",
                        audio=audio["ringback"], early_ms=1500, dialer="dialer_bye_at_once.xml")
    assert result.code == 200
    record = result.record
    assert record["state"] in ("connected", "ended")
    assert record["carrier_final_code"] == 200
    assert record.get("inferred") is None


def _received_without_banner(result) -> None:
    """Behind Kamailio as on a lone worker: no proxy banner, no Server header."""
    received = [m for m in result.dialer if not m.sent]
    assert not any("kamailio" in m.text.lower() for m in received)
    assert not any(m.header("server") for m in received)


def test_a_relayed_503_reaches_the_dialer_as_a_503_with_its_reason(relaying_agent, audio,
                                                                    tmp_path):
    """No 503→500 remap by the edge, and the carrier's Reason is added."""
    result = _call(relaying_agent, tmp_path, audio, "ringback", final_code=503)
    _received_without_banner(result)
    assert result.code == 503
    assert result.final.header("reason") == 'Q.850;cause=20;text="carrier"'


def test_a_rewritten_503_carries_the_carrier_code_and_no_banner(rewriting_agent, audio,
                                                                 tmp_path):
    result = _call(rewriting_agent, tmp_path, audio, "busy", final_code=503)
    _received_without_banner(result)
    assert result.code == 486
    assert result.final.header("x-carrier-final-code") == "503"
    assert "cause=17" in (result.final.header("reason") or "")
