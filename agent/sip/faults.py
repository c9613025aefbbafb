"""Faults thrown at the real agent: killed processes, malformed SIP, bursts, RTP garbage.

Shared by ``bench/faults.py`` (many of each, counted) and ``tests/e2e/test_faults.py``
(each once, asserted). Every fault returns a :class:`FaultResult`: how many calls or
messages were tried, how many the agent survived as it should (each dialer got a final
response, no process died that should not have), and how many were lost.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.sip.failover import RESEND_AT_S
from agent.sip.harness import (
    SIPP_DIR,
    AgentProcess,
    TraceMessage,
    free_port,
    free_port_block,
    invite_final,
    parse_trace,
)


@dataclass
class FaultResult:
    """What one fault did: ``tried`` things, ``survived`` as they should, ``lost``."""

    name: str
    tried: int = 0
    survived: int = 0
    lost: int = 0
    notes: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        extra = "; ".join(self.notes)
        return (f"{self.name}: tried {self.tried}, survived {self.survived}, lost {self.lost}"
                + (f" ({extra})" if extra else ""))


@dataclass
class CallRun:
    """The traces of one SIPp dialer/carrier run."""

    dialer: dict[str, list[TraceMessage]]
    carrier: list[TraceMessage]

    def final(self, call_id: str) -> TraceMessage | None:
        return invite_final(self.dialer.get(call_id, []))

    def final_at(self, call_id: str) -> float | None:
        """When the first final response to the INVITE arrived (epoch seconds)."""
        times = [msg.t for msg in self.dialer.get(call_id, []) if not msg.sent and msg.t > 0
                 and msg.status and msg.status >= 200 and "INVITE" in (msg.header("cseq") or "")]
        return min(times) if times else None

    def carrier_cancels(self) -> set[str]:
        """Dialer Call-IDs whose carrier leg received a CANCEL (mapped by X-Correlation-ID)."""
        corr_of: dict[str, str] = {}
        for msg in self.carrier:
            if not msg.sent and msg.first_line.startswith("INVITE "):
                corr = msg.header("x-correlation-id") or ""
                corr_of[msg.header("call-id") or ""] = corr.removeprefix("corr-")
        return {corr_of.get(msg.header("call-id") or "", "") for msg in self.carrier
                if not msg.sent and msg.first_line.startswith("CANCEL ")} - {""}


def run_calls(agent: AgentProcess, *, workdir: Path, audio: Path | None, calls: int,
              carrier: str | None = "carrier_early_final.xml", dialer: str = "dialer_call.xml",
              early_ms: int = 3000, dialer_pause_ms: int = 1500, final_code: int = 480,
              timeout_s: float = 40.0, during: Callable[[], None] | None = None) -> CallRun:
    """``calls`` simultaneous calls; ``during`` runs while they are up (in this thread)."""
    workdir.mkdir(parents=True, exist_ok=True)
    common = ["-i", "127.0.0.1", "-nostdin", "-timeout", f"{int(timeout_s)}s", "-trace_msg",
              "-trace_err"]
    carrier_proc = None
    if carrier is not None:
        if audio is not None:
            (workdir / "early.ul").write_bytes(audio.read_bytes())
        carrier_proc = subprocess.Popen(
            ["sipp", "-sf", str(SIPP_DIR / carrier), *common, "-p", str(agent.carrier_port),
             "-mp", str(free_port_block(4, start=45000)), "-d", str(early_ms),
             "-set", "final_code", str(final_code), "-set", "final_cause", "20",
             "-message_file", "carrier.msg", "-m", str(calls)],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
    dialer_proc = subprocess.Popen(
        ["sipp", "-sf", str(SIPP_DIR / dialer), *common, "-p", str(free_port()),
         "-mp", str(free_port_block(4, start=52000)), "-d", str(dialer_pause_ms),
         "-s", "5551234", "-message_file", "dialer.msg", "-m", str(calls), "-l", str(calls),
         "-r", str(calls), f"127.0.0.1:{agent.sip_port}"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if during is not None:
            during()
        dialer_proc.wait(timeout=timeout_s + 15)
    finally:
        for proc in (dialer_proc, carrier_proc):
            if proc is None:
                continue
            try:
                proc.wait(timeout=2 if proc is carrier_proc else 0.1)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    by_call: dict[str, list[TraceMessage]] = {}
    trace = workdir / "dialer.msg"
    for msg in parse_trace(trace.read_text(errors="replace")) if trace.exists() else []:
        by_call.setdefault(msg.header("call-id") or "", []).append(msg)
    ctrace = workdir / "carrier.msg"
    carrier_msgs = parse_trace(ctrace.read_text(errors="replace")) if ctrace.exists() else []
    return CallRun(dialer=by_call, carrier=carrier_msgs)


def child_pids(agent: AgentProcess, kind: str) -> dict[int, int]:
    """index → pid of the agent's live children of ``kind`` (worker or analyst)."""
    pids: dict[int, int] = {}
    for event in agent.log_events():
        if event.get("event") == "child_started" and event.get("kind") == kind:
            pids[int(event["index"])] = int(event["pid"])
    return pids


