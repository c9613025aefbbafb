"""The dialer reaches the agent over TCP and TLS as well as UDP (RFC 3261 §18 requires TCP);
the carrier leg stays on UDP. On one worker (pjsua listens) and behind Kamailio (Kamailio
listens and relays to the workers over UDP)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from agent.sip.harness import AgentProcess, free_port_block, place_call, sipp


def test_an_invite_over_tcp_is_relayed_and_decided(rewriting_agent, audio, tmp_path):
    result = place_call(rewriting_agent, workdir=tmp_path, carrier="carrier_early_final.xml",
                        audio=audio["busy"], final_code=480, dialer_args=("-t", "t1"))
    assert result.call_id, "the dialer sent no INVITE"
    assert "SIP/2.0/TCP" in result.dialer[0].header("via")
    assert result.code == 486
    assert result.final.header("x-carrier-final-code") == "480"
    assert result.record["carrier_final_code"] == 480
    assert result.record["inferred"]["sip_code"] == 486


@pytest.fixture(scope="module")
def tls_pair(e2e_root: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key, made for the test."""
    cert, key = e2e_root / "tls-cert.pem", e2e_root / "tls-key.pem"
    if not cert.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", str(key), "-out", str(cert), "-days", "2",
                        "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def tls_agent(e2e_root, model_path, workers, tls_pair):
    cert, key = tls_pair
    agent = AgentProcess(workdir=e2e_root / f"tls-{workers}", model=model_path, rewrite=True,
                         workers=workers)
    agent.extra_sip.update(transports=["udp", "tcp", "tls"],
                           tls_port=free_port_block(1, start=46000),
                           tls_certificate=str(cert), tls_private_key=str(key))
    agent.start()
    yield agent
    assert agent.stop() == 0


def _invite(call_id: str, tag: str, local: tuple[str, int], agent: AgentProcess) -> bytes:
    host, port = local
    sdp = ("v=0\r\no=dialer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=audio 49990 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    tls_port = agent.extra_sip["tls_port"]
    return (f"INVITE sip:5551234@127.0.0.1:{tls_port};transport=tls SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS {host}:{port};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport\r\n"
            f"From: <sip:dialer@{host}>;tag={tag}\r\n"
            f"To: <sip:5551234@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:dialer@{host}:{port};transport=tls>\r\n"
            "Max-Forwards: 70\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(sdp)}\r\n\r\n{sdp}").encode()


def _responses(conn: ssl.SSLSocket, until_s: float) -> list[str]:
    """SIP responses read from ``conn`` until a final one or ``until_s``."""
    buf, out = b"", []
    conn.settimeout(0.5)
    while time.monotonic() < until_s:
        try:
            data = conn.recv(65536)
        except TimeoutError:
            continue
        if not data:
            break
        buf += data
        while b"\r\n\r\n" in buf:
            head, _, rest = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith((b"content-length:", b"l:")):
                    length = int(line.split(b":", 1)[1])
            if len(rest) < length:
                break
            out.append(head.decode(errors="replace"))
            buf = rest[length:]
            code = out[-1].split(" ", 2)[1]
            if code.isdigit() and int(code) >= 200:
                return out
    return out


def test_an_invite_over_tls_is_relayed_and_decided(tls_agent, audio, tmp_path):
    (tmp_path / "early.ul").write_bytes(audio["busy"].read_bytes())
    carrier = subprocess.Popen(
        sipp("carrier_early_final.xml", "-p", str(tls_agent.carrier_port),
             "-mp", str(free_port_block(4, start=45000)), "-d", "3000",
             "-set", "final_code", "480", "-set", "final_cause", "20", "-timeout", "30s"),
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    call_id, tag = f"tls-{uuid.uuid4().hex[:10]}@dialer", uuid.uuid4().hex[:8]
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        raw = socket.create_connection(("127.0.0.1", tls_agent.extra_sip["tls_port"]),
                                       timeout=5)
        with context.wrap_socket(raw) as conn:
            conn.sendall(_invite(call_id, tag, conn.getsockname(), tls_agent))
            got = _responses(conn, time.monotonic() + 20)
            assert got, "no response over TLS"
            final = got[-1]
            to = next(line for line in final.split("\r\n") if line.lower().startswith("to:"))
            via = next(line for line in final.split("\r\n")
                       if line.lower().startswith("via:"))
            conn.sendall((f"ACK sip:5551234@127.0.0.1 SIP/2.0\r\n{via}\r\n"
                          f"From: <sip:dialer@127.0.0.1>;tag={tag}\r\n{to}\r\n"
                          f"Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\n"
                          "Content-Length: 0\r\n\r\n").encode())
    finally:
        carrier.wait(timeout=30)
    codes = [int(r.split(" ", 2)[1]) for r in got]
    assert 183 in codes, codes
    assert codes[-1] == 486, got[-1]
    record = tls_agent.call_record(call_id)
    assert record["carrier_final_code"] == 480
    assert record["inferred"]["sip_code"] == 486
