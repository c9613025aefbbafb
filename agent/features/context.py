"""Context features: what the previous seconds looked like, and a summary of this one.

A one-second window cannot tell the silent gap of a ringback cadence (up to 4 s off in
the US, 2 s in India and the UK) from real silence; the seconds before it can. For each
of the :data:`CONTEXT_SECONDS` previous seconds this gives the loudest frame per mel band
(24 values), so a tone burst 1–4 s ago stays visible. Seconds before the stream started
read as the extractor's floor. Training (:func:`context_batch` over a file) and the live
stream (:func:`context_from_history` over a rolling buffer) compute the same numbers.

:func:`summary_batch` condenses a second's own 29×24 log-mel cells into statistics a tree
model cannot form from single cells: per-band mean, spread and frame-to-frame change
(steady tone vs. syllables vs. notes), and the loudness contour.
"""

from __future__ import annotations

import numpy as np

from agent.features.mel import _FLOOR_DB, FRAMES_PER_SECOND_WINDOW, N_FEATURES, N_MELS

CONTEXT_SECONDS = 4
N_CONTEXT = CONTEXT_SECONDS * N_MELS
N_MODULATION = 8
N_SUMMARY = 3 * N_MELS + 6 + N_MODULATION + 3


def band_max(features: np.ndarray) -> np.ndarray:
    """``(n, 696)`` features → ``(n, 24)`` loudest frame of each mel band in each second."""
    return features.reshape(-1, FRAMES_PER_SECOND_WINDOW, N_MELS).max(axis=1)


def context_batch(features: np.ndarray) -> np.ndarray:
    """Context of every second of one stream, in order.

    Parameters
    ----------
    features : numpy.ndarray
        ``(n, 696)`` features of consecutive seconds of one stream.

    Returns
    -------
    numpy.ndarray
        ``(n, 96)`` float32: row ``t`` holds :func:`band_max` of seconds ``t-1``, ``t-2``,
        ``t-3``, ``t-4`` (most recent first), the floor where ``t-k < 0``.
    """
    if features.ndim != 2 or features.shape[1] != N_FEATURES:
        raise ValueError(f"expected (n, {N_FEATURES}) features, got {features.shape}")
    n = features.shape[0]
    maxes = np.concatenate(
        [np.full((CONTEXT_SECONDS, N_MELS), _FLOOR_DB, np.float32), band_max(features)]
    )
    cols = [
        maxes[CONTEXT_SECONDS - k : CONTEXT_SECONDS - k + n]
        for k in range(1, CONTEXT_SECONDS + 1)
    ]
    return np.ascontiguousarray(np.concatenate(cols, axis=1), dtype=np.float32)


def context_from_history(history: list[np.ndarray]) -> np.ndarray:
    """Context of the next second given the :func:`band_max` rows of the seconds so far.

    ``history`` holds ``(24,)`` rows oldest first; only the last four are used.
    """
    out = np.full(N_CONTEXT, _FLOOR_DB, np.float32)
    for k in range(1, min(CONTEXT_SECONDS, len(history)) + 1):
        out[(k - 1) * N_MELS : k * N_MELS] = history[-k]
    return out


def summary_batch(features: np.ndarray) -> np.ndarray:
    """Statistics of each second's own log-mel cells.

    Parameters
    ----------
    features : numpy.ndarray
        ``(n, 696)`` features.

    Returns
    -------
    numpy.ndarray
        ``(n, 89)`` float32: per band the mean, the standard deviation over frames and the
        mean absolute frame-to-frame change (3 × 24); then the mean, standard deviation and
        range of the frame loudness (mean over bands), its mean absolute change, and the
        mean and standard deviation of each frame's peak-to-mean band level; then the
        loudness modulation spectrum at 1.1–8.8 Hz as fractions of its total (8: syllables
        modulate speech at 3–6 Hz), and the mean correlation of the band pattern between
        frames 1, 2 and 4 hops apart (3: a held note keeps its pattern, speech does not).
    """
    frames = features.reshape(-1, FRAMES_PER_SECOND_WINDOW, N_MELS).astype(np.float32)
    flux = np.abs(np.diff(frames, axis=1))
    loud = frames.mean(axis=2)
    peak = frames.max(axis=2) - loud
    cols = [
        frames.mean(axis=1), frames.std(axis=1), flux.mean(axis=1),
        loud.mean(axis=1, keepdims=True), loud.std(axis=1, keepdims=True),
        (loud.max(axis=1) - loud.min(axis=1))[:, None],
        np.abs(np.diff(loud, axis=1)).mean(axis=1, keepdims=True),
        peak.mean(axis=1, keepdims=True), peak.std(axis=1, keepdims=True),
    ]
    mod = np.abs(np.fft.rfft(loud - loud.mean(axis=1, keepdims=True), axis=1))[:, 1:]
    cols.append(mod[:, :N_MODULATION] / np.maximum(mod.sum(axis=1, keepdims=True), 1e-6))
    shape = frames - frames.mean(axis=2, keepdims=True)
    shape /= np.maximum(np.linalg.norm(shape, axis=2, keepdims=True), 1e-6)
    for lag in (1, 2, 4):
        cols.append((shape[:, lag:] * shape[:, :-lag]).sum(axis=2).mean(axis=1, keepdims=True))
    return np.ascontiguousarray(np.concatenate(cols, axis=1), dtype=np.float32)
