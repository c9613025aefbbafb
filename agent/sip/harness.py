"""Driving the real agent process with real SIPp on loopback (the demo, tests/e2e, bench/).

:class:`AgentProcess` writes a config with free ports, starts ``python -m agent run``
and waits until its workers and API are up. :func:`place_call` runs one SIPp carrier
scenario and one SIPp dialer scenario against it and returns what the dialer received
(parsed from SIPp's message trace) and what the HTTP API says about the call.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.paths import HOME
from agent.sip.headers import header, header_values, start_line

REPO = HOME
SIPP_DIR = REPO / "sipp"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        try:
            with socket.socket(socket.AF_INET, other) as s:
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue


def free_port_block(n: int, *, start: int = 30000) -> int:
    """The first of ``n`` consecutive UDP ports that are free right now (even-aligned).

    The agent's RTP ranges start at 30000, its workers' SIP ports at 40000 and SIPp's
    media ports at 45000 and 52000, so no two pick the same block before either binds it.
    """
    for base in range(start, start + 15000, 2 * n):
        try:
            socks = []
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no block of {n} free UDP ports")


@dataclass(frozen=True)
class TraceMessage:
    """One SIP message from a SIPp ``-trace_msg`` file."""

    sent: bool
    text: str
    t: float = 0.0  # when SIPp logged it (epoch seconds; 0 if the trace gave no time)

    @property
    def first_line(self) -> str:
        return start_line(self.text)

    @property
    def status(self) -> int | None:
        parts = self.first_line.split()
        if len(parts) >= 2 and parts[0] == "SIP/2.0" and parts[1].isdigit():
            return int(parts[1])
        return None

    def header(self, name: str) -> str | None:
        return header(self.text, name)

    def headers(self, name: str) -> list[str]:
        return header_values(self.text, name)


def parse_trace(text: str) -> list[TraceMessage]:
    """The messages of a SIPp message trace, in order."""
    out = []
    for block in text.split("-----------------------------------------------")[1:]:
        lines = block.split("\n")
        if len(lines) < 3:
            continue
        direction = lines[1]
        body = "\n".join(lines[3:]).strip("\n")
        if body:
            out.append(TraceMessage(sent="sent" in direction, text=body,
                                    t=_trace_time(lines[0])))
    return out


def _trace_time(stamp: str) -> float:
    """SIPp's ``2026-12-05 11:31:08.454699`` (local time) as epoch seconds, 0 if absent."""
    from datetime import datetime

    try:
        return datetime.strptime(stamp.strip()[:26], "%Y-%m-%d %H:%M:%S.%f").timestamp()
    except ValueError:
        return 0.0


def invite_final(messages: list[TraceMessage]) -> TraceMessage | None:
    """The last final response to the INVITE that the dialer received."""
    finals = [msg for msg in messages if not msg.sent and msg.status and msg.status >= 200
              and "INVITE" in (msg.header("cseq") or "")]
    return finals[-1] if finals else None


