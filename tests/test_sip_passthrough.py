"""Which headers cross the B2BUA, and how the dialer's From/To become the carrier leg's."""

import pytest

from agent.config import build
from agent.errors import ConfigError
from agent.sip.config import SipConfig
from agent.sip.passthrough import (
    DEFAULT_FORWARD,
    challenges,
    check_patterns,
    credentials,
    dialog_uri,
    pick_headers,
)

INVITE = (
    "INVITE sip:5551234@127.0.0.1:5070 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n"
    'From: "Alice" <sip:+15551230000@pbx.example>;tag=abc\r\n'
    "To: <sip:5551234@127.0.0.1:5070>\r\n"
    "Call-ID: c1@pbx\r\n"
    "CSeq: 1 INVITE\r\n"
    "P-Asserted-Identity: <sip:+15551230000@pbx.example>\r\n"
    "P-Asserted-Identity: <tel:+15551230000>\r\n"
    "Diversion: <sip:100@pbx.example>;reason=no-answer\r\n"
    "X-Campaign: spring\r\n"
    "x-lower: kept as written\r\n"
    "X-Correlation-ID: corr-1\r\n"
    "X-EMA-Source: 10.0.0.9\r\n"
    "X-Bad: caf\udce9\r\n"
    "P-Charging-Vector: icid-value=1\r\n"
    "Content-Type: application/sdp\r\n"
    "\r\n"
    "v=0\r\nX-Not-A-Header: body\r\n"
)


def test_default_forward_copies_identity_and_x_headers_in_order():
    assert pick_headers(INVITE, DEFAULT_FORWARD) == [
        ("P-Asserted-Identity", "<sip:+15551230000@pbx.example>"),
        ("P-Asserted-Identity", "<tel:+15551230000>"),
        ("Diversion", "<sip:100@pbx.example>;reason=no-answer"),
        ("X-Campaign", "spring"),
        ("x-lower", "kept as written"),
    ]


def test_dialog_internal_and_unsendable_headers_never_cross():
    names = {name.lower() for name, _ in pick_headers(INVITE, ["*"])}
    assert names.isdisjoint({"via", "from", "to", "call-id", "cseq", "content-type",
                             "x-correlation-id", "x-ema-source", "x-bad", "x-not-a-header"})
    assert "p-charging-vector" in names


def test_a_header_past_the_budget_is_left_out_and_later_ones_still_go():
    msg = "INVITE sip:1@h SIP/2.0\r\nX-Big: " + "b" * 3000 + "\r\nX-Small: s\r\n\r\n"
    assert pick_headers(msg, ["X-*"]) == [("X-Small", "s")]
    assert pick_headers(msg, ["X-*"], budget=11) == []


def test_skip_leaves_out_named_headers():
    final = "SIP/2.0 480 No\r\nReason: Q.850;cause=18\r\nX-Carrier-Final-Code: 1\r\n\r\n"
    assert pick_headers(final, ["X-*", "Reason"], skip={"reason", "x-carrier-final-code"}) == []


@pytest.mark.parametrize(("value", "uri"), [
    ('"Alice" <sip:+1555@pbx.example;user=phone>;tag=abc',
     '"Alice" <sip:+1555@pbx.example;user=phone>'),
    ("Alice B <sips:alice@pbx.example>", "Alice B <sips:alice@pbx.example>"),
    ("sip:alice@pbx.example;tag=xyz", "<sip:alice@pbx.example>"),
    ("<tel:+15551230000>", "<tel:+15551230000>"),
    ('"Eve <sip:x" <sip:eve@pbx.example>', None),  # '<' inside the quotes: not parsed
    ("Eve;x <sip:eve@pbx.example>", "<sip:eve@pbx.example>"),  # bad display name dropped
    ("<http://example.com>", None),
    ("<sip:broken", None),
    ("", None),
    (None, None),
    ("caf\udce9 <sip:a@b>", None),
    ("<sip:" + "a" * 600 + "@b>", None),
])
def test_dialog_uri(value, uri):
    assert dialog_uri(value) == uri


@pytest.mark.parametrize(("patterns", "message"), [
    (["Via"], "forward_headers: Via belongs to one leg's dialog"),
    (["X-Correlation-ID"], "forward_headers: X-Correlation-ID belongs to one leg's dialog"),
    (["X Campaign"], "forward_headers: 'X Campaign' is not a header name"),
    (["X-Ca:mp"], "is not a header name"),
])
def test_bad_patterns_are_one_line_errors_naming_the_key(patterns, message):
    with pytest.raises(ConfigError, match=message):
        check_patterns("forward_headers", patterns)


def test_config_refuses_a_dialog_header_in_return_headers():
    with pytest.raises(ConfigError, match="return_headers: Contact"):
        build(SipConfig, {"return_headers": ["Contact"]}).validate()
    assert build(SipConfig, {}).forward_headers == DEFAULT_FORWARD


def test_carrier_credentials_come_from_the_environment_or_a_one_line_error(monkeypatch):
    monkeypatch.delenv("EMA_NO_SUCH_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="carrier_auth.password: environment variable "
                                          "EMA_NO_SUCH_PASSWORD is not set"):
        build(SipConfig, {"carrier_auth": {"username": "agent",
                                           "password": "${EMA_NO_SUCH_PASSWORD}"}})
    with pytest.raises(ConfigError, match="carrier_auth.password: required with "
                                          "carrier_auth.username"):
        build(SipConfig, {"carrier_auth": {"username": "agent"}}).validate()
    monkeypatch.setenv("EMA_CARRIER_PW", "pw")
    cfg = build(SipConfig, {"carrier_auth": {"username": "agent",
                                             "password": "${EMA_CARRIER_PW}"}})
    assert cfg.carrier_auth.password == "pw"


def test_challenges_and_credentials_cross_only_as_digest_headers():
    resp = ('SIP/2.0 407 Proxy Authentication Required\r\n'
            'Proxy-Authenticate: Digest realm="c", nonce="n"\r\nX-Other: 1\r\n\r\n')
    assert challenges(resp) == [("Proxy-Authenticate", 'Digest realm="c", nonce="n"')]
    req = "INVITE sip:1@h SIP/2.0\r\nproxy-authorization: Digest username=\"a\"\r\n\r\n"
    assert credentials(req) == [("Proxy-Authorization", 'Digest username="a"')]
    assert pick_headers(req, ["*"]) == []  # never through the ordinary forwarding
