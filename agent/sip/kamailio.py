"""Kamailio's dispatcher in front of the worker pool, run as the supervisor's child process."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from agent.errors import ConfigError
from agent.paths import CONFIG_DIR
from agent.sip.config import SipConfig
from agent.sip.transports import dialer_listeners, uses

log = structlog.get_logger("agent.sip.kamailio")

TEMPLATE = CONFIG_DIR / "kamailio" / "kamailio.cfg"
MODULE_DIRS = ("/usr/lib/x86_64-linux-gnu/kamailio/modules", "/usr/lib/kamailio/modules",
               "/usr/local/lib64/kamailio/modules", "/usr/local/lib/kamailio/modules")


def dispatcher_list(cfg: SipConfig) -> str:
    """The dispatcher set: one line per worker, all in set 1, each taking its share of calls."""
    return "".join(
        f"1 sip:{cfg.listen_host}:{cfg.worker_port(i)} 0 0 "
        f"duid=w{i};maxload={cfg.calls_per_worker}\n"
        for i in range(cfg.workers)
    )


def tls_lines(cfg: SipConfig, runtime_dir: Path) -> str:
    """The TLS module's lines (and its profile file in ``runtime_dir``), or none."""
    if not uses(cfg, "tls"):
        return "enable_tls=no"
    profile = runtime_dir / "tls.cfg"
    profile.write_text(
        "[server:default]\n"
        "method = TLSv1.2+\n"
        "verify_certificate = no\n"
        "require_certificate = no\n"
        f"certificate = {Path(cfg.tls_certificate).resolve()}\n"
        f"private_key = {Path(cfg.tls_private_key).resolve()}\n"
        "\n[client:default]\n"
        "method = TLSv1.2+\n"
        "verify_certificate = no\n"
        "require_certificate = no\n")
    return ("enable_tls=yes\n"
            "loadmodule \"tls.so\"\n"
            f"modparam(\"tls\", \"config\", \"{profile}\")")


def render_config(cfg: SipConfig, *, runtime_dir: Path, mpath: str) -> str:
    """The Kamailio config for ``cfg`` from the template in ``config/kamailio``."""
    listen = "\n".join(f"listen={proto}:{cfg.listen_host}:{port}"
                       for _, proto, port in dialer_listeners(cfg))
    values = {
        "listen": listen,
        "disable_tcp": "no" if uses(cfg, "tcp") or uses(cfg, "tls") else "yes",
        "tls": tls_lines(cfg, runtime_dir),
        "dispatcher_list": str(runtime_dir / "dispatcher.list"),
        "runtime_dir": str(runtime_dir),
        "mpath": mpath,
        "invite_timeout_ms": str(int((cfg.carrier_timeout_s + 5.0) * 1000)),
        "host": cfg.listen_host,
        "allowed": ",".join(str(net) for net in cfg.allowed_networks()),
        # pike counts per 2-s unit; a rate of 0 (off) is a density no source reaches.
        "pike_density": str(max(1, round(2 * cfg.invite_rate_per_source))
                            if cfg.invite_rate_per_source > 0 else 1_000_000),
    }
    # Kamailio's own syntax is full of $ and {}, hence plain {{name}} markers.
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    return text


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM Kamailio if the supervisor dies (even by SIGKILL), so no
    orphan keeps the dialer's SIP port."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def parse_event(line: str) -> dict[str, Any] | None:
    """The JSON object of a Kamailio ``EMA-EVENT {...}`` log line, or None."""
    at = line.find("EMA-EVENT ")
    if at < 0:
        return None
    try:
        event = json.loads(line[at + len("EMA-EVENT "):])
    except ValueError:
        return None
    if not isinstance(event, dict) or "event" not in event:
        return None
    if event.get("call_id") in ("<null>", ""):
        event["call_id"] = None
    return event


class Kamailio:
    """Starts, checks and stops one Kamailio in the foreground with its own runtime dir."""

    def __init__(self, cfg: SipConfig, *,
                 on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.cfg = cfg
        self.proc: asyncio.subprocess.Process | None = None
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="ema-kamailio-"))
        self.on_event = on_event
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        binary = shutil.which(self.cfg.kamailio)
        if binary is None:
            raise ConfigError(
                f"sip.kamailio: {self.cfg.kamailio!r} not found (apt install kamailio)")
        mpath = next((d for d in MODULE_DIRS if Path(d, "dispatcher.so").exists()), None)
        if mpath is None:
            raise ConfigError("sip.kamailio: no Kamailio module directory with dispatcher.so")
        (self.runtime_dir / "dispatcher.list").write_text(dispatcher_list(self.cfg))
        cfg_path = self.runtime_dir / "kamailio.cfg"
        cfg_path.write_text(render_config(self.cfg, runtime_dir=self.runtime_dir, mpath=mpath))
        self.proc = await asyncio.create_subprocess_exec(
            binary, "-DD", "-E", "-f", str(cfg_path), "-P", str(self.runtime_dir / "k.pid"),
            "-Y", str(self.runtime_dir), "-m", "64", "-M", "8",
            # Its start-up summary goes to stdout: read it with the log, so that every
            # line the agent writes stays one JSON object.
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent)
        self._reader = asyncio.create_task(self._read_log())
        await asyncio.sleep(0.5)
        if self.proc.returncode is not None:
            raise ConfigError(f"kamailio exited at start (status {self.proc.returncode}); "
                              f"check {cfg_path}")
        log.info("kamailio_started", pid=self.proc.pid, listen=self.cfg.listen_port,
                 workers=self.cfg.workers)

    async def _read_log(self) -> None:
        """Kamailio's output: its EMA-EVENT lines become agent events, the rest log lines."""
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "backslashreplace").rstrip()
            event = parse_event(line)
            if event is None:
                if line:
                    log.info("kamailio_log", line=line[-500:])
                continue
            fields = {k: v for k, v in event.items() if k != "event"}
            log.warning(str(event["event"]), edge="kamailio", **fields)
            if self.on_event is not None:
                try:
                    self.on_event(event)
                except Exception:
                    log.exception("kamailio_event_failed")

    def running(self) -> bool:
        """Whether the Kamailio process is still up."""
        return self.proc is not None and self.proc.returncode is None

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            # Kamailio's main process forwards SIGTERM to its children.
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=10)
            except TimeoutError:
                os.killpg(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)