@dataclass
class AgentProcess:
    """The agent running as its own process, with a config of free ports."""

    workdir: Path
    model: Path | None
    rewrite: bool = True
    workers: int = 1
    extra_sip: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)  # other sections' keys
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port()
        self.api_port = free_port(socket.SOCK_STREAM)
        self.carrier_port = free_port()
        self.rtp_base = free_port_block(self.workers * 40)
        self.worker_base = (free_port_block(self.workers, start=40000) if self.workers > 1
                            else 5100)
        self.config_path = self.workdir / "agent.yaml"
        self.log_path = self.workdir / "agent.log"

    @property
    def capacity(self) -> int:
        """Calls the agent takes at once (agent.sip.config.SipConfig.calls_in_worker)."""
        per = int(self.extra_sip.get("calls_per_worker", 2)) if self.workers > 1 else 1
        return self.workers * per

    def config(self) -> dict[str, Any]:
        sip = {
            "listen_port": self.sip_port,
            "worker_base_port": self.worker_base,
            "rtp_port_base": self.rtp_base,
            "carrier": f"127.0.0.1:{self.carrier_port}",
            "workers": self.workers,
            "rewrite_final_response": self.rewrite,
            "media_dir": str(Path("/dev/shm") / f"ema-test-{os.getpid()}-{self.sip_port}"),
            "decision_timeout_ms": 1000,
            "carrier_timeout_s": 8.0,
            **self.extra_sip,
        }
        cfg: dict[str, Any] = {
            "sip": sip,
            "api": {"host": "127.0.0.1", "port": self.api_port},
            "store": {"calls": str(self.workdir / "calls.sqlite")},
            "fingerprint": {"enabled": False},
            "logging": {"format": "json", "level": "info"},
        }
        if self.model is not None:
            cfg["classifier"] = {"model": str(self.model)}
        for section, keys in self.extra.items():
            cfg[section] = {**cfg.get(section, {}), **keys}
        return cfg

    def start(self, *, timeout_s: float = 120.0) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config()))
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "run", "--config", str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited: {self.log_path.read_text()[-2000:]}")
            if b'"agent_ready"' in self.log_path.read_bytes():
                return
            time.sleep(0.1)
        raise RuntimeError(f"agent not ready: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> int:
        """SIGTERM the agent, wait for it, remove its tmpfs media directory; its exit status."""
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        shutil.rmtree(self.config()["sip"]["media_dir"], ignore_errors=True)
        return rc

    def api(self, path: str, *, timeout_s: float = 10.0) -> Any:
        url = f"http://127.0.0.1:{self.api_port}{path}"
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return json.loads(resp.read())

    def health(self) -> tuple[int, dict[str, Any]]:
        """``/healthz``: the HTTP status and the JSON body (503 carries ``problems``)."""
        try:
            return 200, self.api("/healthz")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def call_record(self, call_id: str, *, settle_s: float = 5.0) -> dict[str, Any]:
        """The API's view of a call once it has left the early states."""
        deadline = time.monotonic() + settle_s
        quoted = urllib.parse.quote(call_id, safe="")
        record: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                record = self.api(f"/v1/calls/{quoted}")
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    raise
            if record.get("state") in ("failed", "ended", "connected"):
                return record
            time.sleep(0.1)
        return record

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except ValueError:
                    pass
        return events


@dataclass
class CallResult:
    """What one SIPp call through the agent produced."""

    call_id: str
    final: TraceMessage | None
    dialer: list[TraceMessage]
    record: dict[str, Any]
    dialer_rc: int
    carrier_rc: int | None

    @property
    def code(self) -> int | None:
        return self.final.status if self.final else None


def sipp(scenario: str, *args: str, calls: int = 1) -> list[str]:
    """The SIPp command line for ``calls`` calls of ``scenario`` on loopback, all at once."""
    return ["sipp", "-sf", str(SIPP_DIR / scenario), "-i", "127.0.0.1", "-nostdin",
            "-m", str(calls), "-l", str(calls), "-r", str(calls), *args]


def place_calls(agent: AgentProcess, *, workdir: Path, carrier: str | None,
                audio: Path | None, calls: int = 1, early_ms: int = 3000,
                final_code: int = 480, final_cause: int = 20,
                dialer: str = "dialer_call.xml", dialer_pause_ms: int = 1500,
                audio_name: str = "early.ul", dialer_args: tuple[str, ...] = (),
                timeout_s: float = 40.0, carrier_calls: int | None = None,
                service: str = "5551234") -> list[CallResult]:
    """``calls`` simultaneous calls: SIPp carrier (``carrier`` scenario, or none) and SIPp
    dialer through the agent; one result per call, in the order the dialer placed them.
    ``carrier_calls``: the calls the carrier sees, when not one per dialer call."""
    workdir.mkdir(parents=True, exist_ok=True)
    carrier_proc = None
    if carrier is not None:
        if audio is not None:
            (workdir / audio_name).write_bytes(audio.read_bytes())
        carrier_proc = subprocess.Popen(
            sipp(carrier, "-p", str(agent.carrier_port),
                 "-mp", str(free_port_block(4, start=45000)),
                 "-d", str(early_ms), "-set", "final_code", str(final_code),
                 "-set", "final_cause", str(final_cause), "-timeout", f"{int(timeout_s)}s",
                 "-trace_msg", "-message_file", "carrier.msg", "-trace_err",
                 calls=carrier_calls or calls),
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # let SIPp bind its port
    trace = workdir / "dialer.msg"
    for _ in range(3):
        # Its ports are picked free, then bound by SIPp: another process can take one in
        # between, and SIPp then exits before sending anything (no trace). Nothing reached
        # the agent, so trying again with other ports is safe.
        dialer_rc = subprocess.run(
            sipp(dialer, "-p", str(free_port()), "-mp", str(free_port_block(4, start=52000)),
                 "-d", str(dialer_pause_ms), "-s", service, "-timeout", f"{int(timeout_s)}s",
                 "-trace_msg", "-message_file", str(trace), "-trace_err", *dialer_args,
                 f"127.0.0.1:{agent.sip_port}", calls=calls),
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=timeout_s + 10).returncode
        if trace.exists() and trace.stat().st_size > 0:
            break
        trace.unlink(missing_ok=True)
    carrier_rc = None
    if carrier_proc is not None:
        try:
            carrier_rc = carrier_proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            carrier_proc.kill()
            carrier_rc = carrier_proc.wait()
    messages = parse_trace(trace.read_text(errors="replace")) if trace.exists() else []
    by_call: dict[str, list[TraceMessage]] = {}
    for msg in messages:
        by_call.setdefault(msg.header("call-id") or "", []).append(msg)
    results = []
    for call_id, msgs in by_call.items():
        record = agent.call_record(call_id) if call_id else {}
        results.append(CallResult(call_id=call_id, final=invite_final(msgs), dialer=msgs,
                                  record=record, dialer_rc=dialer_rc, carrier_rc=carrier_rc))
    return results


def place_call(agent: AgentProcess, **kw: Any) -> CallResult:
    """One call through the agent (see :func:`place_calls`)."""
    results = place_calls(agent, calls=1, **kw)
    return results[0] if results else CallResult("", None, [], {}, -1, None)


def classify_final(status: int | None, carrier_code: str | None) -> str:
    """The bucket of one soak call (see :func:`steady_calls`) from the dialer's final
    response: ``rewritten`` (486 with the carrier's 480 in X-Carrier-Final-Code),
    ``rewritten to N`` (another inferred code), ``agreed`` (the 480 with
    ``X-Carrier-Final-Code: 480``: decided, same code), ``relayed undecided`` (the 480
    itself), ``made up (N)`` (a code the carrier never sent) or ``lost`` (no final
    response)."""
    if status is None:
        return "lost"
    if status == 480 and carrier_code == "480":
        return "agreed"
    if status == 486 and carrier_code == "480":
        return "rewritten"
    if carrier_code == "480":
        # Relayed and decided, but not as busy: an analysis result, not a lost call.
        return f"rewritten to {status}"
    if status == 480 and carrier_code is None:
        return "relayed undecided"
    return f"made up ({status})"


def steady_calls(agent: AgentProcess, *, workdir: Path, audio: Path, calls: int, minutes: float,
                early_s: float) -> Path:
    """Keep ``calls`` calls up for ``minutes`` (a SIPp carrier plays ``audio`` for
    ``early_s``, then fails with 480); returns the dialer's message trace."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "early.ul").write_bytes(audio.read_bytes())
    # Each call lasts early_s plus set-up; ask for a little more than that rate allows, so
    # SIPp's concurrency limit (-l) is what holds the load.
    rate = calls / (early_s + 0.3) * 1.1
    total = int(rate * minutes * 60)
    sipp_dir = SIPP_DIR
    carrier = subprocess.Popen(
        ["sipp", "-sf", str(sipp_dir / "carrier_early_final.xml"), "-i", "127.0.0.1",
         "-nostdin", "-p", str(agent.carrier_port), "-mp", str(free_port_block(4, start=45000)),
         "-d", str(int(early_s * 1000)), "-set", "final_code", "480",
         "-set", "final_cause", "20", "-trace_err"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    trace = workdir / "dialer.msg"
    cmd = ["sipp", "-sf", str(sipp_dir / "dialer_call.xml"),
           "-i", "127.0.0.1", "-nostdin", "-m", str(total), "-l", str(calls),
           "-r", f"{rate:.3f}", "-p", str(free_port()),
           "-mp", str(free_port_block(4, start=52000)), "-s", "5551234",
           "-timeout", f"{int(minutes * 60 + 120)}s", "-trace_msg", "-message_file", str(trace),
           "-trace_err", f"127.0.0.1:{agent.sip_port}"]
    try:
        subprocess.run(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=minutes * 60 + 180)
    finally:
        carrier.terminate()
        carrier.wait(timeout=10)
    return trace
