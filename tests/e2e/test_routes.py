"""Routes and carriers (issue 14, item 1): the first matching route names the carrier; a
carrier's next address takes the call when one answers 503; a route sets rewriting and
tone countries for its calls; the API and metrics show the names, never the numbers."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from agent.sip.harness import (
    AgentProcess,
    free_port,
    free_port_block,
    parse_trace,
    place_call,
    sipp,
)


@pytest.fixture(scope="module")
def routed(e2e_root: Path, model_path: Path, workers: int):
    """acme: a drained gateway (503) then a working one; beta: over TCP, for calls the
    PBX tags X-Campaign: spring-42. Rewriting is off globally and on for routes uk and us,
    each listening for its own country's tones."""
    ports = {"acme1": free_port(), "acme2": free_port(), "beta": free_port()}
    agent = AgentProcess(workdir=e2e_root / f"routes-{workers}", model=model_path,
                         rewrite=False, workers=workers)
    agent.extra_sip.update(
        carriers={"acme": {"addresses": [f"127.0.0.1:{ports['acme1']}",
                                         f"127.0.0.1:{ports['acme2']}"]},
                  "beta": {"addresses": [f"127.0.0.1:{ports['beta']}"], "transport": "tcp"}},
        routes=[{"name": "campaign", "header": "X-Campaign", "value": "spring-42",
                 "carrier": "beta"},
                {"name": "uk", "prefix": "44", "carrier": "acme", "rewrite": True,
                 "tone_countries": ["uk"]},
                {"name": "us", "prefix": "1", "carrier": "acme", "rewrite": True,
                 "tone_countries": ["us"]}])
    agent.start()
    agent.ports = ports  # type: ignore[attr-defined]
    yield agent
    assert agent.stop() == 0


def _carrier(scenario: str, port: int, workdir: Path, *args: str) -> subprocess.Popen:
    workdir.mkdir(parents=True, exist_ok=True)
    final = () if scenario == "carrier_refuse.xml" else (
        "-set", "final_code", "480", "-set", "final_cause", "20")
    proc = subprocess.Popen(
        sipp(scenario, "-p", str(port), "-mp", str(free_port_block(4, start=45000)),
             "-d", "3000", *final, "-timeout", "30s", "-trace_msg",
             "-message_file", "carrier.msg", *args),
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    return proc


def _invites(workdir: Path) -> list:
    trace = workdir / "carrier.msg"
    seen = parse_trace(trace.read_text(errors="replace")) if trace.exists() else []
    return [m for m in seen if not m.sent and m.first_line.startswith("INVITE ")]


def _acme_call(routed, audio, tmp_path: Path, number: str):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "early.ul").write_bytes(audio["busy"].read_bytes())  # US busy tone
    refuser = _carrier("carrier_refuse.xml", routed.ports["acme1"], tmp_path / "a")
    working = _carrier("carrier_early_final.xml", routed.ports["acme2"], tmp_path / "b")
    try:
        return place_call(routed, workdir=tmp_path / "dialer", carrier=None, audio=None,
                          service=number)
    finally:
        for proc in (refuser, working):
            proc.wait(timeout=30)


def test_a_503_from_the_first_address_moves_the_call_to_the_next(routed, audio, tmp_path):
    result = _acme_call(routed, audio, tmp_path, "15551234")
    assert len(_invites(tmp_path / "a")) == 1 and len(_invites(tmp_path / "b")) == 1
    # Route us rewrites (the global setting does not): the busy tone's 486, not 480.
    assert result.code == 486, result.record.get("evidence")
    record = result.record
    assert (record["carrier"], record["route"]) == ("acme", "us")
    assert {"detector": "carrier", "failover": 503,
            "next_address": f"127.0.0.1:{routed.ports['acme2']}"} in record["evidence"]
    tones = [e for e in record["evidence"] if e.get("detector") == "tone"]
    assert tones and {e.get("country") for e in tones} == {"us"}, tones


def test_a_routes_tone_countries_are_the_only_ones_it_listens_for(routed, audio, tmp_path):
    """The same US busy tone on route uk (UK tone plan only) is not a busy tone."""
    result = _acme_call(routed, audio, tmp_path, "442071234567")
    record = result.record
    assert (record["carrier"], record["route"]) == ("acme", "uk")
    assert not [e for e in record["evidence"] if e.get("detector") == "tone"]
    assert result.code != 486


def test_a_tagged_call_goes_to_its_carrier_over_tcp(routed, audio, tmp_path):
    (tmp_path / "beta").mkdir()
    (tmp_path / "beta" / "early.ul").write_bytes(audio["ringback"].read_bytes())
    beta = _carrier("carrier_early_final.xml", routed.ports["beta"], tmp_path / "beta",
                    "-t", "t1")
    try:
        result = place_call(routed, workdir=tmp_path / "dialer", carrier=None, audio=None,
                            dialer="dialer_identity.xml", service="15551234")
    finally:
        beta.wait(timeout=30)
    [invite] = _invites(tmp_path / "beta")
    assert "SIP/2.0/TCP" in invite.header("via")
    assert result.code == 480  # route campaign does not rewrite
    assert (result.record["carrier"], result.record["route"]) == ("beta", "campaign")


def test_a_call_no_route_matches_gets_404_and_a_record(routed, tmp_path):
    result = place_call(routed, workdir=tmp_path, carrier=None, audio=None, service="999")
    assert result.code == 404
    assert result.final.first_line.endswith("No Route")
    assert result.record["state"] == "failed"
