"""Streaming classification: one verdict per second of early media, and when it is final.

:class:`StreamingClassifier` takes audio in pieces of any length, classifies each whole
second with the student model as soon as it is complete, and applies the streaming rule
of :mod:`agent.classify.rule` (:class:`~agent.classify.rule.StreamRule`) to the model's
probabilities carried over from the seconds before
(:func:`~agent.classify.rule.carry_over`).

The live SIP agent feeds it RTP payloads second by second; ``classify`` feeds whole files
through the same object, so both decide alike.

A second's work is a handful of numpy calls and one native call: the stream keeps its
window buffer, fixed frame views of it, scratch space and the model's input row between
seconds, the features are written straight into that row, and the previous seconds'
context is shifted inside it rather than rebuilt. The numbers are the ones the batch
functions of :mod:`agent.features` compute for training (tests hold them equal).
"""

from __future__ import annotations

import numpy as np

from agent.audio import SAMPLE_RATE
from agent.classify.model import StudentModel
from agent.classify.rule import ANNOUNCEMENT, RuleState, StreamRule, carry_over
from agent.features import FRAMES_PER_SECOND_WINDOW, N_FEATURES, N_MELS
from agent.features.context import (
    N_CONTEXT,
    N_PERIODICITY,
    N_SUMMARY,
    context_from_history,
    periodicity_fn,
    push_context,
    summary_batch,
)
from agent.features.mel import SpectraBuffers, frames_of, log_mel_from_power, spectra_fn
from agent.features.modulation import N_MODULATION, new_history, new_work, push_modulation
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
        self._carried: list[float] | None = None
        self._fill = 0
        # The window buffer is the frames' backing store: (1, 8000) so the batch feature
        # functions' views apply to it unchanged.
        self._window = np.zeros((1, SAMPLE_RATE), np.float32)
        self._buf = self._window[0]
        self._mel_frames = frames_of(self._window)
        self._spectra = SpectraBuffers.for_seconds(1)
        layout = self.model.layout
        self._row = np.zeros(self.model.n_features, np.float32)
        self._mel = self._row[:N_FEATURES].reshape(1, FRAMES_PER_SECOND_WINDOW, N_MELS)
        at = N_FEATURES
        self._summary = self._row[at : at + N_SUMMARY * layout.summary]
        at += self._summary.size
        self._periodicity = self._row[at : at + N_PERIODICITY * layout.periodicity
                                      ].reshape(1, -1)
        at += self._periodicity.size
        # Context of the next second: band maxima of the last four, most recent first;
        # before the stream started they read as the floor, as in training.
        self._context = self._row[at : at + N_CONTEXT * layout.context]
        if layout.context:
            self._context[:] = context_from_history([])
        at += self._context.size
        # Modulation of this second over the last three: the stream keeps their frames.
        self._modulation = self._row[at : at + N_MODULATION * layout.modulation]
        if layout.modulation:
            self._mod_history = new_history()
            self._mod_work = new_work()
        self._predict = self.model.row_predictor(self._row)
        # The feature steps bound to this stream's buffers (see spectra_fn).
        self._spectra_of_window = spectra_fn(self._mel_frames, self._spectra)
        self._periodicity_of_spectra = periodicity_fn(self._spectra, self._periodicity)

    @property
    def decision(self) -> Decision | None:
        """The settled class so far, or None."""
        return self._state.decision

    @property
    def decisions(self) -> list[Decision]:
        """Every decision so far, in order (see :attr:`RuleState.decisions`)."""
        return self._state.decisions

    @property
    def announcement_since(self) -> int | None:
        """First second of the evidence behind the announcement decision, if any."""
        return self._state.announcement_since

    def push(self, samples: np.ndarray) -> list[SecondResult]:
        """Add samples (float32, 8 kHz, any length); return the seconds completed by them."""
        return self._feed(samples, audio=None)

    def push_windows(self, samples: np.ndarray) -> list[tuple[SecondResult, np.ndarray]]:
        """As :meth:`push`, with each completed second's audio (a copy) beside its result.

        The call analyzer hands announcement seconds on to the fingerprint lookup this way,
        without buffering the stream a second time.
        """
        audio: list[np.ndarray] = []
        results = self._feed(samples, audio=audio)
        return list(zip(results, audio, strict=True))

    def _feed(self, samples: np.ndarray, *, audio: list[np.ndarray] | None
              ) -> list[SecondResult]:
        """Classify every second the samples complete; copy its audio into ``audio``."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        out: list[SecondResult] = []
        pos = 0
        while pos < x.size:
            take = min(SAMPLE_RATE - self._fill, x.size - pos)
            self._buf[self._fill : self._fill + take] = x[pos : pos + take]
            self._fill += take
            pos += take
            if self._fill == SAMPLE_RATE:
                out.append(self._classify())
                if audio is not None:
                    audio.append(self._buf.copy())
                self._fill = 0
        return out

    def _classify(self) -> SecondResult:
        """Classify the second now complete in the window buffer."""
        log_mel_from_power(self._spectra_of_window(), self._mel)
        if self._summary.size:
            self._summary[:] = summary_batch(self._mel.reshape(1, -1))[0]
        if self._periodicity.size:
            self._periodicity_of_spectra()
        if self._modulation.size:
            push_modulation(self._mod_history, self._mel[0], self._modulation, self._mod_work)
        raw = self._predict().tolist()
        probs = carry_over(self._carried, raw, self.rule.persistence)
        self._carried = probs
        if self._context.size:
            push_context(self._context, self._row[:N_FEATURES])
        k = probs.index(max(probs))
        t = len(self.seconds)
        # The model always gives one probability per label: no length check on this path.
        result = SecondResult(t, LABELS[k], dict(zip(LABELS, probs, strict=False)))
        self.seconds.append(result)
        self._state.push(t, result.label, probs[k], raw[ANNOUNCEMENT])
        return result

    def finish(self) -> Decision | None:
        """End of stream: the decision weighing everything seen (:meth:`RuleState.finish`).

        A trailing partial second is not classified (the model needs a whole second).
        """
        return self._state.finish(float(len(self.seconds)) + self._fill / SAMPLE_RATE)
