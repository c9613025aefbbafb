"""An analysis process: reads calls' early-media taps and runs :class:`agent.analysis.CallAnalyzer`.

Classification, tone detection, fingerprinting and decisions run here, never in a pjsua2
worker (a busy Python thread there starves pjmedia's clock). The supervisor sends
:class:`~agent.sip.messages.Track` and :class:`~agent.sip.messages.Finalize`; this process
answers with :class:`~agent.sip.messages.AnalysisEvent` and
:class:`~agent.sip.messages.FinalInference`. A call always stays in the same process.

Run as ``python -m agent.media.analyst --config FILE --fd N``.
"""

from __future__ import annotations

import argparse
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

import structlog

from agent.audio import SAMPLE_RATE
from agent.labels import Decision, Inferred, LibraryMatch, SecondResult, ToneEvent
from agent.media.tap import WavTail
from agent.sip import messages as m

log = structlog.get_logger("agent.media.analyst")

#: How often the taps are polled (an fstat per call). The worker appends every 20 ms
#: frame; a 20 ms poll adds ~10 ms on average to when a second is seen.
POLL_S = 0.02


@dataclass
class Tracked:
    """One call being analysed."""

    call_id: str
    analyzer: Any
    tail: WavTail
    t0: float  # wall-clock time of the first early-media frame
    decisions_sent: int = 0  # of analyzer.decisions: the rest are still to be sent


def event_message(call_id: str, event: Any, *, audio_s: float, t0: float,
                  now: float) -> m.AnalysisEvent:
    """Wrap one analyzer event for the supervisor.

    ``lag_s`` is the time from when the audio the event needed had fully arrived
    (``t0 + audio_s``, the tap is real time) to ``now``.
    """
    kind = {SecondResult: "second", ToneEvent: "tone", LibraryMatch: "match",
            Inferred: "inferred", Decision: "decision"}.get(type(event), "other")
    return m.AnalysisEvent(call_id=call_id, kind=kind, data=event.as_json(),
                           audio_s=round(audio_s, 3), lag_s=round(max(0.0, now - t0 - audio_s), 4))


class Analyst:
    """The analysis loop over one supervisor socket."""

    def __init__(self, components: Any, sock: socket.socket, *, max_audio_s: float) -> None:
        self.components = components
        self.sock = sock
        self.decoder = m.Decoder()
        self.calls: dict[str, Tracked] = {}
        self.max_samples = int(max_audio_s * SAMPLE_RATE)
        self.running = True

    def send(self, msg: Any) -> None:
        try:
            self.sock.sendall(m.encode(msg))
        except OSError:
            self.running = False

    def on_message(self, msg: Any) -> None:
        if isinstance(msg, m.Shutdown):
            self.running = False
        elif isinstance(msg, m.Track):
            from agent.analysis import CallAnalyzer

            # Without components (no model) every call is relayed untouched: fail open.
            if self.components is not None and msg.call_id not in self.calls:
                analyzer = CallAnalyzer(self.components, call_id=msg.call_id,
                                        tone_countries=msg.tone_countries)
                self.calls[msg.call_id] = Tracked(msg.call_id, analyzer, WavTail(msg.path), msg.t)
        elif isinstance(msg, m.Finalize):
            self.finalize(msg.call_id, msg.code)

    def finalize(self, call_id: str, code: int | None) -> None:
        tracked = self.calls.pop(call_id, None)
        if tracked is None:
            self.send(m.FinalInference(call_id=call_id, inferred=None, audio_s=0.0))
            return
        self.pump(tracked)
        inferred = None
        try:
            analyzer = tracked.analyzer
            inferred = analyzer.on_carrier_final(code) if code else analyzer.conclude()
        except Exception:  # analysis fails open: the call goes on with the carrier's code
            log.exception("finalize_failed", call_id=call_id)
        # The end of the stream may have changed the class (a late announcement): the
        # supervisor stores the history before the inference that follows from it.
        audio_s = tracked.analyzer.duration_s
        now = time.time()
        for decision in tracked.analyzer.decisions[tracked.decisions_sent:]:
            self.send(event_message(call_id, decision, audio_s=audio_s, t0=tracked.t0, now=now))
        tracked.decisions_sent = len(tracked.analyzer.decisions)
        tracked.tail.close()
        self.send(m.FinalInference(call_id=call_id,
                                   inferred=inferred.as_json() if inferred else None,
                                   audio_s=round(tracked.analyzer.duration_s, 3)))

    def pump(self, tracked: Tracked) -> None:
        """Feed whatever audio arrived since the last poll to the call's analyzer."""
        room = self.max_samples - tracked.tail.samples_read
        if room <= 0:
            return
        samples = tracked.tail.read(max_samples=room)
        if samples.size == 0:
            return
        try:
            events = tracked.analyzer.push(samples)
        except Exception:
            log.exception("analysis_failed", call_id=tracked.call_id)
            return
        audio_s = tracked.tail.samples_read / SAMPLE_RATE
        now = time.time()
        for event in events:
            self.send(event_message(tracked.call_id, event, audio_s=audio_s, t0=tracked.t0,
                                    now=now))
            if isinstance(event, Decision):
                tracked.decisions_sent += 1

    def run(self) -> None:
        while self.running:
            ready, _, _ = select.select([self.sock], [], [], POLL_S)
            if ready:
                data = self.sock.recv(65536)
                if not data:
                    break
                for msg in self.decoder.feed(data):
                    self.on_message(msg)
            for tracked in list(self.calls.values()):
                self.pump(tracked)


def warm_up(components: Any) -> None:
    """Analyse two seconds of faint noise once, so the first real call does not pay for
    building detector templates and first-use model set-up (~1 s measured)."""
    import numpy as np

    from agent.analysis import CallAnalyzer

    noise = np.random.default_rng(0).standard_normal(2 * SAMPLE_RATE).astype(np.float32) * 1e-3
    analyzer = CallAnalyzer(components, call_id="warm-up")
    for start in range(0, noise.size, 2048):
        analyzer.push(noise[start:start + 2048])
    analyzer.conclude()


def main(argv: list[str] | None = None) -> int:
    from agent.analysis import AnalysisComponents
    from agent.logs import setup_logging
    from agent.settings import load_agent_config

    parser = argparse.ArgumentParser(prog="agent.media.analyst")
    parser.add_argument("--config", required=True)
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    cfg = load_agent_config(args.config)
    setup_logging(cfg.logging)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=args.fd)
    try:
        components = AnalysisComponents.load(cfg, create_default_library=True)
    except Exception as exc:  # noqa: BLE001 - the agent must still relay calls
        error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        log.error("analysis_unavailable", error=error)
        components = None
    if components is not None:
        warm_up(components)
    analyst = Analyst(components, sock, max_audio_s=cfg.sip.max_early_media_s)
    analyst.send(m.AnalystStatus(available=components is not None,
                                 error=None if components is not None else error))
    signal.signal(signal.SIGTERM, lambda *_: setattr(analyst, "running", False))
    analyst.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
