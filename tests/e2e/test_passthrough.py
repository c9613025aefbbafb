"""What crosses the B2BUA: the dialer's identity and tags reach the carrier's INVITE, the
carrier's configured headers come back on the final response (issue 14, item 3)."""

from __future__ import annotations

from pathlib import Path

from agent.sip.harness import AgentProcess, CallResult, TraceMessage, parse_trace, place_call


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
