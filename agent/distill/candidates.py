"""Candidate feature blocks measured on the leave-one-voice-out folds, not shipped.

Each is computed from a :class:`~agent.distill.dataset.SecondsTable`'s own columns (the
log-mel frames and the periodicity statistics of every second, in file and time order), so
a recipe can be scored without re-reading the corpus. None of them has a live-stream
counterpart in :mod:`agent.features`: a model using one cannot be shipped
(:func:`agent.distill.folds.feature_layout` gives None). Their scores are in
``docs/benchmarks.md`` ("What was tried on the folds").

* ``modulation`` — what describes speech rather than a speaker, over the second and over
  the last :data:`MODULATION_SECONDS` seconds: the share of the envelope modulation
  energy at 2–8 Hz (syllables) in four band groups and in the loudness, its peak
  frequency and level, the co-modulation of the band groups, spectral-flux statistics
  and onset rate, and the alternation rate of high- and low-band dominated frames
  (fricatives and vowels);
* ``voicing-history`` — the voicing and steadiness statistics of
  :func:`agent.features.context.periodicity_batch` (pitch level left out) averaged over
  this second and the :data:`VOICING_SECONDS` before it.
"""

from __future__ import annotations

import numpy as np

from agent.distill.dataset import SecondsTable
from agent.features import FRAMES_PER_SECOND_WINDOW, N_MELS
from agent.features.mel import _FLOOR_DB

CANDIDATES = ("modulation", "voicing-history")
MODULATION_SECONDS = 3
VOICING_SECONDS = 2
FRAME_RATE = 32.0  # log-mel frames per second (31.25 ms hop)
_GROUPS = ((0, 6), (6, 12), (12, 18), (18, 24))
_RANGE_DB = 50.0  # pauses and the floor before the stream: at most this far below the top
# Voicing statistics of periodicity_batch without the pitch level (column 6).
_VOICING_COLUMNS = [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13]


def _previous(table: SecondsTable, values: np.ndarray, k: int, fill: float) -> np.ndarray:
    """``values`` of each row's second ``k`` seconds back in the same file, else ``fill``
    (rows of a file are consecutive and in time order in a table)."""
    out = np.full_like(values, fill)
    if k == 0:
        return values.copy()
    same = np.zeros(len(table), bool)
    same[k:] = (table.file[k:] == table.file[:-k]) & (table.t[k:] == table.t[:-k] + k)
    out[same] = values[np.flatnonzero(same) - k]
    return out


def _frames(table: SecondsTable, seconds: int) -> np.ndarray:
    """``(n, seconds * 29, 24)`` log-mel frames of each row's last ``seconds`` seconds,
    oldest first, clipped at :data:`_RANGE_DB` below the window's loudest cell."""
    mel = table.features.reshape(-1, FRAMES_PER_SECOND_WINDOW, N_MELS)
    parts = [_previous(table, mel, k, _FLOOR_DB) for k in range(seconds - 1, -1, -1)]
    frames = np.concatenate(parts, axis=1)
    top = frames.max(axis=(1, 2), keepdims=True)
    return np.maximum(frames, top - _RANGE_DB)


def _modulation(env: np.ndarray, taper: bool) -> tuple[np.ndarray, ...]:
    """Share of 2–8 Hz in the 0.6–16 Hz modulation energy of envelopes ``(..., T)``, the
    peak modulation frequency, and the total."""
    x = env - env.mean(axis=-1, keepdims=True)
    if taper:
        x = x * np.hanning(x.shape[-1]).astype(np.float32)
    power = np.abs(np.fft.rfft(x, axis=-1)) ** 2
    freq = np.fft.rfftfreq(x.shape[-1], 1 / FRAME_RATE)
    whole = (freq >= 0.6) & (freq <= 16.0)
    syllabic = (freq >= 2.0) & (freq <= 8.0)
    total = power[..., whole].sum(axis=-1)
    share = power[..., syllabic].sum(axis=-1) / np.maximum(total, 1e-6)
    peak = freq[whole][power[..., whole].argmax(axis=-1)]
    return share, peak, total


def modulation_block(table: SecondsTable, seconds: int = MODULATION_SECONDS) -> np.ndarray:
    """``(n, 25)`` float32 ``modulation`` values of every row (see the module docstring)."""
    cols: list[np.ndarray] = []
    for w in sorted({1, seconds}):
        frames = _frames(table, w)
        env = np.stack([frames[:, :, a:b].mean(axis=2) for a, b in _GROUPS], axis=1)
        loud = frames.mean(axis=2)
        share, _, _ = _modulation(env, taper=w > 1)
        l_share, l_peak, l_total = _modulation(loud, taper=w > 1)
        centred = env - env.mean(axis=2, keepdims=True)
        centred /= np.maximum(np.linalg.norm(centred, axis=2, keepdims=True), 1e-6)
        corr = np.einsum("nit,njt->nij", centred, centred)
        upper = np.triu_indices(len(_GROUPS), 1)
        cols += [share, l_share[:, None], l_peak[:, None], np.log10(l_total + 1e-3)[:, None],
                 corr[:, upper[0], upper[1]].mean(axis=1)[:, None]]
        rise = np.maximum(np.diff(frames, axis=1), 0).mean(axis=2)
        if w == 1:
            cols += [rise.mean(axis=1)[:, None], rise.std(axis=1)[:, None],
                     np.percentile(rise, 90, axis=1)[:, None]]
        above = rise.mean(axis=1, keepdims=True) + rise.std(axis=1, keepdims=True)
        mid = rise[:, 1:-1]
        onsets = (mid > above) & (mid >= rise[:, :-2]) & (mid > rise[:, 2:])
        cols.append((onsets.sum(axis=1) / w)[:, None])
        tilt = frames[:, :, 14:].mean(axis=2) - frames[:, :, :10].mean(axis=2)
        side = np.sign(tilt - np.median(tilt, axis=1, keepdims=True))
        cols += [((side[:, 1:] != side[:, :-1]).sum(axis=1) / w)[:, None],
                 tilt.std(axis=1)[:, None]]
    return np.ascontiguousarray(np.concatenate(cols, axis=1), dtype=np.float32)


def voicing_history_block(table: SecondsTable, seconds: int = VOICING_SECONDS) -> np.ndarray:
    """``(n, 13)`` float32 voicing and steadiness statistics averaged over the row's
    second and the ``seconds`` before it (zeros before the stream started)."""
    per = table.periodicity[:, _VOICING_COLUMNS]
    parts = [_previous(table, per, k, 0.0) for k in range(seconds + 1)]
    return np.ascontiguousarray(np.mean(parts, axis=0), dtype=np.float32)


def candidate_block(table: SecondsTable, name: str) -> np.ndarray:
    """One of :data:`CANDIDATES` for every row of ``table``."""
    if name == "modulation":
        return modulation_block(table)
    if name == "voicing-history":
        return voicing_history_block(table)
    raise ValueError(f"unknown candidate block {name!r}: expected {', '.join(CANDIDATES)}")
