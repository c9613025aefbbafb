"""What the supervisor sends for a dead worker's calls, and the worker's admission checks."""

from __future__ import annotations

import pytest

from agent.config import build
from agent.sip.admission import Admission, valid_call_id
from agent.sip.config import SipConfig
from agent.sip.failover import address, cancel_request, final_response, head_of
from agent.sip.headers import clean, header, header_values, start_line

# An INVITE as Kamailio relays it to a worker (two Vias, Record-Route, a body).
DIALER_INVITE = (
    "INVITE sip:5551234@127.0.0.1:40001 SIP/2.0\r\n"
    "Record-Route: <sip:127.0.0.1:5070;lr>\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa1b2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:59134;received=127.0.0.1;branch=z9hG4bK-10612-120-0\r\n"
    "From: dialer <sip:dialer@127.0.0.1:59134>;tag=10612SIPpTag00120\r\n"
    "To: <sip:5551234@127.0.0.1:54819>\r\n"
    "Call-ID: 120-10612@127.0.0.1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 4\r\n\r\nv=0\r\n"
)
# The carrier INVITE a worker sent (as pjsip writes it).
CARRIER_INVITE = (
    "INVITE sip:5551234@127.0.0.1:5080 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:40001;rport;branch=z9hG4bKPjd1f0\r\n"
    "Max-Forwards: 70\r\n"
    "From: sip:agent@127.0.0.1:40001;tag=8e3a\r\n"
    "To: sip:5551234@127.0.0.1\r\n"
    "Contact: <sip:agent@127.0.0.1:40001;ob>\r\n"
    "Call-ID: 1b9c-44\r\n"
    "CSeq: 5421 INVITE\r\n"
    "Content-Length: 0\r\n\r\n"
)


def test_final_response_echoes_every_via_and_the_dialog_headers():
    out = final_response(head_of(DIALER_INVITE), 503, "Service Unavailable",
                         headers={"Reason": 'Q.850;cause=41;text="x"'}, tag="abc").decode()
    assert start_line(out) == "SIP/2.0 503 Service Unavailable"
    assert header_values(out, "via") == header_values(DIALER_INVITE, "via")
    for name in ("from", "call-id", "cseq"):
        assert header(out, name) == header(DIALER_INVITE, name)
    assert header(out, "to") == "<sip:5551234@127.0.0.1:54819>;tag=abc"
    assert header(out, "reason") == 'Q.850;cause=41;text="x"'
    assert out.endswith("Content-Length: 0\r\n\r\n")


def test_final_response_keeps_a_to_tag_the_invite_already_has():
    tagged = DIALER_INVITE.replace("To: <sip:5551234@127.0.0.1:54819>",
                                   "To: <sip:5551234@127.0.0.1:54819>;tag=zz")
    out = final_response(tagged, 480, "Temporarily Unavailable").decode()
    assert header(out, "to") == "<sip:5551234@127.0.0.1:54819>;tag=zz"


def test_cancel_matches_the_invite_transaction():
    out = cancel_request(head_of(CARRIER_INVITE)).decode()
    assert start_line(out) == "CANCEL sip:5551234@127.0.0.1:5080 SIP/2.0"
    assert header_values(out, "via") == ["SIP/2.0/UDP 127.0.0.1:40001;rport;branch=z9hG4bKPjd1f0"]
    assert header(out, "cseq") == "5421 CANCEL"
    assert header(out, "to") == "sip:5551234@127.0.0.1"
    assert header(out, "from") == header(CARRIER_INVITE, "from")


@pytest.mark.parametrize("bad", ["", "BYE sip:x SIP/2.0\r\nVia: a\r\n",
                                 "INVITE sip:x SIP/2.0\r\nFrom: a\r\n"])
def test_failover_refuses_what_is_not_a_whole_invite(bad):
    with pytest.raises(ValueError):
        final_response(bad, 503, "x")
    with pytest.raises(ValueError):
        cancel_request(bad)


def test_addresses_in_pjsua2_form():
    assert address("127.0.0.1:5070") == ("127.0.0.1", 5070)
    assert address("[::1]:5070") == ("::1", 5070)
    assert address("nonsense") is None


@pytest.mark.parametrize(("value", "ok"), [
    ("120-10612@127.0.0.1", True), ("a.b_c~d", True), ("x@y@z", False), ("", False),
    ("has space", False), ("\udcff\udcfe@host", False), ("é@host", False), ("a" * 257, False),
])
def test_call_ids_of_rfc_3261_form(value, ok):
    assert valid_call_id(value) is ok


def test_non_utf8_text_becomes_escapes_that_json_and_sqlite_take():
    raw = b"\xff\xfe@host".decode("utf-8", "surrogateescape")
    assert clean(raw) == "\\xff\\xfe@host"
    assert clean("plain") == "plain"


def _admission(**kw: object) -> Admission:
    return Admission(build(SipConfig, kw, "sip"))


def test_allow_list_takes_networks_and_addresses():
    adm = _admission(allowed_sources=["10.0.0.0/8", "127.0.0.1"])
    assert adm.allowed("10.20.30.40") and adm.allowed("127.0.0.1")
    assert not adm.allowed("127.0.0.2") and not adm.allowed("not-an-ip")


def test_behind_kamailio_only_kamailio_starts_calls_and_names_the_source():
    adm = _admission(workers=3, listen_host="127.0.0.1")
    assert adm.from_edge("127.0.0.1:5070") and not adm.from_edge("127.0.0.2:5060")
    msg = "INVITE sip:a@b SIP/2.0\r\nX-EMA-Source: 127.0.0.2\r\n\r\n"
    assert adm.source(msg, "127.0.0.1:5070") == "127.0.0.2"
    # A dialer cannot name its own source when it talks to a worker directly.
    assert adm.source(msg, "127.0.0.9:5060") == "127.0.0.9"


def test_rate_limit_lets_a_burst_through_then_refuses_until_tokens_return():
    adm = _admission(invite_rate_per_source=5.0, workers=1)
    verdicts = [adm.rate_limited("10.0.0.1", now=100.0) for _ in range(12)]
    assert verdicts[:10] == [False] * 10 and verdicts[10:] == [True, True]
    assert not adm.rate_limited("10.0.0.2", now=100.0)  # other sources are unaffected
    assert not adm.rate_limited("10.0.0.1", now=100.5)  # 2.5 tokens back


def test_bad_allowed_source_is_a_one_line_config_error():
    from agent.errors import ConfigError

    with pytest.raises(ConfigError, match="allowed_sources: 'nowhere'"):
        build(SipConfig, {"allowed_sources": ["nowhere"]}, "sip")
