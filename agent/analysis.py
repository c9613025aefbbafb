"""Per-call analysis of early media: the one path shared by ``classify`` and the live agent.

A :class:`CallAnalyzer` takes the carrier's audio as it arrives and runs, in order of
cost: the DSP tone detectors on every chunk, the streaming classifier on every whole
second, and the fingerprint lookup only on seconds the classifier calls announcement
(classifying first and fingerprinting only announcements is what made the reference
system ~3x cheaper per call). A :class:`~agent.decide.CallDecision` turns that evidence
into one inferred SIP code.

The class decision can change while the call goes on (ringback, then an announcement):
every decision is kept in order (:attr:`CallAnalyzer.decisions`, the decision history)
and reported as an event. An announcement decision starts the fingerprint lookup from
the first second of its evidence, which the carried per-second labels may still have
called ringback or music, and every second after it goes to the lookup too.

Analysis fails open: an exception in any detector is logged, recorded in
:attr:`CallAnalyzer.failures`, and that detector is switched off for the call; the rest
go on, and the call itself is never affected.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog

from agent.audio import SAMPLE_RATE
from agent.classify.model import StudentModel
from agent.classify.rule import StreamRule
from agent.classify.stream import StreamingClassifier
from agent.decide import CallDecision, DecisionTable
from agent.fingerprint import StreamingMatcher
from agent.fingerprint.config import FingerprintConfig
from agent.labels import Decision, Inferred, LibraryMatch, SecondResult, ToneEvent
from agent.paths import data_dir
from agent.tones.config import ToneConfig
from agent.tones.detect import ToneDetector

log = structlog.get_logger("agent.analysis")

Event = SecondResult | ToneEvent | LibraryMatch | Inferred | Decision

#: Seconds of audio kept for the fingerprint lookup while the class is not announcement:
#: an announcement decided on the model's evidence started up to this long ago (its
#: evidence needs two seconds, rarely three). 3 s cost 96 kB per call with a library.
LOOKBACK_SECONDS = 3


@dataclass
class AnalysisComponents:
    """What every call's analysis shares, loaded once per analysis process."""

    model: StudentModel
    rule: StreamRule
    table: DecisionTable
    tone_plans: dict[str, Any] | None
    tone_config: ToneConfig
    library: Any | None  # agent.fingerprint.Library, or None when there is no library
    fingerprint_config: FingerprintConfig

    @classmethod
    def load(cls, cfg: Any, *, create_default_library: bool = False) -> AnalysisComponents:
        """Load from an :class:`agent.settings.AgentConfig`.

        A configured ``fingerprint.library`` is opened, and created if it does not exist
        yet (the config check made sure its directory does). The default one, in the data
        directory, is created only with ``create_default_library`` (the live agent, which
        keeps the unknown announcements it hears there); ``classify`` on a fresh machine
        runs without it rather than create it as a side effect.
        """
        from agent.fingerprint import open_library
        from agent.tones.plan import load_tone_plans

        library = None
        if cfg.fingerprint.enabled:
            default = data_dir() / "library.sqlite"
            if cfg.fingerprint.library or create_default_library or default.exists():
                # With the configured threshold and retention: the library applies them.
                library = open_library(cfg.fingerprint.library or default,
                                       config=cfg.fingerprint)
        return cls(
            model=StudentModel.load(cfg.classifier.model or None),
            rule=cfg.classifier.rule,
            table=cfg.decide.table(),
            tone_plans=load_tone_plans(cfg.tones.plans or None) if cfg.tones.enabled else None,
            tone_config=cfg.tones.detector,
            library=library,
            fingerprint_config=cfg.fingerprint,
        )


