"""Framing of the worker/supervisor/analysis messages and the SIP header reader."""

from __future__ import annotations

import pytest

from agent.errors import UserError
from agent.sip import messages as m
from agent.sip.headers import has_sdp, header, header_values, request_user, start_line

SAMPLES = [
    m.WorkerReady(worker=3, port=5103),
    m.CallStarted(call_id="a@b", correlation_id=None, from_uri="<sip:x@y>;tag=1",
                  to_uri="<sip:1@z>", source="127.0.0.1", t=1.5),
    m.CarrierFinal(call_id="a@b", code=503, reason='Q.850;cause=41;text="x"', t=2.0, wait=True),
    m.Verdict(call_id="a@b", code=404, reason="Unallocated number", q850_cause=1),
    m.AnalysisEvent(call_id="a@b", kind="second", data={"t": 0, "label": "silence", "p": {}},
                    audio_s=1.0, lag_s=0.01),
    m.Shutdown(),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda msg: type(msg).__name__)
def test_message_round_trips_through_one_json_line(msg):
    line = m.encode(msg)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert m.decode_line(line) == msg


def test_decoder_reassembles_messages_cut_anywhere():
    stream = b"".join(m.encode(msg) for msg in SAMPLES)
    for cut in range(1, len(stream)):
        dec = m.Decoder()
        assert dec.feed(stream[:cut]) + dec.feed(stream[cut:]) == SAMPLES


@pytest.mark.parametrize(
    "line",
    [b"not json", b"[1, 2]", b'{"type": "Nope"}', b'{"call_id": "x"}',
     b'{"type": "Verdict", "call_id": "x", "bogus": 1}', b"\xff\xfe"],
)
def test_bad_control_lines_are_one_line_user_errors(line):
    with pytest.raises(UserError, match="control message"):
        m.decode_line(line)


INVITE = (
    "INVITE sip:+15551234@10.0.0.1:5060;user=phone SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK1\r\n"
    "i: abc@10.0.0.2\r\n"
    "From: <sip:dialer@10.0.0.2>;tag=9\r\n"
    "X-Correlation-ID: job-42\r\n"
    "Reason: Q.850;cause=16,\r\n"
    " SIP;cause=200\r\n"
    "reason: Q.850;cause=31\r\n"
    "c: application/sdp\r\n"
    "\r\n"
    "v=0\r\n"
)


def test_header_reader_handles_compact_forms_folding_and_repeats():
    assert start_line(INVITE).startswith("INVITE ")
    assert header(INVITE, "Call-ID") == "abc@10.0.0.2"
    assert header(INVITE, "x-correlation-id") == "job-42"
    assert header_values(INVITE, "Reason") == ["Q.850;cause=16, SIP;cause=200", "Q.850;cause=31"]
    assert header(INVITE, "To") is None
    assert request_user(INVITE) == "+15551234"
    assert has_sdp(INVITE)


@pytest.mark.parametrize("msg", ["", "garbage", "INVITE\r\n\r\n", "INVITE tel:123 SIP/2.0\r\n"])
def test_header_reader_never_raises_on_broken_messages(msg):
    assert header(msg, "call-id") is None
    assert request_user(msg) == ""
    assert not has_sdp(msg)
