"""Identify an announcement while it plays: try after a couple of seconds, retry as it grows."""

from __future__ import annotations

import numpy as np

from agent.audio import SAMPLE_RATE
from agent.fingerprint.config import FingerprintConfig
from agent.fingerprint.library import Library
from agent.labels import LibraryMatch


class StreamingMatcher:
    """Accumulates one call's announcement audio and matches it against a library.

    The first try comes once ``config.min_seconds`` of audio has arrived, then one every
    ``config.retry_seconds`` of new audio, on everything gathered so far (up to
    ``config.max_seconds``). Once a match is found, or the audio cap is reached,
    the matcher stops trying.

    Parameters
    ----------
    library : Library
        Where to look.
    config : FingerprintConfig, optional
        Defaults to the library's own configuration.
    """

    def __init__(self, library: Library, config: FingerprintConfig | None = None):
        self.library = library
        self.config = config or library.config
        self._chunks: list[np.ndarray] = []
        self._n = 0
        self._tried_at = 0
        self._end_s = 0.0
        self.result: LibraryMatch | None = None
        self.done = False

    @property
    def samples(self) -> np.ndarray:
        """All audio gathered so far (e.g. for :meth:`Library.record_unknown`)."""
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.zeros(0, np.float32)

    @property
    def seconds(self) -> float:
        return self._n / SAMPLE_RATE

    def push(self, samples: np.ndarray, *, t_s: float) -> LibraryMatch | None:
        """Add announcement audio that started at stream time ``t_s`` seconds.

        Returns
        -------
        LibraryMatch or None
            The match, the first time one is found (``detected_s`` is the stream time of
            the end of the audio that decided it); None otherwise.
        """
        if self.done:
            return None
        cap = int(self.config.max_seconds * SAMPLE_RATE)
        take = np.asarray(samples, dtype=np.float32)[: max(0, cap - self._n)]
        if take.size:
            self._chunks.append(take)
            self._n += take.size
        self._end_s = t_s + samples.size / SAMPLE_RATE
        min_n = int(self.config.min_seconds * SAMPLE_RATE)
        step = int(self.config.retry_seconds * SAMPLE_RATE)
        if self._n >= min_n and (self._tried_at == 0 or self._n - self._tried_at >= step):
            return self._try()
        if self._n >= cap:
            self.done = True
        return None

    def _try(self) -> LibraryMatch | None:
        self._tried_at = self._n
        found = self.library.match(self.samples)
        if self._n >= int(self.config.max_seconds * SAMPLE_RATE):
            self.done = True
        if found is None:
            return None
        self.result = LibraryMatch(
            entry_id=found.entry_id, sip_code=found.sip_code, reason=found.reason,
            score=found.score, detected_s=self._end_s, q850_cause=found.q850_cause,
            carrier=found.carrier, lang=found.lang,
        )
        self.done = True
        return self.result

    def finish(self) -> LibraryMatch | None:
        """The announcement ended: one last try on what is left untried; the final answer."""
        if not self.done and self._n > self._tried_at and self._n >= SAMPLE_RATE:
            self._try()
        self.done = True
        return self.result
