"""Streaming classification: one verdict per second of early media, and when it is final.

:class:`StreamingClassifier` takes audio in pieces of any length, classifies each whole
second with the student model as soon as it is complete, and applies :class:`StreamRule`:

* a class is final after ``confirm_seconds`` consecutive seconds of it, silence after
  ``silence_seconds`` (longer than a cadence gap, or a call whose early media starts
  inside a ringback gap would be settled as silence before the first burst);
* announcement takes priority: ``announcement_seconds`` consecutive announcement seconds
  settle (or overturn) the decision, because an announcement triggers the fingerprint
  lookup that can tell the real SIP code;
* a ringback cadence's silent gaps are still ringback: a silence second within
  ``ringback_gap_s`` seconds after a ringback second counts as ringback.

The live SIP agent feeds it RTP payloads second by second; ``classify`` feeds whole files
through the same object, so both decide alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agent.audio import SAMPLE_RATE
from agent.classify.model import StudentModel
from agent.config import build, read_yaml
from agent.errors import ConfigError
from agent.features import extract_second
from agent.features.context import (
    CONTEXT_SECONDS,
    band_max,
    context_from_history,
    periodicity_batch,
)
from agent.labels import LABEL_INDEX, LABELS, Decision, SecondResult
from agent.paths import CONFIG_DIR


@dataclass(frozen=True)
class StreamRule:
    """When a stream of per-second classes becomes a decision (``config/classifier.yaml``)."""

    confirm_seconds: int = 2
    announcement_seconds: int = 2
    silence_seconds: int = 5
    ringback_gap_s: int = 4
    min_probability: float = 0.0

    def validate(self) -> None:
        """Counts are at least one second; the probability floor lies in [0, 1)."""
        if not 1 <= self.confirm_seconds <= 60:
            raise ConfigError("confirm_seconds: expected 1..60")
        if not 1 <= self.announcement_seconds <= 60:
            raise ConfigError("announcement_seconds: expected 1..60")
        if not 1 <= self.silence_seconds <= 60:
            raise ConfigError("silence_seconds: expected 1..60")
        if not 0 <= self.ringback_gap_s <= 30:
            raise ConfigError("ringback_gap_s: expected 0..30")
        if not 0.0 <= self.min_probability < 1.0:
            raise ConfigError("min_probability: expected 0 <= p < 1")


@dataclass(frozen=True)
class ClassifierConfig:
    """The ``classifier`` section: which student model, and the streaming rule."""

    model: str | None = None
    rule: StreamRule = field(default_factory=StreamRule)


def load_classifier_config(path: str | Path | None = None) -> ClassifierConfig:
    """Read and validate ``config/classifier.yaml`` (or ``path``)."""
    p = Path(path) if path is not None else CONFIG_DIR / "classifier.yaml"
    return build(ClassifierConfig, read_yaml(p), "classifier")


class RuleState:
    """The streaming rule on its own: feed it per-second labels, read the decision.

    Pure bookkeeping (no audio, no model), so training reports and tests can replay it
    on predicted labels exactly as the live stream does.
    """

    def __init__(self, rule: StreamRule | None = None) -> None:
        self.rule = rule or StreamRule()
        self.effective: list[str | None] = []
        self.decision: Decision | None = None
        self._last_ringback: int | None = None
        self._run_label: str | None = None
        self._run = 0

    def push(self, t: int, label: str, p: float) -> Decision | None:
        """Account for second ``t`` classified as ``label`` with probability ``p``.

        Returns the decision if this second made or changed it, else None.
        """
        rule = self.rule
        effective: str | None = label if p >= rule.min_probability else None
        if effective == "ringback":
            self._last_ringback = t
        elif (effective == "silence" and self._last_ringback is not None
              and t - self._last_ringback <= rule.ringback_gap_s):
            effective = "ringback"
        self.effective.append(effective)
        if effective is not None and effective == self._run_label:
            self._run += 1
        else:
            self._run_label, self._run = effective, 1 if effective is not None else 0
        if effective is None:
            return None
        need = {"announcement": rule.announcement_seconds,
                "silence": rule.silence_seconds}.get(effective, rule.confirm_seconds)
        if self._run < need:
            return None
        if self.decision is None or (
            effective == "announcement" and self.decision.label != "announcement"
        ):
            self.decision = Decision(label=effective, at_s=float(t + 1))
            return self.decision
        return None

    def finish(self, seconds_seen: float) -> Decision | None:
        """Best decision at end of stream: the settled one, else announcement if any second
        said so, else the most frequent (cadence-corrected) class; None without seconds."""
        if self.decision is not None:
            return self.decision
        seen = [e for e in self.effective if e is not None]
        if not seen:
            return None
        if "announcement" in seen:
            return Decision(label="announcement", at_s=seconds_seen)
        counts = {label: seen.count(label) for label in LABELS}
        best = max(LABELS, key=lambda label: (counts[label], -LABEL_INDEX[label]))
        return Decision(label=best, at_s=seconds_seen)


class StreamingClassifier:
    """Classify a stream of 8 kHz audio second by second and settle on a class.

    Parameters
    ----------
    model : StudentModel, optional
        Default: :meth:`StudentModel.load` of the shipped model.
    rule : StreamRule, optional
        Default: :class:`StreamRule` defaults.

    Examples
    --------
    >>> sc = StreamingClassifier()                      # doctest: +SKIP
    >>> sc.push(np.zeros(12000, np.float32))            # doctest: +SKIP
    [SecondResult(t=0, label='silence', p={...})]
    """

    def __init__(self, model: StudentModel | None = None, *, rule: StreamRule | None = None
                 ) -> None:
        self.model = model if model is not None else StudentModel.load()
        self.rule = rule or StreamRule()
        self.seconds: list[SecondResult] = []
        self._state = RuleState(self.rule)
        self._buf = np.zeros(SAMPLE_RATE, np.float32)
        self._fill = 0
        self._history: list[np.ndarray] = []

    @property
    def decision(self) -> Decision | None:
        """The settled class so far, or None."""
        return self._state.decision

    def push(self, samples: np.ndarray) -> list[SecondResult]:
        """Add samples (float32, 8 kHz, any length); return the seconds completed by them."""
        return [result for result, _ in self.push_windows(samples)]

    def push_windows(self, samples: np.ndarray) -> list[tuple[SecondResult, np.ndarray]]:
        """As :meth:`push`, with each completed second's audio (a copy) beside its result.

        The call analyzer hands announcement seconds on to the fingerprint lookup this way,
        without buffering the stream a second time.
        """
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        out: list[tuple[SecondResult, np.ndarray]] = []
        pos = 0
        while pos < x.size:
            take = min(SAMPLE_RATE - self._fill, x.size - pos)
            self._buf[self._fill : self._fill + take] = x[pos : pos + take]
            self._fill += take
            pos += take
            if self._fill == SAMPLE_RATE:
                out.append((self._classify(self._buf), self._buf.copy()))
                self._fill = 0
        return out

    def _classify(self, window: np.ndarray) -> SecondResult:
        feats = extract_second(window).reshape(1, -1)
        layout = self.model.layout
        context = context_from_history(self._history).reshape(1, -1)
        periodicity = periodicity_batch(window.reshape(1, -1)) if layout.periodicity else None
        row = layout.assemble(feats, context, periodicity)[0]
        self._history.append(band_max(feats)[0])
        del self._history[:-CONTEXT_SECONDS]
        probs = self.model.predict_one(row)
        k = int(np.argmax(probs))
        t = len(self.seconds)
        result = SecondResult(t=t, label=LABELS[k],
                              p={label: float(probs[i]) for i, label in enumerate(LABELS)})
        self.seconds.append(result)
        self._state.push(t, result.label, float(probs[k]))
        return result

    def finish(self) -> Decision | None:
        """End of stream: the settled decision, else the best one from what was seen.

        A trailing partial second is not classified (the model needs a whole second).
        """
        return self._state.finish(float(len(self.seconds)) + self._fill / SAMPLE_RATE)
