"""Streaming classification: one verdict per second of early media, and when it is final.

:class:`StreamingClassifier` takes audio in pieces of any length, classifies each whole
second with the student model as soon as it is complete, and applies the streaming rule
of :mod:`agent.classify.rule` (:class:`~agent.classify.rule.StreamRule`).

The live SIP agent feeds it RTP payloads second by second; ``classify`` feeds whole files
through the same object, so both decide alike.
"""

from __future__ import annotations

import numpy as np

from agent.audio import SAMPLE_RATE
from agent.classify.model import StudentModel
from agent.classify.rule import RuleState, StreamRule
from agent.features import extract_second
from agent.features.context import (
    CONTEXT_SECONDS,
    band_max,
    context_from_history,
    periodicity_batch,
)
from agent.labels import LABELS, Decision, SecondResult


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
