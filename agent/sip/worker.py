"""One pjsua2 B2BUA worker process: dialer leg in, carrier leg out, early media tapped.

The process does SIP and media only. Classification runs elsewhere because a busy Python
thread here starves pjmedia's clock (see the design notes); the carrier leg's audio goes
to a WAV file on tmpfs, appended frame by frame (:mod:`agent.sip.tap`), and the analysis
processes read it. The worker talks to the supervisor over one socket with
:mod:`agent.sip.messages`. How pjsua2 objects live and die here is in :mod:`agent.sip.legs`.

Run as ``python -m agent.sip.worker --config FILE --index I --fd N``.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pjsua2 as pj
import structlog

from agent.reasons import reason_phrase
from agent.sip import messages as m
from agent.sip.admission import Admission, valid_call_id
from agent.sip.carrier_leg import fail_over, place_carrier
from agent.sip.config import SipConfig
from agent.sip.dialer_auth import NONCE_KEY_ENV, DigestCheck
from agent.sip.failover import head_of
from agent.sip.headers import clean, has_sdp, header, header_values
from agent.sip.legs import (
    Agent,
    Endpoint,
    EventMessages,
    Leg,
    account_config,
    active_media,
    bridge,
    hangup,
    start_endpoint,
)
from agent.sip.pair import Pair
from agent.sip.passthrough import challenges, pick_headers
from agent.sip.reason import verdict_headers
from agent.sip.routes import route_call
from agent.sip.states import CallState, Event, advance, is_open
from agent.sip.tap import FrameTap

log = structlog.get_logger("agent.sip.worker")



#: How long one pjsip event poll may block. SIP packets wake it at once; supervisor
#: messages and timers wait up to this. 10 ms cost 1.14% of a core per idle worker,
#: 50 ms 0.44% (the rest is pjmedia's clock), which matters with 50 workers.
POLL_MS = 50
#: Automatic garbage collection is off (see agent.sip.legs); collect this often instead.
GC_EVERY_S = 10.0
#: Exit status of a worker that could not start (its port taken, say).
EXIT_START_FAILED = 3

# What CallEnded reports for the state a call ended in.
_OUTCOME = {CallState.FINAL: "failed", CallState.CANCELLED: "cancelled",
            CallState.ENDED: "connected"}


class Worker:
    """The B2BUA: owns the pjsua2 endpoint, the calls and the supervisor socket.

    Call events the supervisor also sees are logged here at debug level only, so the
    agent's log has one line per call event (the supervisor's).
    """

    def __init__(self, cfg: SipConfig, index: int, sock: socket.socket, *,
                 fas_s: float = 0.0, log_level: str = "info") -> None:
        self.cfg = cfg
        self.fas_s = fas_s  # agent.sip.fas: seconds of carrier audio tapped after 200 OK
        self.log_level = log_level  # the agent's logging.level; pjsip's verbosity follows
        self.index = index
        self.sock = sock
        self.decoder = m.Decoder()
        self.pairs: dict[str, Pair] = {}
        #: Every leg pjsua holds, by call slot: the only strong references to them.
        self.legs: dict[int, Leg] = {}
        self.graveyard: list[Leg] = []
        # Answers that must wait until pjsua has returned from the callback that decided
        # them (see on_incoming); run after each libHandleEvents.
        self.deferred: list[tuple[Any, tuple[Any, ...]]] = []
        self.stopping = False
        self.seq = 0
        self.ep = Endpoint(self)
        self.acc: Agent | None = None
        self.admission = Admission(cfg)
        key = os.environ.get(NONCE_KEY_ENV, "")
        self.digest = (DigestCheck(cfg.dialer_auth, bytes.fromhex(key) if key else None)
                       if cfg.dialer_auth.username else None)
        self.media_dir = Path(cfg.media_dir)
        self.media_dir.mkdir(parents=True, exist_ok=True)
        self.unlink_later: list[tuple[float, str]] = []

    # --- plumbing -------------------------------------------------------------------

    def guard(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        """Run a pjsua2 callback body; pjsua2 swallows exceptions, so log them here."""
        try:
            fn(*args, **kwargs)
        except Exception:
            log.exception("callback_failed", worker=self.index, callback=fn.__name__)

    def send(self, msg: Any) -> None:
        try:
            self.sock.sendall(m.encode(msg))
        except OSError:
            # The supervisor is gone: finish what we have and exit.
            self.stopping = True

    def start(self) -> None:
        port = start_endpoint(self.ep, self.cfg, self.index, log_level=self.log_level)
        self.acc = Agent(self)
        self.acc.create(account_config(self.cfg, self.index, port), True)
        self.send(m.WorkerReady(worker=self.index, port=port))
        log.info("worker_ready", worker=self.index, port=port)

    def _adopt(self, leg: Leg) -> None:
        """Hold ``leg`` by its call slot."""
        stale = self.legs.get(leg.slot)
        if stale is not None and stale is not leg and not stale.gone:
            # Its DISCONNECTED never came. Freeing it would clear the user data of, and
            # hang up, the new call in its old slot (agent.sip.legs), so it is kept.
            log.warning("stale_leg", worker=self.index, slot=leg.slot)
            stale.gone = True
            self.graveyard.append(stale)
        self.legs[leg.slot] = leg

    def forget(self, leg: Leg) -> None:
        """A leg's call is over and its C++ half about to go: drop the worker's reference."""
        if self.legs.get(leg.slot) is leg:
            del self.legs[leg.slot]

    # --- incoming INVITE ------------------------------------------------------------

    def on_rejected(self, prm: pj.OnRejectedIncomingCallParam) -> None:
        """pjsua answered an INVITE itself (a broken or unacceptable offer): tell the store.

        486/503 are left out: pjsua sends those when it is out of call slots, and Kamailio
        may then give the same Call-ID to another worker.
        """
        if prm.statusCode in (486, 503):
            return
        call_id = clean(header(prm.rdata.wholeMsg, "call-id") or "")
        if not call_id:
            return
        src_ip = self.admission.source(prm.rdata.wholeMsg, prm.rdata.srcAddress)
        reason = prm.reason or reason_phrase(prm.statusCode)
        self.send(m.CallRejected(call_id=call_id, code=prm.statusCode, reason=reason,
                                 source=src_ip))
        log.debug("call_rejected", call_id=call_id, code=prm.statusCode, source=src_ip)

    def on_incoming(self, prm: pj.OnIncomingCallParam) -> None:
        msg = prm.rdata.wholeMsg
        leg = Leg(self, self.acc, prm.callId, "dialer")
        self._adopt(leg)
        raw_call_id = header(msg, "call-id") or ""
        call_id = clean(raw_call_id) or f"w{self.index}-{prm.callId}"
        source = self.admission.source(msg, prm.rdata.srcAddress)
        target = route_call(self.cfg, msg)
        refusal = self._refusal(leg, raw_call_id, call_id, prm.rdata.srcAddress, source)
        if refusal is None and self.digest is not None:
            refusal = self.digest.refusal(msg, call_id)
        if refusal is None and target is None:
            refusal = 404, "No Route", {}
        if refusal is not None:
            code, reason, extra = refusal
            # Answered after pjsua has finished with the INVITE, not inside this callback:
            # rejecting here, while pjsua was still setting up the call's media
            # asynchronously (slots reused in a burst), made it free the cloned request
            # twice (assertion in pjsip_rx_data_free_cloned, SIGABRT).
            self.deferred.append((self._refuse, (leg, code, reason, extra)))
            if code == 407:  # a challenge, not the call's end: its answer comes next
                return
            self.send(m.CallRejected(call_id=call_id, code=code, reason=reason, source=source))
            log.debug("call_rejected", call_id=call_id, code=code, source=source)
            return
        assert target is not None
        pair = Pair(call_id=call_id, dialer=leg, target=target, invite=msg)
        pair.deadline = time.monotonic() + self.cfg.carrier_timeout_s
        leg.pair = pair
        self.pairs[call_id] = pair
        correlation = header(msg, "x-correlation-id")
        self.send(m.CallStarted(call_id=call_id, correlation_id=clean(correlation or "") or None,
                                from_uri=clean(header(msg, "from") or ""),
                                to_uri=clean(header(msg, "to") or ""),
                                source=source, t=time.time(), route=target.route,
                                carrier=target.carrier))
        self.send(m.LegHead(call_id=call_id, leg="dialer", head=clean(head_of(msg)),
                            peer=prm.rdata.srcAddress))
        log.debug("call_started", call_id=call_id, worker=self.index, correlation_id=correlation)
        pair.correlation = correlation
        place_carrier(self, pair)

    def _refusal(self, leg: Leg, raw_call_id: str, call_id: str, src_addr: str, source: str
                 ) -> tuple[int, str, dict[str, str]] | None:
        """Why an INVITE is refused (code, reason phrase, extra headers), or None."""
        if not self.admission.from_edge(src_addr):
            return 403, "Forbidden", {}
        if not self.admission.allowed(source):
            return 403, "Forbidden", {}
        if not valid_call_id(raw_call_id):
            return 400, "Bad Call-ID", {}
        if call_id in self.pairs:
            # A second INVITE transaction with a Call-ID in progress (RFC 3261 §8.2.2.2).
            return 482, "Loop Detected", {}
        if self.admission.rate_limited(source):
            return 503, "Rate Limited", {"Retry-After": "5"}
        # Every leg pjsua still holds takes a call slot, including the legs of calls that
        # are over but still tearing down; counting only open calls let a burst reach
        # makeCall with no slot left (PJ_ETOOMANY).
        busy = sum(1 for held in self.legs.values() if held is not leg and held.active())
        if self.stopping or busy + 2 > 2 * self.cfg.calls_in_worker():
            # "Agent Full" tells Kamailio to try another worker (see config/kamailio).
            return 503, "Agent Full", {"Retry-After": "1"}
        return None

    # --- leg events -----------------------------------------------------------------

    def on_leg_state(self, leg: Leg, ci: pj.CallInfo, msgs: EventMessages) -> None:
        pair = leg.pair
        if pair is None:
            return
        if leg.role == "carrier" and msgs.sent.startswith("INVITE ") \
                and "carrier" not in pair.reported:
            pair.reported.add("carrier")
            self.send(m.LegHead(call_id=pair.call_id, leg="carrier",
                                head=clean(head_of(msgs.sent)), peer=msgs.sent_to))
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            leg.pair = None
            if pair.carrier is leg:
                pair.carrier = None
        if pair.done:
            return
        if leg.role == "carrier":
            self._carrier_state(pair, leg, ci, msgs.received)
        elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._dialer_gone(pair)

    def _carrier_state(self, pair: Pair, leg: Leg, ci: pj.CallInfo, msg: str) -> None:
        code = ci.lastStatusCode
        if ci.state == pj.PJSIP_INV_STATE_EARLY and code in (180, 183):
            self.send(m.CarrierProgress(call_id=pair.call_id, code=code, t=time.time()))
            pair.state = advance(pair.state, Event.PROGRESS)
            # Early media (183/180 with SDP) is answered when the media comes up; a bare
            # provisional is relayed as is.
            if not has_sdp(msg) and pair.dialer_early == 0:
                self._answer_dialer(pair, code)
        elif ci.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.send(m.CarrierProgress(call_id=pair.call_id, code=200, t=time.time()))
            pair.state = advance(pair.state, Event.ANSWERED)
            if self.fas_s > 0 and pair.tap is not None:
                pair.fas_until = time.monotonic() + self.fas_s
            else:
                self._stop_tap(pair)
            self._answer_dialer(pair, 200)
            pair.carrier_code = 200
            log.info("call_connected", call_id=pair.call_id)
        elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self._carrier_gone(pair, ci, msg)

    def _carrier_gone(self, pair: Pair, ci: pj.CallInfo, msg: str) -> None:
        # Calls the dialer side already ended are ``done`` and never get here.
        if pair.state == CallState.CONNECTED:
            pair.state = advance(pair.state, Event.BYE)
            self._finish(pair, "connected", dialer_code=200)
            self._hangup(pair.dialer, 200)
            return
        code = ci.lastStatusCode if ci.lastStatusCode >= 300 else 503
        if self._fail_over(pair, code):
            return
        pair.carrier_code = code
        pair.carrier_phrase = ci.lastReason if ci.lastStatusCode >= 300 else ""
        reasons = [clean(r) for r in header_values(msg, "reason")]
        pair.carrier_reason = ", ".join(reasons) if reasons else None
        pair.carrier_headers = dict(pick_headers(
            msg, self.cfg.return_headers,
            skip={"reason", self.cfg.carrier_code_header.lower()}))
        self._stop_tap(pair)
        if code in (401, 407):
            # A challenge is not a failure to infer: it goes to the dialer as it came,
            # with what the dialer needs to answer it.
            pair.carrier_headers.update(challenges(msg))
        wait = (pair.target is not None and pair.target.rewrite
                and pair.wav_path is not None and code not in (401, 407))
        self.send(m.CarrierFinal(call_id=pair.call_id, code=code, reason=pair.carrier_reason,
                                 t=time.time(), wait=wait))
        log.debug("carrier_final", call_id=pair.call_id, code=code, held=wait)
        if wait:
            pair.held_until = time.monotonic() + self.cfg.decision_timeout_ms / 1000.0
        else:
            self._relay_final(pair)

    def _fail_over(self, pair: Pair, code: int) -> bool:
        return fail_over(self, pair, code)

    def _place_if_open(self, pair: Pair) -> None:
        if not pair.done and pair.carrier is None:
            place_carrier(self, pair)

    def _relay_final(self, pair: Pair) -> None:
        headers = dict(pair.carrier_headers)
        if pair.carrier_reason:
            headers["Reason"] = pair.carrier_reason
        self._fail_dialer(pair, pair.carrier_code, reason=pair.carrier_phrase, headers=headers)

    def _fail_dialer(self, pair: Pair, code: int, *, reason: str = "",
                     headers: dict[str, str] | None = None) -> None:
        pair.held_until = None
        pair.state = advance(pair.state, Event.FINAL)
        pair.dialer_code = code
        self._finish(pair, "failed", dialer_code=code)
        self._hangup(pair.dialer, code, reason=reason, headers=headers)
        if pair.carrier is not None:
            # A carrier that never sent a provisional cannot be CANCELled yet; pjsip does
            # it when one arrives or times the INVITE out. The dialer is already answered.
            self._hangup(pair.carrier, 487)

    def _refuse(self, leg: Leg, code: int, reason: str, extra: dict[str, str]) -> None:
        self._hangup(leg, code, reason=reason, headers=extra)

    def _fail_if_open(self, pair: Pair, code: int) -> None:
        if not pair.done:
            self._fail_dialer(pair, code)

    def _dialer_gone(self, pair: Pair) -> None:
        if is_open(pair.state):
            pair.state = advance(pair.state, Event.CANCEL)
            pair.dialer_code = 487
        elif pair.state == CallState.CONNECTED:
            pair.state = advance(pair.state, Event.BYE)
            pair.dialer_code = 200
        self._stop_tap(pair)
        # Finish first: hanging up the carrier can run its DISCONNECTED callback at once,
        # which must find the call over (else the BYE's end was stored as a carrier 487).
        self._finish(pair, _OUTCOME.get(pair.state, "failed"),
                     dialer_code=pair.dialer_code or 487)
        if pair.carrier is not None:
            self._hangup(pair.carrier, 487)

    def on_leg_media(self, leg: Leg) -> None:
        pair = leg.pair
        if pair is None or pair.done:
            return
        active = active_media(leg)
        if active is None:
            return
        if leg.role == "carrier" and is_open(pair.state) and pair.media_started is None:
            pair.state = advance(pair.state, Event.EARLY_MEDIA)
            self._start_tap(pair, leg, active)
            self._answer_dialer(pair, 183, force=True)
        elif leg.role == "carrier" and pair.tap is not None:
            # The carrier's media was set up anew (see bridge): the tap follows the new
            # stream into the same recording, so no second is lost or restarted.
            try:
                leg.getAudioMedia(active).startTransmit(pair.tap)
            except pj.Error as exc:
                log.warning("tap_not_moved", call_id=pair.call_id, error=exc.info())
            else:
                log.debug("carrier_media_moved", call_id=pair.call_id)
        bridge(pair)

    # --- media ----------------------------------------------------------------------

    def _start_tap(self, pair: Pair, leg: Leg, idx: int) -> None:
        pair.media_started = time.time()
        self.seq += 1
        path = self.media_dir / f"w{self.index}-{os.getpid()}-{self.seq}.wav"
        tap = None
        try:
            tap = FrameTap(str(path))
            leg.getAudioMedia(idx).startTransmit(tap)
        except (OSError, pj.Error) as exc:
            if tap is not None:
                tap.destroy()
            # Fail open: no analysis for this call, but it is still bridged and relayed.
            log.warning("tap_failed", call_id=pair.call_id, path=str(path),
                        error=exc.info() if isinstance(exc, pj.Error) else str(exc))
            Path(path).unlink(missing_ok=True)
            return
        pair.tap = tap
        pair.wav_path = str(path)
        codec = "unknown"
        try:
            codec = leg.getStreamInfo(idx).codecName
        except pj.Error:
            pass
        self.send(m.EarlyMedia(call_id=pair.call_id, codec=codec, path=str(path),
                               tone_countries=list(pair.target.tone_countries)
                               if pair.target else [],
                               t=pair.media_started))
        log.debug("early_media", call_id=pair.call_id, codec=codec, path=str(path))

    def _stop_tap(self, pair: Pair) -> None:
        # Never leave a tap to the garbage collector: see FrameTap.destroy.
        if pair.tap is not None:
            pair.tap.destroy()
            pair.tap = None

    # --- SIP actions ----------------------------------------------------------------

    def _answer_dialer(self, pair: Pair, code: int, *, force: bool = False) -> None:
        if (pair.dialer_early == code and not force) or pair.dialer.gone:
            return
        op = pj.CallOpParam(True)
        op.statusCode = code
        try:
            pair.dialer.answer(op)
            pair.dialer_early = code
        except pj.Error as exc:
            log.warning("answer_failed", call_id=pair.call_id, code=code, error=exc.info())

    @staticmethod
    def _hangup(leg: Leg, code: int, *, reason: str = "",
                headers: dict[str, str] | None = None) -> None:
        hangup(leg, code, reason=reason, headers=headers)

    def _finish(self, pair: Pair, state: str, *, dialer_code: int) -> None:
        if pair.done:
            return
        pair.done = True
        self._stop_tap(pair)
        self.send(m.CallEnded(call_id=pair.call_id, state=state, dialer_code=dialer_code,
                              carrier_code=pair.carrier_code, rewritten=pair.rewritten,
                              t=time.time()))
        log.debug("call_ended", call_id=pair.call_id, state=state, dialer_code=dialer_code,
                  carrier_code=pair.carrier_code)

    # --- supervisor messages and timers ---------------------------------------------

    def on_message(self, msg: Any) -> None:
        if isinstance(msg, m.Shutdown):
            self.stopping = True
        elif isinstance(msg, m.Verdict):
            pair = self.pairs.get(msg.call_id)
            if pair is None or pair.held_until is None:
                return  # too late: already relayed (fail-open)
            if msg.code is None:
                self._relay_final(pair)
                return
            headers = dict(pair.carrier_headers)
            headers.update(verdict_headers(code_header=self.cfg.carrier_code_header,
                                           carrier_code=pair.carrier_code,
                                           q850=msg.q850_cause, text=msg.reason,
                                           carrier_reason=pair.carrier_reason))
            if msg.code == pair.carrier_code:  # agreed: the carrier's code, marked decided
                self._fail_dialer(pair, msg.code, reason=pair.carrier_phrase, headers=headers)
                return
            pair.rewritten = True
            log.info("final_rewritten", call_id=pair.call_id, carrier_code=pair.carrier_code,
                     code=msg.code)
            self._fail_dialer(pair, msg.code, reason=msg.reason, headers=headers)

    def tick(self) -> None:
        now = time.monotonic()
        for pair in list(self.pairs.values()):
            if pair.done:
                if pair.dialer.gone and pair.carrier is None:
                    self._drop(pair)
                continue
            if pair.held_until is not None and now >= pair.held_until:
                log.info("verdict_timeout", call_id=pair.call_id)
                self._relay_final(pair)
            elif (pair.state in (CallState.IDLE, CallState.EARLY, CallState.CLASSIFIED)
                  and now >= pair.deadline and pair.held_until is None):
                log.info("carrier_timeout", call_id=pair.call_id)
                self._fail_dialer(pair, self.cfg.timeout_code)
            if pair.tap is not None and (
                    (pair.fas_until is not None and now >= pair.fas_until)
                    or (pair.media_started is not None
                        and time.time() - pair.media_started > self.cfg.max_early_media_s)):
                self._stop_tap(pair)

    def _drop(self, pair: Pair) -> None:
        self._stop_tap(pair)
        if pair.wav_path:
            # Give the analysis side time to read the tail before tmpfs is freed.
            self.unlink_later.append((time.monotonic() + 5.0, pair.wav_path))
        if self.pairs.get(pair.call_id) is pair:
            del self.pairs[pair.call_id]

    def run(self) -> None:
        self.sock.setblocking(False)
        next_gc = time.monotonic() + GC_EVERY_S
        while True:
            self.ep.libHandleEvents(POLL_MS)
            while self.deferred:
                fn, args = self.deferred.pop(0)
                self.guard(fn, *args)
            try:
                data = self.sock.recv(65536)
                if not data:
                    self.stopping = True
                for msg in self.decoder.feed(data):
                    self.guard(self.on_message, msg)
            except BlockingIOError:
                pass
            except OSError:
                self.stopping = True
            self.guard(self.tick)
            now = time.monotonic()
            while self.unlink_later and self.unlink_later[0][0] <= now:
                _, path = self.unlink_later.pop(0)
                Path(path).unlink(missing_ok=True)
            if now >= next_gc:
                gc.collect()
                next_gc = now + GC_EVERY_S
            if self.stopping and not self.pairs:
                break
            if self.stopping:
                for pair in list(self.pairs.values()):
                    self.guard(self._shed, pair)

    def _shed(self, pair: Pair) -> None:
        """End a call because the worker is stopping: 503 before the answer, BYE after."""
        if pair.done:
            return
        if is_open(pair.state):
            self._fail_dialer(pair, 503)
        elif pair.state == CallState.CONNECTED:
            pair.state = advance(pair.state, Event.BYE)
            self._finish(pair, "connected", dialer_code=200)
            self._hangup(pair.dialer, 200)
            if pair.carrier is not None:
                self._hangup(pair.carrier, 200)

    def close(self) -> None:
        for pair in list(self.pairs.values()):
            self._stop_tap(pair)
        self.pairs.clear()
        # Every pjsua2 Call must be gone before libDestroy (else pjsua asserts).
        for leg in list(self.legs.values()):
            leg.pair = None
            leg.release()
        self.legs.clear()
        gc.collect()
        for _, path in self.unlink_later:
            Path(path).unlink(missing_ok=True)
        self.acc = None
        gc.collect()
        self.ep.libDestroy()


def main(argv: list[str] | None = None) -> int:
    from agent.logs import LoggingConfig, setup_logging
    from agent.sip.settings import load_sip_config

    parser = argparse.ArgumentParser(prog="agent.sip.worker")
    parser.add_argument("--config", required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--json-logs", action="store_true")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--fas-seconds", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging_config = LoggingConfig(level=args.log_level,
                                   format="json" if args.json_logs else "console")
    setup_logging(logging_config)
    # Automatic collection would run on whatever thread allocates, pjmedia's clock thread
    # inside a media callback included: see agent.sip.legs.
    gc.disable()
    cfg = load_sip_config(args.config)
    sock = socket.socket(fileno=args.fd)
    worker = Worker(cfg, args.index, sock, fas_s=args.fas_seconds,
                    log_level=logging_config.level)
    signal.signal(signal.SIGTERM, lambda *_: setattr(worker, "stopping", True))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        worker.start()
    except pj.Error as exc:
        where = f"{cfg.listen_host}:{cfg.worker_port(args.index)}"
        worker.send(m.WorkerFailed(worker=args.index, error=f"{where}: {exc.info().strip()}"))
        log.error("worker_start_failed", worker=args.index, address=where, error=exc.info())
        return EXIT_START_FAILED
    gc.freeze()
    try:
        worker.run()
    finally:
        worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
