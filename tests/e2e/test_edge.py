"""The edge of the agent: ports already taken, merged INVITEs, a crash-looping worker."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import yaml

from agent.paths import HOME
from agent.sip import faults
from agent.sip.harness import AgentProcess


def test_a_sip_port_in_use_stops_the_agent_with_one_line_naming_it(e2e_root, model_path,
                                                                  workers):
    agent = AgentProcess(workdir=e2e_root / f"busy-port-{workers}", model=model_path,
                         workers=workers)
    agent.config_path.write_text(yaml.safe_dump(agent.config()))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", agent.sip_port))
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "agent", "run", "--config",
                               str(agent.config_path)], capture_output=True, text=True,
                              cwd=HOME, timeout=60)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert errors == [f"early-media-agent: error: sip.listen_port: 127.0.0.1:{agent.sip_port}"
                      "/udp is not free (Address already in use)"], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - t0 < 30


def _invite(call_id: bytes, port: int, seed: int) -> bytes:
    msg = faults._bad_invite(random.Random(seed), call_id=call_id)
    return msg.replace(b"127.0.0.1:9", f"127.0.0.1:{port}".encode())


def test_twenty_invites_with_one_call_id_start_one_call(rewriting_agent):
    """A second INVITE transaction with a Call-ID in progress is a merged request (482)."""
    call_id = f"merged-{random.getrandbits(32):x}@dialer".encode()
    socks = []
    for seed in range(20):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.2)
        s.sendto(_invite(call_id, s.getsockname()[1], seed), ("127.0.0.1",
                                                               rewriting_agent.sip_port))
        socks.append(s)
    finals: list[int] = []
    deadline = time.monotonic() + 20
    pending = list(socks)
    while pending and time.monotonic() < deadline:
        for s in list(pending):
            try:
                data = s.recv(65536)
            except TimeoutError:
                continue
            status = int(data.split(b" ", 2)[1])
            if status >= 200:
                finals.append(status)
                pending.remove(s)
    for s in socks:
        s.close()
    started = [e for e in rewriting_agent.log_events()
               if e.get("event") == "call_started" and e["call_id"] == call_id.decode()]
    assert len(started) == 1
    assert len(finals) == 20 and all(code >= 400 for code in finals[1:]), finals
    if rewriting_agent.workers > 1:
        # Kamailio refuses them at the edge. A lone worker refuses them too, but a burst
        # beyond its spare call slot meets pjsua's own refusal first (see SipConfig).
        assert finals.count(482) >= 19, finals


def _health(agent: AgentProcess) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{agent.api_port}/healthz", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_health_says_503_while_a_worker_crash_loops_and_ok_after(e2e_root, model_path,
                                                                 workers):
    agent = AgentProcess(workdir=e2e_root / f"crashloop-{workers}", model=model_path,
                         workers=workers)
    agent.start()
    try:
        assert _health(agent)[0] == 200
        for _ in range(3):
            pid = faults.child_pids(agent, "worker")[0]
            os.kill(pid, signal.SIGKILL)
            assert faults.wait_for(lambda p=pid: faults.child_pids(agent, "worker")[0] != p
                                   and _health(agent)[1].get("problems") is not None, 20)
        status, body = _health(agent)
        assert status == 503 and any("worker 0: died 3 times" in p for p in body["problems"])
    finally:
        assert agent.stop() == 0
