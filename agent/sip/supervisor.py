"""The live agent's supervisor: worker pool, analysis processes, call store and HTTP API.

One asyncio process owns everything that is not SIP media: it starts ``sip.workers``
pjsua2 worker processes (each holds 2 bridged calls) and ``sip.analysis_processes``
analysis processes, relays between them over socket pairs with the small messages of
:mod:`agent.sip.messages`, writes every call event to the call store, wakes the API's
long polls and hands decisions and final records to the webhook sink
(:mod:`agent.sip.serve` runs it beside the HTTP API). A child that dies is restarted; the
calls it held are closed in the store. With more than one worker, Kamailio's dispatcher
runs in front so the dialer sees one SIP address.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from agent.errors import ConfigError
from agent.labels import Decision, Inferred, SecondResult
from agent.reasons import reason_phrase
from agent.sip import failover
from agent.sip import messages as m
from agent.sip.dialer_auth import NONCE_KEY_ENV
from agent.sip.fas import FasCheck
from agent.sip.routes import carriers
from agent.sip.transports import check_sip_ports

log = structlog.get_logger("agent.sip.supervisor")

#: Outcome of CallEnded.state → the metrics' outcome label and the store's state.
_OUTCOMES = {"connected": ("answered", "ended"), "failed": ("failed", "failed"),
             "cancelled": ("cancelled", "ended")}
#: A child that died this many times within CRASH_WINDOW_S is crash-looping (/healthz 503).
CRASH_DEATHS = 3
CRASH_WINDOW_S = 60.0
#: Control lines longer than this end the child's connection (and restart it); the
#: worker caps what it reports well below.
MAX_LINE = 1 << 20


def inferred_from_json(data: dict[str, Any]) -> Inferred:
    """Rebuild an :class:`Inferred` from its ``as_json`` form."""
    return Inferred(sip_code=int(data["sip_code"]), reason=str(data["reason"]),
                    q850_cause=data.get("q850_cause"), source=str(data["source"]),
                    evidence=list(data.get("evidence") or []),
                    basis=str(data.get("basis") or ""))


def analysis_slot(call_id: str, n: int) -> int:
    """The analysis process a call sticks to (stable across restarts)."""
    return zlib.crc32(call_id.encode()) % n


@dataclass
class Child:
    """A worker or analysis process and its end of the socket pair."""

    kind: str  # worker | analyst
    index: int
    argv: list[str]
    proc: asyncio.subprocess.Process | None = None
    writer: asyncio.StreamWriter | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    restarts: int = 0
    #: Monotonic times of recent deaths: several within CRASH_WINDOW_S is a crash loop.
    deaths: list[float] = field(default_factory=list)
    start_error: str | None = None

    def send(self, msg: Any) -> bool:
        if self.writer is None or self.writer.is_closing():
            return False
        self.writer.write(m.encode(msg))
        return True


@dataclass
class LiveCall:
    """What the supervisor tracks of a call in progress."""

    call_id: str
    worker: int
    analyst: int | None = None
    media_t: float | None = None
    held: bool = False
    carrier_code: int | None = None
    inferred: dict[str, Any] | None = None
    decision_lag_s: float | None = None
    inferred_audio_s: float = 0.0  # early media heard when the first code was inferred
    answered: bool = False
    finalizing: bool = False  # a Finalize is out; keep the call until its answer
    ended: bool = False
    carrier_reason: str | None = None
    fas: FasCheck | None = None  # the false-answer check after a 200 OK (agent.sip.fas)
    carrier: str | None = None  # the carrier's name (agent.sip.routes)
    route: str | None = None  # the route's name (agent.sip.routes)
    # The INVITE heads and peers of both legs (agent.sip.failover), kept in case the
    # worker dies with the call.
    heads: dict[str, tuple[str, str]] = field(default_factory=dict)


class Supervisor:
    """Runs the agent until stopped. ``config`` is an :class:`agent.settings.AgentConfig`."""

    def __init__(self, config: Any, config_path: str, *, store: Any, metrics: Any,
                 notifier: Any, sink: Any = None) -> None:
        self.cfg = config
        self.sip = config.sip
        # One nonce key for every worker (inherited through the environment), so a
        # dialer's answer to a challenge is checked by whichever worker gets it.
        os.environ.setdefault(NONCE_KEY_ENV, os.urandom(16).hex())
        # The carrier a refused call is counted against: the only one, if there is one.
        named = list(carriers(config.sip))
        self.sole_carrier: str | None = named[0] if len(named) == 1 else None
        self.config_path = config_path
        self.store = store
        self.metrics = metrics
        self.notifier = notifier
        self.sink = sink  # pushes decisions and final records (agent.webhooks), or None
        self.calls: dict[str, LiveCall] = {}
        self.workers = [self._child("worker", i) for i in range(self.sip.workers)]
        self.analysts = [self._child("analyst", i) for i in range(self.sip.analysis_processes)]
        self.stopping = False
        self.kamailio: Any = None
        self.tasks: list[asyncio.Task[Any]] = []
        self.sender = failover.Sender()

    def _child(self, kind: str, index: int) -> Child:
        module = "agent.sip.worker" if kind == "worker" else "agent.media.analyst"
        argv = [sys.executable, "-m", module, "--config", self.config_path]
        if kind == "worker":
            argv += ["--index", str(index)]
            if self.cfg.logging.format == "json":
                argv.append("--json-logs")
            argv += ["--log-level", self.cfg.logging.level]
            if self.cfg.fas.seconds > 0:
                argv += ["--fas-seconds", str(self.cfg.fas.seconds)]
        return Child(kind=kind, index=index, argv=argv)

    # --- children -------------------------------------------------------------------

    async def _spawn(self, child: Child) -> None:
        parent, theirs = socket.socketpair()
        argv = [*child.argv, "--fd", str(theirs.fileno())]
        child.ready = asyncio.Event()
        child.proc = await asyncio.create_subprocess_exec(
            *argv, pass_fds=[theirs.fileno()], stdin=asyncio.subprocess.DEVNULL)
        theirs.close()
        reader, writer = await asyncio.open_connection(sock=parent, limit=MAX_LINE)
        child.writer = writer
        if child.kind == "analyst":
            child.ready.set()
        self.tasks.append(asyncio.create_task(self._read(child, reader)))
        log.info("child_started", kind=child.kind, index=child.index, pid=child.proc.pid)

    async def _read(self, child: Child, reader: asyncio.StreamReader) -> None:
        proc = child.proc
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    log.error("child_message_too_long", kind=child.kind, index=child.index)
                    if proc is not None and proc.returncode is None:
                        proc.kill()
                    break
                if not line:
                    break
                try:
                    msg = m.decode_line(line)
                    self.on_message(child, msg)
                except Exception:
                    log.exception("message_failed", kind=child.kind, index=child.index)
        finally:
            # Whatever happened above, the child is gone and is replaced.
            if proc is not None:
                await proc.wait()
            if child.writer is not None:
                child.writer.close()
                child.writer = None
            await self._child_died(child)

    async def _child_died(self, child: Child) -> None:
        rc = child.proc.returncode if child.proc else None
        if self.stopping:
            return
        now = time.monotonic()
        child.deaths = [t for t in child.deaths if now - t < CRASH_WINDOW_S] + [now]
        child.ready.clear()
        log.error("child_died", kind=child.kind, index=child.index, returncode=rc,
                  deaths_last_minute=len(child.deaths))
        try:
            if child.kind == "worker":
                self._worker_died(child)
            else:
                self._analyst_died(child)
        except Exception:
            log.exception("child_cleanup_failed", kind=child.kind, index=child.index)
        finally:
            child.restarts += 1
            self.metrics.child_restarted(child.kind)
            await asyncio.sleep(self.sip.restart_backoff_s * min(len(child.deaths), 10))
            if not self.stopping:
                await self._spawn(child)

    def _worker_died(self, child: Child) -> None:
        """Answer the dialers of the dead worker's calls, CANCEL their carriers, close them."""
        for call in [c for c in self.calls.values() if c.worker == child.index]:
            try:
                self._fail_over(call)
            except Exception:
                log.exception("failover_failed", call_id=call.call_id)
            self._close_call(call.call_id, state="failed", outcome="error")
        if child.proc is not None:
            # The dead worker cannot unlink its taps any more; free the tmpfs.
            for tap in Path(self.sip.media_dir).glob(f"w{child.index}-{child.proc.pid}-*.wav"):
                tap.unlink(missing_ok=True)

    def _analyst_died(self, child: Child) -> None:
        n = len(self.analysts)
        for call in [c for c in self.calls.values() if analysis_slot(c.call_id, n) == child.index]:
            call.analyst = None
            self._on_FinalInference(child, m.FinalInference(call.call_id, None, 0.0))

    def _fail_over(self, call: LiveCall) -> None:
        """What the dead worker can no longer send for ``call`` (agent.sip.failover)."""
        dialer = call.heads.get("dialer")
        carrier = call.heads.get("carrier")
        if call.answered:
            # The dialer has its 200 OK; without the dialog's state there is no BYE to send.
            log.warning("connected_call_lost", call_id=call.call_id, worker=call.worker)
            return
        if call.carrier_code is not None:
            code, phrase = call.carrier_code, reason_phrase(call.carrier_code, "Carrier Failure")
            extra = {"Reason": call.carrier_reason} if call.carrier_reason else {}
        else:
            code = self.sip.failover_code
            phrase = reason_phrase(code, "Agent Failure")
            extra = {"Reason": 'Q.850;cause=41;text="early-media-agent worker failed"'}
        if dialer is not None and (to := failover.address(dialer[1])) is not None:
            data = failover.final_response(dialer[0], code, phrase, headers=extra)
            self.tasks.append(asyncio.create_task(self.sender.send(data, to)))
        if call.carrier_code is None and carrier is not None \
                and (to := failover.address(carrier[1])) is not None:
            self.tasks.append(asyncio.create_task(
                self.sender.send(failover.cancel_request(carrier[0]), to)))
        self.store.add_evidence(call.call_id, {"detector": "sip", "agent_failure": "worker died",
                                               "dialer_code": code,
                                               "carrier_cancelled": call.carrier_code is None})
        log.warning("call_failed_over", call_id=call.call_id, worker=call.worker,
                    dialer_code=code, carrier_cancelled=call.carrier_code is None)

    def _on_edge_event(self, event: dict[str, Any]) -> None:
        """Kamailio refused an INVITE at the edge: record it as a lone worker would."""
        call_id = event.get("call_id")
        code = {"sip_forbidden": 403, "sip_rate_limited": 503,
                "sip_all_workers_busy": 503}.get(str(event.get("event")))
        if not call_id or code is None:
            return
        if self.store.create(call_id, carrier=self.sole_carrier):
            self.store.add_evidence(call_id, {"detector": "sip", "rejected": code,
                                              "reason": str(event["event"]),
                                              "source": event.get("source")})
            self.store.set_state(call_id, "failed")
            self._publish("final", call_id)

    def health(self) -> list[str]:
        """What is wrong right now ([] when healthy): children down or crash-looping."""
        problems = []
        now = time.monotonic()
        for child in [*self.workers, *self.analysts]:
            name = f"{child.kind} {child.index}"
            recent = [t for t in child.deaths if now - t < CRASH_WINDOW_S]
            if child.start_error:
                problems.append(f"{name}: {child.start_error}")
            elif len(recent) >= CRASH_DEATHS:
                problems.append(f"{name}: died {len(recent)} times in the last minute")
            elif not child.ready.is_set():
                problems.append(f"{name}: not running")
        if self.kamailio is not None and not self.kamailio.running():
            problems.append("kamailio: not running")
        return problems

    # --- messages -------------------------------------------------------------------

    def on_message(self, child: Child, msg: Any) -> None:
        handler = getattr(self, f"_on_{type(msg).__name__}", None)
        if handler is None:
            log.warning("unexpected_message", kind=child.kind, type=type(msg).__name__)
            return
        handler(child, msg)

    def _on_WorkerReady(self, child: Child, msg: m.WorkerReady) -> None:  # noqa: N802
        child.start_error = None
        child.ready.set()

    def _on_WorkerFailed(self, child: Child, msg: m.WorkerFailed) -> None:  # noqa: N802
        child.start_error = msg.error
        log.error("worker_start_failed", worker=child.index, error=msg.error)

    def _on_AnalystStatus(self, child: Child, msg: m.AnalystStatus) -> None:  # noqa: N802
        child.start_error = None if msg.available else f"analysis unavailable: {msg.error}"

    def _on_LegHead(self, child: Child, msg: m.LegHead) -> None:  # noqa: N802
        call = self.calls.get(msg.call_id)
        if call is not None and msg.leg in ("dialer", "carrier"):
            call.heads[msg.leg] = (msg.head, msg.peer)

    def _on_CallStarted(self, child: Child, msg: m.CallStarted) -> None:  # noqa: N802
        self.calls[msg.call_id] = LiveCall(call_id=msg.call_id, worker=child.index,
                                           carrier=msg.carrier, route=msg.route)
        self.store.create(msg.call_id, correlation_id=msg.correlation_id,
                          carrier=msg.carrier, route=msg.route,
                          started_at=datetime.fromtimestamp(msg.t, UTC))
        self.metrics.call_started()
        self._notify(msg.call_id)
        log.info("call_started", call_id=msg.call_id, correlation_id=msg.correlation_id,
                 worker=child.index)

    def _on_CallRejected(self, child: Child, msg: m.CallRejected) -> None:  # noqa: N802
        if msg.reason == "Agent Full" and self.sip.workers > 1:
            # Kamailio moves the INVITE on to another worker, or answers 503 itself and
            # reports it (_on_edge_event): the call is not over here.
            log.info("worker_full", call_id=msg.call_id, worker=child.index)
            return
        if self.store.create(msg.call_id, carrier=self.sole_carrier):
            self.store.add_evidence(msg.call_id, {"detector": "sip", "rejected": msg.code,
                                                  "reason": msg.reason, "source": msg.source})
            self.store.set_state(msg.call_id, "failed")
            self._publish("final", msg.call_id)
        log.info("call_rejected", call_id=msg.call_id, code=msg.code, source=msg.source)

    def _on_CarrierProgress(self, child: Child, msg: m.CarrierProgress) -> None:  # noqa: N802
        call = self.calls.get(msg.call_id)
        if call is None:
            return
        if msg.code == 200:
            # Answered: a normal call from now on; classification stops and no failure
            # is inferred for it (a code inferred from the early media is dropped).
            call.answered = True
            dropped = self.store.set_answered(msg.call_id, 200)
            item: dict[str, Any] = {"detector": "carrier", "answered": 200}
            if dropped is not None:
                item["inferred_before_answer"] = dropped.sip_code
            self.store.add_evidence(msg.call_id, item)
            if self.cfg.fas.seconds > 0 and call.analyst is not None and call.media_t:
                # The worker taps fas.seconds more; analysis goes on until the call ends.
                call.fas = FasCheck(answer_s=max(0.0, msg.t - call.media_t))
                self.store.set_fas(msg.call_id, call.fas.as_json())
            else:
                self._release(call)
            self._notify(msg.call_id)
            return
        self.store.add_evidence(msg.call_id, {"detector": "carrier", "provisional": msg.code})

    def _on_CarrierFailover(self, child: Child, msg: m.CarrierFailover) -> None:  # noqa: N802
        self.store.add_evidence(msg.call_id, {"detector": "carrier", "failover": msg.code,
                                              "next_address": msg.address})

    def _on_EarlyMedia(self, child: Child, msg: m.EarlyMedia) -> None:  # noqa: N802
        call = self.calls.get(msg.call_id)
        if call is None:
            return
        call.media_t = msg.t
        slot = analysis_slot(msg.call_id, len(self.analysts))
        if self.analysts[slot].send(m.Track(call_id=msg.call_id, path=msg.path, t=msg.t,
                                            tone_countries=msg.tone_countries)):
            call.analyst = slot
        self.store.add_evidence(msg.call_id, {"detector": "carrier", "early_media": msg.codec})
        log.info("early_media", call_id=msg.call_id, codec=msg.codec, analyst=call.analyst)

    def _on_CarrierFinal(self, child: Child, msg: m.CarrierFinal) -> None:  # noqa: N802
        call = self.calls.get(msg.call_id)
        if call is None:
            if msg.wait:
                child.send(m.Verdict(call_id=msg.call_id, code=None))
            return
        call.carrier_code = msg.code
        call.carrier_reason = msg.reason
        call.held = msg.wait
        self.store.set_carrier_final(msg.call_id, msg.code)
        self.metrics.carrier_final_code(msg.code, carrier=call.carrier)
        log.info("carrier_final", call_id=msg.call_id, code=msg.code, held=msg.wait)
        self._release(call, code=msg.code)

    def _on_CallEnded(self, child: Child, msg: m.CallEnded) -> None:  # noqa: N802
        outcome, state = _OUTCOMES.get(msg.state, ("error", "failed"))
        self.store.add_evidence(msg.call_id, {"detector": "sip", "dialer_code": msg.dialer_code,
                                              "carrier_code": msg.carrier_code,
                                              "rewritten": msg.rewritten})
        self._close_call(msg.call_id, state=state, outcome=outcome)
        log.info("call_ended", call_id=msg.call_id, state=msg.state,
                 dialer_code=msg.dialer_code, carrier_code=msg.carrier_code,
                 rewritten=msg.rewritten)

    def _on_AnalysisEvent(self, child: Child, msg: m.AnalysisEvent) -> None:  # noqa: N802
        if msg.call_id not in self.calls:
            return
        if msg.kind == "second":
            second = SecondResult(t=int(msg.data["t"]), label=str(msg.data["label"]),
                                  p=dict(msg.data["p"]))
            self.store.add_second(msg.call_id, second)
            self.metrics.second_classified(second.label)
            call = self.calls[msg.call_id]
            if second.t == 0 and call.media_t is not None:
                log.info("first_second_classified", call_id=msg.call_id, label=second.label,
                         since_media_s=round(time.time() - call.media_t, 4), lag_s=msg.lag_s)
        elif msg.kind == "decision":
            decision = Decision(label=str(msg.data["label"]), at_s=float(msg.data["at_s"]))
            self.store.add_decision(msg.call_id, decision)
            log.info("class_decided", call_id=msg.call_id, label=decision.label,
                     at_s=decision.at_s)
        elif msg.kind == "inferred":
            self._decided(msg.call_id, msg.data, lag_s=msg.lag_s, audio_s=msg.audio_s)
        else:
            self.store.add_evidence(msg.call_id, msg.data)
        live = self.calls[msg.call_id]
        fas = live.fas
        if fas is not None and fas.on_event(msg.kind, msg.data):
            self.store.set_fas(msg.call_id, fas.as_json())
            if len(fas.evidence) == 1:
                self.metrics.fas_suspected(carrier=live.carrier or "")
                log.warning("false_answer_suspected", call_id=msg.call_id,
                            evidence=fas.evidence[0])
        self._notify(msg.call_id)

    def _on_FinalInference(self, child: Child, msg: m.FinalInference) -> None:  # noqa: N802
        call = self.calls.get(msg.call_id)
        if msg.inferred is not None and call is not None and not call.answered:
            self._decided(msg.call_id, msg.inferred, lag_s=None, audio_s=msg.audio_s)
        if call is None:
            return
        call.finalizing = False
        if call.held:
            self._answer_held(call)
        if call.ended:
            self._forget(call)

    # --- decisions ------------------------------------------------------------------

    def _decided(self, call_id: str, data: dict[str, Any], *, lag_s: float | None,
                 audio_s: float) -> None:
        call = self.calls[call_id]
        inferred = inferred_from_json(data)
        if call.answered or not self.store.set_inferred(call_id, inferred):
            return  # answered: no failure to infer
        if call.inferred is None:
            call.decision_lag_s = lag_s
            call.inferred_audio_s = audio_s
        call.inferred = data
        log.info("code_inferred", call_id=call_id, sip_code=inferred.sip_code,
                 source=inferred.source, audio_s=audio_s, lag_s=lag_s)
        self._notify(call_id)
        self._publish("decision", call_id)

    def _release(self, call: LiveCall, *, code: int | None = None) -> None:
        """The carrier gave up (or analysis is gone): finalize analysis or answer at once."""
        if call.analyst is not None and self.analysts[call.analyst].send(
                m.Finalize(call_id=call.call_id, code=code)):
            call.analyst = None
            call.finalizing = True
            return
        call.analyst = None
        if call.held:
            self._answer_held(call)

    def _answer_held(self, call: LiveCall) -> None:
        """Tell the worker what to send the dialer for a held carrier failure."""
        call.held = False
        verdict = m.Verdict(call_id=call.call_id, code=None)
        if call.inferred is not None:  # held: the call's route rewrites
            inf = inferred_from_json(call.inferred)
            verdict = m.Verdict(call_id=call.call_id, code=inf.sip_code, reason=inf.reason,
                                q850_cause=inf.q850_cause)
        self.workers[call.worker].send(verdict)

    def _close_call(self, call_id: str, *, state: str, outcome: str) -> None:
        call = self.calls.get(call_id)
        if call is None or call.ended:
            return
        call.ended = True
        if call.analyst is not None:
            self._release(call)
        try:
            self.store.set_state(call_id, state)
        except KeyError:
            pass
        if not call.finalizing:
            self._forget(call)
        self.metrics.call_ended(carrier=call.carrier, route=call.route, outcome=outcome)
        self._notify(call_id)

    def _forget(self, call: LiveCall) -> None:
        """The call is over here: count its inferred code, unless it was answered.

        Counted at the end, not when first inferred, so an answered call (whose early
        media had a verdict) never enters ``ema_inferred_total``.
        """
        self.calls.pop(call.call_id, None)
        self._publish("final", call.call_id)  # its state is final, its inference done
        if call.inferred is None or call.answered:
            return
        inferred = inferred_from_json(call.inferred)
        self.metrics.code_judged(carrier=call.carrier, sent=call.carrier_code,
                                 inferred=inferred.sip_code)
        try:
            self.metrics.code_inferred(sip_code=inferred.sip_code, source=inferred.source,
                                       lag_s=call.inferred_audio_s, carrier=call.carrier)
        except ValueError:
            pass  # an unknown source must not break the call

    def _notify(self, call_id: str) -> None:
        if self.notifier is not None:
            self.notifier.notify(call_id)

    def _publish(self, event: str, call_id: str) -> None:
        if self.sink is not None:
            self.sink.publish(event, call_id)

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Check the SIP ports, start every child and Kamailio; raise ConfigError naming
        the port when one is taken."""
        check_sip_ports(self.sip)
        Path(self.sip.media_dir).mkdir(parents=True, exist_ok=True)
        for child in [*self.analysts, *self.workers]:
            await self._spawn(child)
        # Workers start in parallel; on a loaded 2-core box each needs ~0.5 s of CPU.
        deadline = time.monotonic() + 30 + 2 * len(self.workers)
        while not all(w.ready.is_set() for w in self.workers):
            failed = [w for w in self.workers if w.start_error]
            if failed:
                raise ConfigError(f"sip: worker {failed[0].index} could not start: "
                                  f"{failed[0].start_error}")
            if time.monotonic() > deadline:
                late = [w.index for w in self.workers if not w.ready.is_set()]
                raise ConfigError(f"sip: workers {late} not ready after "
                                  f"{30 + 2 * len(self.workers)} s")
            await asyncio.sleep(0.05)
        if self.sip.workers > 1:
            from agent.sip.kamailio import Kamailio

            self.kamailio = Kamailio(self.sip, on_event=self._on_edge_event)
            await self.kamailio.start()
        log.info("agent_ready", workers=len(self.workers), analysts=len(self.analysts),
                 sip=f"{self.sip.listen_host}:{self.sip.listen_port}")

    async def stop(self) -> None:
        self.stopping = True
        if self.kamailio is not None:
            await self.kamailio.stop()
        for child in [*self.workers, *self.analysts]:
            child.send(m.Shutdown())
        for child in [*self.workers, *self.analysts]:
            if child.proc is None:
                continue
            try:
                await asyncio.wait_for(child.proc.wait(), timeout=10)
            except TimeoutError:
                child.proc.kill()
                await child.proc.wait()
        for task in self.tasks:
            task.cancel()
        self.sender.close()
