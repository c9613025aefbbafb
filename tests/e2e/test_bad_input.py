"""Bad input never breaks the agent: the dialer always gets a final response, nothing leaks."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from agent.sip.harness import AgentProcess, place_call


def _datagram(agent: AgentProcess, payload: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(payload, ("127.0.0.1", agent.sip_port))


BROKEN = [
    b"\x00\xff garbage \x80" * 20,
    b"INVITE sip:1@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\n\r\n",
    b"INVITE sip:1@127.0.0.1 SIP/2.0\r\nContent-Length: 99999\r\n\r\nv=0",
    b"SIP/2.0 200 OK\r\nCall-ID: nobody\r\n\r\n",
    b"OPTIONS\r\n\r\n",
]


def test_malformed_sip_is_ignored_and_the_next_call_works(rewriting_agent, audio, tmp_path):
    for payload in BROKEN:
        _datagram(rewriting_agent, payload)
    result = place_call(rewriting_agent, workdir=tmp_path, carrier="carrier_early_final.xml",
                        audio=audio["ringback"], final_code=480)
    assert result.code == 480
    assert result.record["state"] == "failed"


@pytest.mark.parametrize(
    ("dialer", "codes"),
    [("dialer_no_sdp.xml", None), ("dialer_broken_sdp.xml", {400, 488}),
     ("dialer_unknown_codec.xml", {488})],
)
def test_bad_offers_get_a_final_response(rewriting_agent, audio, tmp_path, dialer, codes):
    # pjsua refuses a broken or unacceptable offer itself, before any carrier leg.
    carrier = "carrier_early_final.xml" if codes is None else None
    result = place_call(rewriting_agent, workdir=tmp_path, carrier=carrier,
                        audio=audio["ringback"], final_code=480, dialer=dialer, timeout_s=20)
    assert result.final is not None, "the dialer got no final response"
    if codes is not None:
        assert result.code in codes
        # The API still shows the call pjsua refused, and why.
        assert result.record.get("state") == "failed", "the refused call is missing from the API"
    else:
        assert result.code >= 200


@pytest.mark.parametrize("carrier", ["carrier_wrong_pt.xml", "carrier_rtp_stops.xml"])
def test_broken_early_media_still_ends_with_the_carrier_code(rewriting_agent, audio, tmp_path,
                                                             carrier):
    result = place_call(rewriting_agent, workdir=tmp_path, carrier=carrier,
                        audio=audio["announcement"], final_code=503, early_ms=1500)
    assert result.final is not None
    assert result.record["carrier_final_code"] == 503
    assert result.record["state"] == "failed"
    rewritten = result.final.header("x-carrier-final-code")
    assert result.code == 503 or rewritten == "503"


def test_reinvite_during_early_media_is_refused_and_the_call_ends(rewriting_agent, audio,
                                                                  tmp_path):
    result = place_call(rewriting_agent, workdir=tmp_path, carrier="carrier_early_final.xml",
                        audio=audio["ringback"], final_code=480, early_ms=3000,
                        dialer="dialer_reinvite_early.xml")
    refusals = [m for m in result.dialer if not m.sent and m.status and m.status >= 300
                and "2 INVITE" in (m.header("cseq") or "")]
    assert refusals, "the re-INVITE got no final response"
    assert result.code == 480
    assert result.record["state"] == "failed"


def test_stranger_gets_403(e2e_root, model_path, audio, tmp_path, workers):
    # Behind Kamailio the edge refuses it; the worker would refuse it too (tested below).
    agent = AgentProcess(workdir=e2e_root / f"strict-{workers}", model=model_path,
                         workers=workers, extra_sip={"allowed_sources": ["192.0.2.0/24"]})
    agent.start()
    try:
        result = place_call(agent, workdir=tmp_path, carrier=None, audio=None, timeout_s=10)
        assert result.code == 403
        assert result.record["state"] == "failed"
    finally:
        assert agent.stop() == 0


def _no_leaks(agent: AgentProcess) -> None:
    events = agent.log_events()
    started = {e["call_id"] for e in events if e.get("event") == "call_started"}
    ended = {e["call_id"] for e in events if e.get("event") == "call_ended"}
    assert started <= ended, f"calls never ended: {started - ended}"
    assert not [e for e in events if e.get("event") == "child_died"]
    media = Path(agent.config()["sip"]["media_dir"])
    deadline = time.monotonic() + 10
    while any(media.glob("*.wav")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not list(media.glob("*.wav")), "early-media taps were left on tmpfs"


def test_no_call_worker_or_tap_leaked(rewriting_agent, relaying_agent):
    _no_leaks(rewriting_agent)
    _no_leaks(relaying_agent)


@pytest.mark.parametrize(
    ("name", "model", "extra"),
    [("no-analysis", "broken", {}), ("no-time", "real", {"decision_timeout_ms": 0})],
)
def test_rewrite_fails_open_to_the_carrier_code(e2e_root, model_path, audio, tmp_path, name,
                                                model, extra, workers):
    """Analysis that cannot run, or cannot answer in time, leaves the carrier's code alone."""
    if model == "broken":
        # A file that exists (so the config is valid) but that LightGBM cannot load.
        model_path = e2e_root / "broken-model.txt"
        model_path.write_text("not a LightGBM model\n")
    agent = AgentProcess(workdir=e2e_root / f"{name}-{workers}", rewrite=True,
                         extra_sip=extra, model=model_path, workers=workers)
    agent.start()
    try:
        result = place_call(agent, workdir=tmp_path, carrier="carrier_early_final.xml",
                            audio=audio["sit_vc"], final_code=503, early_ms=2500)
        assert result.code == 503
        assert result.final.header("x-carrier-final-code") is None
        assert result.record["carrier_final_code"] == 503
        assert result.record["state"] == "failed"
    finally:
        assert agent.stop() == 0