def wait_for(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def _events(agent: AgentProcess, name: str) -> list[dict[str, Any]]:
    return [e for e in agent.log_events() if e.get("event") == name]


def kill_worker_mid_call(agent: AgentProcess, *, workdir: Path, audio: Path, calls: int = 2,
                         limit_s: float = 2.0) -> FaultResult:
    """SIGKILL the worker of a call in early media. Its dialers must get a final response
    within ``limit_s`` and their carrier legs a CANCEL; the other calls go on (their
    dialers CANCEL 5 s into early media, before the agent's own carrier timeout)."""
    result = FaultResult("kill -9 a worker mid-call")
    started_before = {e["call_id"] for e in _events(agent, "early_media")}
    killed: dict[str, Any] = {}

    def kill() -> None:
        def early() -> list[dict[str, Any]]:
            return [e for e in _events(agent, "early_media")
                    if e["call_id"] not in started_before]
        if not wait_for(lambda: len(early()) >= calls, 20):
            result.notes.append("calls never reached early media")
            return
        time.sleep(1.0)
        first = early()[0]["call_id"]
        worker = next(e["worker"] for e in _events(agent, "call_started")
                      if e["call_id"] == first)
        pid = child_pids(agent, "worker")[worker]
        killed.update(worker=worker, pid=pid, t=time.time())
        os.kill(pid, signal.SIGKILL)

    run = run_calls(agent, workdir=workdir, audio=audio, calls=calls,
                    carrier="carrier_until_cancel.xml", dialer="dialer_cancel.xml",
                    dialer_pause_ms=5000, timeout_s=30, during=kill)
    # The supervisor resends its CANCELs for a while; let them land before the next run
    # starts a carrier on the same port (it would take one for a call of its own).
    time.sleep(RESEND_AT_S[-1] + 0.5)
    if not killed:
        result.lost = calls
        return result
    on_worker = {e["call_id"] for e in _events(agent, "call_started")
                 if e.get("worker") == killed["worker"] and e["call_id"] in run.dialer}
    cancelled = run.carrier_cancels()
    delays = []
    for call_id in run.dialer:
        result.tried += 1
        final = run.final(call_id)
        if call_id in on_worker:
            at = run.final_at(call_id)
            delay = at - killed["t"] if at is not None else None
            if delay is not None:
                delays.append(delay)
            if final is not None and delay is not None and delay <= limit_s \
                    and call_id in cancelled:
                result.survived += 1
            else:
                result.lost += 1
                result.notes.append(f"{call_id}: final {final.first_line if final else None}"
                                    f" after {delay}, carrier cancelled {call_id in cancelled}")
        elif final is not None:
            result.survived += 1
        else:
            result.lost += 1
    result.values = {"affected": len(on_worker), "delays_s": delays, "worker": killed["worker"],
                     "restarted": wait_for(lambda: killed["pid"] not in
                                           child_pids(agent, "worker").values(), 10)}
    if delays:
        result.notes.append(f"affected {len(on_worker)}, final after {max(delays):.2f} s at most")
    return result


def kill_analysis_mid_call(agent: AgentProcess, *, workdir: Path, audio: Path,
                           calls: int = 2) -> FaultResult:
    """SIGKILL the analysis process while calls are in early media: every call still ends
    with a final response (fail-open), and analysis comes back."""
    result = FaultResult("kill -9 the analysis process")
    before = dict(child_pids(agent, "analyst"))

    def kill() -> None:
        n0 = len(_events(agent, "early_media"))
        wait_for(lambda: len(_events(agent, "early_media")) >= n0 + calls, 20)
        time.sleep(1.0)
        for pid in before.values():
            os.kill(pid, signal.SIGKILL)

    run = run_calls(agent, workdir=workdir, audio=audio, calls=calls, early_ms=4000,
                    during=kill)
    for call_id in run.dialer:
        result.tried += 1
        if run.final(call_id) is not None:
            result.survived += 1
        else:
            result.lost += 1
    back = wait_for(lambda: set(child_pids(agent, "analyst").values()).isdisjoint(
        before.values()) and len(child_pids(agent, "analyst")) == len(before), 15)
    result.values = {"analysis_restarted": back}
    if not back:
        result.notes.append("analysis did not come back")
    return result


def _bad_invite(rng: random.Random, *, call_id: bytes | None = None, extra: bytes = b"",
                body: bytes | None = None, first: bytes | None = None) -> bytes:
    cid = call_id if call_id is not None else f"bad-{rng.getrandbits(40):x}@fault".encode()
    sdp = body if body is not None else (
        b"v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    head = (first or b"INVITE sip:5551234@127.0.0.1 SIP/2.0") + b"\r\n" + (
        b"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK" + str(rng.getrandbits(40)).encode()
        + b"\r\nFrom: <sip:f@127.0.0.1>;tag=" + str(rng.getrandbits(30)).encode()
        + b"\r\nTo: <sip:5551234@127.0.0.1>\r\nCall-ID: " + cid
        + b"\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:f@127.0.0.1:9>\r\n" + extra
        + b"Content-Type: application/sdp\r\nContent-Length: " + str(len(sdp)).encode()
        + b"\r\n\r\n")
    return head + sdp


def _drop(msg: bytes, header: bytes) -> bytes:
    return b"\r\n".join(line for line in msg.split(b"\r\n")
                        if not line.lower().startswith(header.lower() + b":"))


#: Kinds of malformed SIP message: name → builder(rng) → bytes.
MALFORMED: dict[str, Callable[[random.Random], bytes]] = {
    "random binary": lambda r: r.randbytes(r.randint(1, 1400)),
    "empty datagram": lambda r: b"",
    "whitespace only": lambda r: b"\r\n" * r.randint(1, 8),
    "request line only": lambda r: b"INVITE sip:1@127.0.0.1 SIP/2.0\r\n\r\n",
    "no Via": lambda r: _drop(_bad_invite(r), b"Via"),
    "no Call-ID": lambda r: _drop(_bad_invite(r), b"Call-ID"),
    "no From": lambda r: _drop(_bad_invite(r), b"From"),
    "no To": lambda r: _drop(_bad_invite(r), b"To"),
    "no CSeq": lambda r: _drop(_bad_invite(r), b"CSeq"),
    "non-UTF-8 Call-ID": lambda r: _bad_invite(r, call_id=b"\xff\xfe" + r.randbytes(4)
                                               .replace(b"\r", b"x").replace(b"\n", b"y")
                                               + b"@host"),
    "non-UTF-8 display name": lambda r: _bad_invite(r).replace(b"From: <", b"From: \"\xc3\x28"
                                                               b"\xa0\xa1\" <", 1),
    "non-UTF-8 header value": lambda r: _bad_invite(r, extra=b"X-Junk: \xfe\xff\x80\x81\r\n"),
    "non-UTF-8 SDP": lambda r: _bad_invite(r, body=b"v=0\r\no=\xff\xfe 1 1 IN IP4 1.1.1.1\r\n"),
    "Content-Length too large": lambda r: _bad_invite(r).replace(b"Content-Length: ",
                                                                 b"Content-Length: 9", 1),
    "Content-Length not a number": lambda r: _bad_invite(r).replace(
        b"Content-Length: ", b"Content-Length: x", 1),
    "oversized header": lambda r: _bad_invite(r, extra=b"X-Big: " + b"a" * 7000 + b"\r\n"),
    "oversized message": lambda r: _bad_invite(r, extra=(b"X-Pad: " + b"b" * 900 + b"\r\n")
                                               * 20),
    "CSeq method mismatch": lambda r: _bad_invite(r).replace(b"CSeq: 1 INVITE",
                                                             b"CSeq: 1 BYE"),
    "CSeq not a number": lambda r: _bad_invite(r).replace(b"CSeq: 1 INVITE", b"CSeq: x INVITE"),
    "Max-Forwards zero": lambda r: _bad_invite(r).replace(b"Max-Forwards: 70",
                                                          b"Max-Forwards: 0"),
    "broken SDP": lambda r: _bad_invite(r, body=b"v=0\r\nm=audio nonsense\r\n"),
    "SDP without codecs": lambda r: _bad_invite(
        r, body=b"v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                b"m=audio 49170 RTP/AVP\r\n"),
    "bad Via": lambda r: _bad_invite(r).replace(b"Via: SIP/2.0/UDP", b"Via: SIP/9/XYZ", 1),
    "stray response": lambda r: (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKs"
                                 b"\r\nCall-ID: nobody\r\nCSeq: 1 INVITE\r\n\r\n"),
    "BYE for no dialog": lambda r: _bad_invite(r, first=b"BYE sip:1@127.0.0.1 SIP/2.0")
    .replace(b"To: <sip:5551234@127.0.0.1>", b"To: <sip:5551234@127.0.0.1>;tag=zz"),
    "CANCEL for no transaction": lambda r: _bad_invite(r, first=b"CANCEL sip:1@127.0.0.1 SIP/2.0"),
    "unknown method": lambda r: _bad_invite(r, first=b"FROB sip:1@127.0.0.1 SIP/2.0"),
    "wrong SIP version": lambda r: _bad_invite(r, first=b"INVITE sip:1@127.0.0.1 SIP/3.0"),
    "Request-URI not a URI": lambda r: _bad_invite(r, first=b"INVITE \x01\x02:: SIP/2.0"),
    "NUL bytes in headers": lambda r: _bad_invite(r).replace(b"Max-Forwards", b"Max\x00Forwards"),
    "a hundred Vias": lambda r: _bad_invite(r).replace(
        b"Via:", b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKv\r\n" * 100 + b"Via:", 1),
    "very long user part": lambda r: _bad_invite(
        r, first=b"INVITE sip:" + b"9" * 2000 + b"@127.0.0.1 SIP/2.0"),
    "re-INVITE for no dialog": lambda r: _bad_invite(r).replace(
        b"To: <sip:5551234@127.0.0.1>", b"To: <sip:5551234@127.0.0.1>;tag=nodialog"),
}


def malformed_messages(count: int, *, seed: int = 0) -> list[tuple[str, bytes]]:
    """``count`` malformed messages, the kinds of :data:`MALFORMED` in turn."""
    rng = random.Random(seed)
    kinds = sorted(MALFORMED)
    return [(kinds[i % len(kinds)], MALFORMED[kinds[i % len(kinds)]](rng)) for i in range(count)]


def sip_targets(agent: AgentProcess) -> list[int]:
    """The ports a stranger can reach: the edge, and each worker's own port."""
    ports = [agent.sip_port]
    if agent.workers > 1:
        ports += [agent.worker_base + i for i in range(agent.workers)]
    return ports


def malformed_flood(agent: AgentProcess, *, count: int = 1000, seed: int = 0,
                    rate_per_s: float = 400.0, workdir: Path | None = None,
                    audio: Path | None = None) -> FaultResult:
    """Send ``count`` malformed messages to every SIP port: no process may die. With
    ``workdir``, probe calls then measure how long until the agent takes a call again
    (INVITEs that parse start calls to a carrier that is not there, holding call slots)."""
    result = FaultResult("malformed SIP messages")
    deaths_before = len(_events(agent, "child_died"))
    messages = malformed_messages(count, seed=seed)
    targets = sip_targets(agent)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i, (_, payload) in enumerate(messages):
            port = targets[i % len(targets)]
            try:
                s.sendto(payload, ("127.0.0.1", port))
            except OSError:
                pass  # too large for a datagram: nothing was sent
            time.sleep(1.0 / rate_per_s)
    time.sleep(2.0)
    deaths = len(_events(agent, "child_died")) - deaths_before
    result.tried = len(messages)
    result.lost = deaths
    result.survived = len(messages) if deaths == 0 else 0
    result.values = {"kinds": len({k for k, _ in messages}), "deaths": deaths,
                     "targets": len(targets)}
    result.notes.append(f"{result.values['kinds']} kinds to {len(targets)} ports; "
                        f"{deaths} process deaths")
    if workdir is not None:
        t0 = time.monotonic()
        for attempt in range(60):
            run = run_calls(agent, workdir=workdir / f"probe{attempt}", audio=audio, calls=1,
                            early_ms=1000, timeout_s=20)
            final = next((run.final(c) for c in run.dialer), None)
            if final is not None and final.status not in (None, 503):
                result.values["recovery_s"] = time.monotonic() - t0
                result.notes.append(f"next call taken {result.values['recovery_s']:.1f} s "
                                    "after the flood")
                break
            time.sleep(1.0)
        else:
            result.lost += 1
            result.notes.append("no call taken within 60 probes after the flood")
    return result


def invite_burst(agent: AgentProcess, *, workdir: Path, audio: Path,
                 factor: int = 3) -> FaultResult:
    """``factor`` × the agent's capacity of INVITEs at once: each dialer gets a final
    response (the ones over capacity a refusal), and no process dies."""
    result = FaultResult("burst of INVITEs beyond capacity")
    capacity = agent.capacity
    calls = factor * capacity
    deaths_before = len(_events(agent, "child_died"))
    run = run_calls(agent, workdir=workdir, audio=audio, calls=calls, early_ms=2000,
                    timeout_s=30)
    codes: dict[int, int] = {}
    for call_id in run.dialer:
        result.tried += 1
        final = run.final(call_id)
        if final is not None and final.status is not None:
            result.survived += 1
            codes[final.status] = codes.get(final.status, 0) + 1
        else:
            result.lost += 1
    deaths = len(_events(agent, "child_died")) - deaths_before
    result.lost += deaths
    result.values = {"codes": codes, "deaths": deaths, "calls": calls}
    result.notes.append(f"{calls} INVITEs for {capacity} call slots; codes {codes}; "
                        f"{deaths} deaths")
    return result


def rtp_garbage(agent: AgentProcess, *, workdir: Path, audio: Path, calls: int = 2,
                packets: int = 3000, seed: int = 0) -> FaultResult:
    """Random datagrams and RTP with random headers at every agent RTP port during calls:
    each call still ends with a final response, no process dies."""
    result = FaultResult("RTP garbage during calls")
    rng = random.Random(seed)
    deaths_before = len(_events(agent, "child_died"))
    base = int(agent.config()["sip"]["rtp_port_base"])
    span = agent.workers * int(agent.config()["sip"].get("rtp_ports_per_worker", 40))
    sent = 0

    def spray() -> None:
        nonlocal sent
        n0 = len(_events(agent, "early_media"))
        wait_for(lambda: len(_events(agent, "early_media")) >= n0 + calls, 20)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(packets):
                if i % 2:
                    payload = rng.randbytes(rng.randint(0, 1500))
                else:  # version 2 RTP, any payload type, sequence, SSRC
                    payload = bytes([0x80, rng.randrange(256)]) + rng.randbytes(
                        10 + rng.randint(0, 400))
                try:
                    s.sendto(payload, ("127.0.0.1", base + rng.randrange(span)))
                    sent += 1
                except OSError:
                    pass
                if i % 50 == 0:
                    time.sleep(0.01)

    run = run_calls(agent, workdir=workdir, audio=audio, calls=calls, early_ms=4000,
                    during=spray)
    for call_id in run.dialer:
        result.tried += 1
        if run.final(call_id) is not None:
            result.survived += 1
        else:
            result.lost += 1
    deaths = len(_events(agent, "child_died")) - deaths_before
    result.lost += deaths
    result.values = {"packets": sent, "deaths": deaths}
    result.notes.append(f"{sent} packets; {deaths} deaths")
    return result


def restart_agent(agent: AgentProcess, *, workdir: Path, audio: Path,
                  calls: int = 3) -> FaultResult:
    """Finish ``calls`` calls, SIGKILL the agent, start it again on the same store: every
    finished record is still there."""
    result = FaultResult("kill -9 and restart the agent")
    run = run_calls(agent, workdir=workdir, audio=audio, calls=calls, early_ms=2000)
    finished = {}
    for call_id in run.dialer:
        record = agent.call_record(call_id)
        if record.get("state") in ("failed", "ended", "connected"):
            finished[call_id] = record
        else:
            result.notes.append(f"{call_id}: no finished record before the kill")
    assert agent.proc is not None
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait()
    # Its children notice the closed socket and exit; then the ports are free again.
    wait_for(lambda: _ports_free(agent), 20, step_s=0.2)
    agent.log_path.rename(agent.log_path.with_suffix(".killed.log"))
    agent.start()
    for call_id, before in finished.items():
        result.tried += 1
        after = agent.call_record(call_id, settle_s=2.0)
        if after.get("state") == before["state"] and after.get("carrier_final_code") == \
                before.get("carrier_final_code"):
            result.survived += 1
        else:
            result.lost += 1
            result.notes.append(f"{call_id}: {before.get('state')} -> {after.get('state')}")
    return result


def _ports_free(agent: AgentProcess) -> bool:
    for port in sip_targets(agent):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True