class CallAnalyzer:
    """The evidence and inferred SIP code of one call's early media, updated as audio arrives.

    Parameters
    ----------
    components : AnalysisComponents
        Model, tone plans, library and decision table shared by all calls.
    call_id : str, optional
        Used in log lines and when recording unknown announcements.
    on_failure : callable, optional
        Called with the detector's name when it fails (for metrics).
    tone_countries : sequence of str, optional
        The tone-plan countries for this call (its route's); empty: the configured ones.
    """

    def __init__(
        self,
        components: AnalysisComponents,
        *,
        call_id: str | None = None,
        carrier: str | None = None,
        on_failure: Callable[[str], None] | None = None,
        tone_countries: list[str] | tuple[str, ...] = (),
    ) -> None:
        self._c = components
        self.call_id = call_id
        self.carrier = carrier
        self._on_failure = on_failure
        self.classifier: StreamingClassifier | None = StreamingClassifier(
            components.model, rule=components.rule)
        tone_config = components.tone_config
        if tone_countries:  # the call's route listens for its own countries' tones
            tone_config = dataclasses.replace(tone_config, countries=list(tone_countries))
        self.tones: ToneDetector | None = (
            ToneDetector(components.tone_plans, config=tone_config)
            if components.tone_plans is not None else None
        )
        self.matcher: StreamingMatcher | None = (
            StreamingMatcher(components.library, components.fingerprint_config)
            if components.library is not None else None
        )
        self.decision = CallDecision(components.table, fingerprint_enabled=self.matcher is not None)
        self.failures: list[str] = []
        self._samples_seen = 0
        self._last_inferred: Inferred | None = None
        self._decisions: list[Decision] = []
        # (second, audio) not handed to the lookup yet, for an announcement decided later;
        # and the last second handed to it.
        self._recent: deque[tuple[int, np.ndarray]] = deque(maxlen=LOOKBACK_SECONDS)
        self._looked_up = -1
        self.lookup_seconds: list[int] = []

    @property
    def seconds(self) -> list[SecondResult]:
        return self.classifier.seconds if self.classifier is not None else []

    @property
    def class_decision(self) -> Decision | None:
        """The current class decision (the last of :attr:`decisions`), or None."""
        return self._decisions[-1] if self._decisions else None

    @property
    def decisions(self) -> list[Decision]:
        """Every class decision so far, in order; ``at_s`` is when it was made."""
        return list(self._decisions)

    @property
    def inferred(self) -> Inferred | None:
        return self.decision.inferred

    @property
    def duration_s(self) -> float:
        return self._samples_seen / SAMPLE_RATE

    def _fail(self, name: str, exc: BaseException) -> None:
        self.failures.append(name)
        log.error("analysis_failed", call_id=self.call_id, detector=name,
                  error=f"{type(exc).__name__}: {exc}")
        if self._on_failure is not None:
            self._on_failure(name)
        setattr(self, name, None)

    def _changed(self, events: list[Event]) -> None:
        current = self.decision.inferred
        if current is not None and current is not self._last_inferred:
            self._last_inferred = current
            events.append(current)

    def push(self, samples: np.ndarray) -> list[Event]:
        """Analyse the next chunk of carrier audio (8 kHz float32); return what it revealed."""
        events: list[Event] = []
        samples = np.asarray(samples, dtype=np.float32)
        self._samples_seen += samples.size
        if self.tones is not None:
            try:
                for tone in self.tones.push(samples):
                    events.append(tone)
                    self.decision.on_tone(tone)
            except Exception as exc:  # noqa: BLE001 - fail open, whatever broke
                self._fail("tones", exc)
        if self.classifier is not None:
            try:
                self._classify(samples, events)
            except Exception as exc:  # noqa: BLE001
                self._fail("classifier", exc)
        self._changed(events)
        return events

    def _classify(self, samples: np.ndarray, events: list[Event]) -> None:
        assert self.classifier is not None
        for second, audio in self.classifier.push_windows(samples):
            events.append(second)
            if self.matcher is not None:
                self._recent.append((second.t, audio))
            # A streaming decision is made at the end of the second that settled it.
            self._take_decisions(events, upto_s=second.t + 1.0)
            current = self.class_decision
            if current is not None and current.label == "announcement":
                self._lookup_upto(second.t, events)
            elif second.label == "announcement":
                # The class is not announcement (yet): this second alone, as soon as heard.
                self._looked_up = max(self._looked_up, second.t - 1)
                self._lookup_upto(second.t, events)

    def _take_decisions(self, events: list[Event], *, upto_s: float) -> None:
        """Pass on the classifier's new decisions made by ``upto_s``; an announcement
        hands the lookup the audio of its evidence kept since."""
        assert self.classifier is not None
        made = self.classifier.decisions
        while len(self._decisions) < len(made) and made[len(self._decisions)].at_s <= upto_s:
            decision = made[len(self._decisions)]
            self._decisions.append(decision)
            events.append(decision)
            self.decision.on_classifier(decision)
            since = self.classifier.announcement_since
            if decision.label == "announcement" and since is not None:
                self._looked_up = max(self._looked_up, since - 1)

    def _lookup_upto(self, t: int, events: list[Event]) -> None:
        """Hand the lookup the kept seconds after the last one it had, up to ``t``."""
        for s, audio in list(self._recent):
            if self._looked_up < s <= t:
                self._looked_up = s
                self.lookup_seconds.append(s)
                self._lookup(audio, float(s), events)
        self._looked_up = max(self._looked_up, t)

    def _lookup(self, audio: np.ndarray, t_s: float, events: list[Event]) -> None:
        if self.matcher is None:
            return
        try:
            match = self.matcher.push(audio, t_s=t_s)
        except Exception as exc:  # noqa: BLE001
            self._fail("matcher", exc)
            self.decision.on_matcher_gave_up(t_s + 1.0)
            return
        if match is not None:
            events.append(match)
            self.decision.on_match(match)
        elif self.matcher.done:
            self._gave_up(t_s + 1.0)

    def _gave_up(self, t_s: float) -> None:
        """The matcher heard its fill of announcement and found nothing in the library."""
        if self.decision.on_matcher_gave_up(t_s):
            self._record_unknown()

    def _record_unknown(self) -> None:
        library = self._c.library
        if library is None or self.matcher is None:
            return
        audio = self.matcher.samples
        if audio.size < self._c.fingerprint_config.min_seconds * SAMPLE_RATE:
            return
        try:
            library.record_unknown(audio, call_id=self.call_id, carrier=self.carrier)
        except Exception as exc:  # noqa: BLE001 - a full disk must not break the call
            log.error("record_unknown_failed", call_id=self.call_id, error=str(exc))

    def conclude(self) -> Inferred | None:
        """The stream ended (carrier's final answer or end of file): settle the decision."""
        if self.classifier is not None:
            try:
                self.classifier.finish()
                ended: list[Event] = []
                self._take_decisions(ended, upto_s=float("inf"))
                current = self.class_decision
                if current is not None and current.label == "announcement" and self.seconds:
                    self._lookup_upto(self.seconds[-1].t, ended)
            except Exception as exc:  # noqa: BLE001
                self._fail("classifier", exc)
        if self.matcher is not None and self.decision.inferred is None:
            try:
                match = self.matcher.finish()
            except Exception as exc:  # noqa: BLE001
                self._fail("matcher", exc)
                match = None
            if match is not None:
                self.decision.on_match(match)
            elif self.class_decision is not None and self.class_decision.label == "announcement":
                self._gave_up(self.duration_s)
        return self.decision.conclude(self.duration_s)

    def on_carrier_final(self, code: int) -> Inferred | None:
        """The carrier answered finally with ``code``; return the agent's inference."""
        self.decision.evidence.append({"detector": "carrier", "final_code": code,
                                       "at_s": round(self.duration_s, 3)})
        return self.conclude()
