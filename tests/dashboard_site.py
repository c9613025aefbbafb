"""The dashboard's test site: calls and announcements for its tests and screenshots, written
through the call store's and the library's own APIs (never SQL) from a seeded RNG, and the
agent's API served from a thread.

Carriers behave differently on purpose: ``acme`` answers most calls and tells the truth,
``globex`` sends 480 for everything, ``initech`` sends 503 and sometimes the right code.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from agent.audio import SAMPLE_RATE
from agent.labels import Decision, Inferred, LibraryMatch, SecondResult, ToneEvent
from agent.store.calls import CallStore

#: (true outcome, inferred code, reason, Q.850, source)
OUTCOMES = {
    "busy": (486, "busy tone", 17, "tone"),
    "vacant": (404, "number does not exist", 1, "fingerprint"),
    "off": (480, "subscriber switched off", 20, "fingerprint"),
    "noanswer": (480, "ringback until timeout", 19, "classifier"),
    "congestion": (503, "SIT no circuit", 34, "tone"),
}
#: What each carrier sends for each true outcome (None: it is honest).
CARRIERS = {
    "acme": {"answer": 0.55, "lie": {}},
    "globex": {"answer": 0.35, "lie": {"busy": 480, "vacant": 480, "congestion": 480}},
    "initech": {"answer": 0.45, "lie": {"vacant": 503, "off": 503}},
}
ROUTES = ("in-mob", "in-fix", "ng-mob")


def _probs(rng: np.random.Generator, label: str) -> dict[str, float]:
    p = {name: float(rng.uniform(0.0, 0.08)) for name in
         ("announcement", "ringback", "music", "silence")}
    p[label] = 0.0
    p[label] = max(0.5, 1.0 - sum(p.values()))
    return {k: round(v, 3) for k, v in p.items()}


def add_call(store: CallStore, call_id: str, *, carrier: str, route: str, started: datetime,
             outcome: str, sent: int, rng: np.random.Generator,
             correlation_id: str | None = None, entry_id: int = 7) -> None:
    """One call as the supervisor would record it: seconds, decisions, events, verdict."""
    store.create(call_id, correlation_id=correlation_id, carrier=carrier, route=route,
                 started_at=started)
    store.add_evidence(call_id, {"detector": "carrier", "provisional": 183})
    store.add_evidence(call_id, {"detector": "carrier", "early_media": "PCMU"})
    ring = int(rng.integers(2, 6))
    tail = {"busy": "ringback", "congestion": "announcement", "noanswer": "ringback",
            "answer": "ringback"}.get(outcome, "announcement")
    for t in range(ring):
        store.add_second(call_id, SecondResult(t, "ringback", _probs(rng, "ringback")))
    store.add_decision(call_id, Decision("ringback", 2.0))
    end = ring + (3 if outcome != "noanswer" else 20)
    for t in range(ring, end):
        store.add_second(call_id, SecondResult(t, tail, _probs(rng, tail)))
    if outcome == "answer":
        store.set_answered(call_id, 200)
        store.add_evidence(call_id, {"detector": "carrier", "answered": 200})
        store.add_evidence(call_id, {"detector": "sip", "dialer_code": 200, "carrier_code": 200,
                                     "rewritten": False})
        store.set_state(call_id, "connected")
        return
    code, reason, cause, source = OUTCOMES[outcome]
    evidence: list[dict] = []
    if tail == "announcement":
        store.add_decision(call_id, Decision("announcement", ring + 2.0))
        evidence.append({"detector": "classifier", "label": "announcement", "at_s": ring + 2.0})
    if source == "tone":
        kind = "busy" if outcome == "busy" else "sit"
        tone = ToneEvent(kind=kind, start_s=ring + 0.1, detected_s=ring + 1.2, country="in",
                         sit_code=None if kind == "busy" else "NC", score=0.93)
        store.add_evidence(call_id, tone.as_json())
        evidence.append(tone.as_json())
    if source == "fingerprint":
        match = LibraryMatch(entry_id=entry_id, sip_code=code, reason=reason, score=0.91,
                             detected_s=ring + 2.5, q850_cause=cause)
        store.add_evidence(call_id, match.as_json())
        evidence.append(match.as_json())
    store.set_inferred(call_id, Inferred(code, reason, cause, source, evidence),
                       decided_at=started + timedelta(seconds=ring + 3))
    store.set_carrier_final(call_id, sent)
    store.add_evidence(call_id, {"detector": "sip", "dialer_code": code, "carrier_code": sent,
                                 "rewritten": code != sent})
    store.set_state(call_id, "failed")


def fill(store: CallStore, *, now: datetime, calls: int, span: timedelta,
         seed: int = 13) -> list[str]:
    """``calls`` calls spread over ``span`` before ``now``; returns their Call-IDs."""
    rng = np.random.default_rng(seed)
    ids = []
    for i in range(calls):
        carrier = list(CARRIERS)[i % len(CARRIERS)]
        behaviour = CARRIERS[carrier]
        started = now - span * float(rng.uniform(0.0, 1.0)) - timedelta(seconds=30)
        if rng.uniform() < behaviour["answer"]:
            outcome, sent = "answer", 200
        else:
            outcome = str(rng.choice(list(OUTCOMES)))
            sent = behaviour["lie"].get(outcome, OUTCOMES[outcome][0])
        call_id = f"{rng.integers(16**8):08x}-{i}@10.20.0.{i % 250 + 1}"
        add_call(store, call_id, carrier=carrier, route=ROUTES[i % len(ROUTES)],
                 started=started, outcome=outcome, sent=sent, rng=rng,
                 correlation_id=f"job-{1000 + i}")
        ids.append(call_id)
    return ids


def announcement(seed: int, seconds: float = 4.0) -> np.ndarray:
    """A synthetic announcement: a seeded sequence of three-tone chords, which the
    landmark fingerprint tells apart like speech."""
    rng = np.random.default_rng(seed)
    step = int(0.12 * SAMPLE_RATE)
    t = np.arange(step) / SAMPLE_RATE
    envelope = np.hanning(step)
    parts = []
    for _ in range(int(seconds * SAMPLE_RATE) // step):
        freqs = rng.uniform(300.0, 3400.0, size=3)
        parts.append(envelope * sum(np.sin(2 * np.pi * f * t) for f in freqs) / 3)
    return (0.4 * np.concatenate(parts)).astype(np.float32)


class Site:
    """The agent's API application over ``store`` (and a library), served for real on a
    loopback port from a thread of its own, so a blocking client (a browser driver) can
    use it. Use as a context manager; ``base`` is its URL."""

    def __init__(self, store: CallStore, *, library: str | Path | None = None,
                 token: str = "") -> None:
        from prometheus_client import CollectorRegistry

        from agent.api.app import create_app
        from agent.api.config import ApiConfig
        from agent.api.dashboard import LibraryAccess

        self.library_path = Path(library) if library is not None else None
        self.config = ApiConfig(port=0, retention_days=0, token=token)
        self.app = create_app(store, config=self.config, registry=CollectorRegistry(),
                              health=lambda: [],
                              library=LibraryAccess(library) if library is not None else None)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.base = ""

    def __enter__(self) -> Site:
        from agent.api.app import start

        self.thread.start()
        self.runner = asyncio.run_coroutine_threadsafe(
            start(self.app, self.config), self.loop).result(timeout=10)
        self.base = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
