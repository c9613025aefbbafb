"""What crosses the B2BUA: the dialer's identity and tags reach the carrier's INVITE, the
carrier's configured headers come back on the final response (issue 14, item 3)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from agent.sip.harness import (
    AgentProcess,
    CallResult,
    TraceMessage,
    parse_trace,
    place_call,
    place_calls,
)


def _identity_call(agent: AgentProcess, tmp_path: Path, audio: Path,
                   carrier: str = "carrier_tagged_final.xml") -> tuple[CallResult, TraceMessage]:
    result = place_call(agent, workdir=tmp_path, carrier=carrier, audio=audio,
                        dialer="dialer_identity.xml", final_code=480)
    assert result.call_id, "the dialer sent no INVITE"
    assert result.record, f"the API does not know call {result.call_id}"
    seen = parse_trace((tmp_path / "carrier.msg").read_text(errors="replace"))
    invites = [m for m in seen if not m.sent and m.first_line.startswith("INVITE ")]
    assert len(invites) == 1, [m.first_line for m in seen]
    return result, invites[0]


def test_the_carrier_sees_the_dialers_caller_identity_and_tags(relaying_agent, audio,
                                                              tmp_path):
    result, invite = _identity_call(relaying_agent, tmp_path, audio["ringback"])
    # The Request-URI is the carrier's; the From and To are the dialer's, with new tags.
    assert invite.first_line.startswith(
        f"INVITE sip:5551234@127.0.0.1:{relaying_agent.carrier_port} ")
    sent = result.dialer[0]
    assert '"Alice Caller" <sip:+15551230000@dialer.example;user=phone>' in invite.header("from")
    assert invite.header("from") != sent.header("from"), "the dialer's From tag was reused"
    assert invite.header("to").startswith('"Bob" <sip:5551234@')
    assert invite.header("p-asserted-identity") == sent.header("p-asserted-identity")
    assert invite.header("diversion") == sent.header("diversion")
    assert invite.header("privacy") == "id"
    assert invite.header("x-campaign") == "spring-42"
    assert invite.header("x-correlation-id") == f"corr-{result.call_id}"
    # Not asked for (P-Charging-Vector), internal (X-EMA-Source behind Kamailio), or not
    # sendable (a Latin-1 value): left out, and the call still went through.
    assert invite.header("p-charging-vector") is None
    assert invite.header("x-ema-source") is None
    assert invite.header("x-latin1") is None
    assert invite.header("x-pad") is None  # past the forwarding budget
    assert invite.header("x-after-pad") == "still-forwarded"
    assert invite.header("call-id") != result.call_id
    assert result.code == 480


def test_the_carriers_configured_headers_come_back_relayed_and_rewritten(
        relaying_agent, rewriting_agent, audio, tmp_path):
    relayed, _ = _identity_call(relaying_agent, tmp_path / "relay", audio["ringback"])
    assert relayed.code == 480
    assert (relayed.final.header("x-carrier-ref") or "").startswith("ref-")
    assert relayed.final.header("p-charging-vector") is None  # not in return_headers
    assert "cause=20" in (relayed.final.header("reason") or "")
    rewritten, _ = _identity_call(rewriting_agent, tmp_path / "rewrite", audio["busy"])
    assert rewritten.code == 486
    assert rewritten.final.header("x-carrier-final-code") == "480"
    assert (rewritten.final.header("x-carrier-ref") or "").startswith("ref-")


def _digest_ok(invite: TraceMessage, password: str = "s3cret") -> bool:
    """Whether the INVITE's Proxy-Authorization is the right MD5 digest (RFC 2617, no
    qop) for ``password``."""
    value = invite.header("proxy-authorization") or ""
    p = dict(re.findall(r'(\w+)="?([^",]*)"?', value))
    md5 = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731
    ha1 = md5(f"{p.get('username')}:{p.get('realm')}:{password}")
    ha2 = md5(f"INVITE:{p.get('uri')}")
    return p.get("response") == md5(f"{ha1}:{p.get('nonce')}:{ha2}")


def test_the_agent_answers_the_carriers_challenge_with_its_credentials(
        e2e_root, model_path, workers, audio, tmp_path, monkeypatch):
    monkeypatch.setenv("EMA_TEST_CARRIER_PASSWORD", "s3cret")
    agent = AgentProcess(workdir=e2e_root / f"auth-{workers}", model=model_path, rewrite=True,
                         workers=workers,
                         extra_sip={"carrier_auth": {
                             "username": "agent",
                             "password": "${EMA_TEST_CARRIER_PASSWORD}"}})
    agent.start()
    try:
        result = place_call(agent, workdir=tmp_path, carrier="carrier_auth.xml",
                            audio=audio["busy"], final_code=480)
    finally:
        assert agent.stop() == 0
    seen = parse_trace((tmp_path / "carrier.msg").read_text(errors="replace"))
    invites = [m for m in seen if not m.sent and m.first_line.startswith("INVITE ")]
    assert [m.header("proxy-authorization") is not None for m in invites] == [False, True]
    assert _digest_ok(invites[1])
    assert 'username="agent"' in invites[1].header("proxy-authorization")
    assert result.code == 486  # the call went on to its early media and was decided
    assert not [m for m in result.dialer if m.status == 407]


def test_without_credentials_the_challenge_goes_to_the_dialer_and_its_answer_to_the_carrier(
        relaying_agent, audio, tmp_path):
    results = place_calls(relaying_agent, workdir=tmp_path, carrier="carrier_auth.xml",
                          audio=audio["ringback"], final_code=480, dialer="dialer_auth.xml",
                          carrier_calls=2)
    result = results[0]
    challenge = next(m for m in result.dialer if m.status == 407)
    assert 'realm="carrier.example"' in (challenge.header("proxy-authenticate") or "")
    seen = parse_trace((tmp_path / "carrier.msg").read_text(errors="replace"))
    invites = [m for m in seen if not m.sent and m.first_line.startswith("INVITE ")]
    assert len(invites) == 2 and _digest_ok(invites[1])
    assert result.code == 480
    assert [m.status for m in result.dialer if m.status == 183]


@pytest.mark.parametrize(("password", "code"), [("s3cret", 480), ("other", 403)])
def test_the_dialer_proves_its_credentials_when_the_agent_asks(
        e2e_root, model_path, workers, audio, tmp_path, password, code):
    agent = AgentProcess(workdir=e2e_root / f"dialer-auth-{workers}-{password}",
                         model=model_path, rewrite=False, workers=workers,
                         extra_sip={"dialer_auth": {"username": "agent",
                                                    "password": password}})
    agent.start()
    try:
        result = place_call(agent, workdir=tmp_path, carrier="carrier_early_final.xml",
                            audio=audio["ringback"], final_code=480, dialer="dialer_auth.xml")
    finally:
        assert agent.stop() == 0
    challenge = next(m for m in result.dialer if m.status == 407)
    assert 'realm="early-media-agent"' in challenge.header("proxy-authenticate")
    assert result.code == code
    seen = (tmp_path / "carrier.msg")
    invites = [m for m in parse_trace(seen.read_text(errors="replace")) if not m.sent
               and m.first_line.startswith("INVITE ")] if seen.exists() else []
    if code == 403:
        assert not invites  # a wrong password never reaches the carrier
    else:
        [invite] = invites
        assert invite.header("proxy-authorization") is None  # the agent's, not the carrier's
