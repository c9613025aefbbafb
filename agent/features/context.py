"""Features beyond the 696: a summary and the periodicity of this second, and what the
previous seconds looked like.

A one-second window cannot tell the silent gap of a ringback cadence (up to 4 s off in
the US, 2 s in India and the UK) from real silence; the seconds before it can. For each
of the :data:`CONTEXT_SECONDS` previous seconds this gives the loudest frame per mel band
(24 values), so a tone burst 1–4 s ago stays visible. Seconds before the stream started
read as the extractor's floor. Training (:func:`context_batch` over a file) and the live
stream (:func:`context_from_history` over a rolling buffer) compute the same numbers.

:func:`periodicity_batch` adds voicing and pitch movement from the samples themselves.
:func:`summary_batch` condenses a second's own 29×24 log-mel cells into statistics a tree
model cannot form from single cells: per-band mean, spread and frame-to-frame change
(steady tone vs. syllables vs. notes), and the loudness contour.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from agent.features.mel import (
    _FLOOR_DB,
    _OFFSET,
    FRAMES_PER_SECOND_WINDOW,
    HOP,
    N_FEATURES,
    N_FFT,
    N_MELS,
)

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


# Periodicity (voicing and pitch movement) of every other frame of the second: the 24 mel
# bands are too coarse to show harmonics, and held notes vs. gliding speech pitch is what
# separates unseen music from speech. Lags 20–128 samples = 400–62.5 Hz.
_P_FRAMES = 15
_P_HOP = 2 * HOP
_P_LAGS = np.arange(20, 129)
_P_UNBIAS = (N_FFT / (N_FFT - _P_LAGS)).astype(np.float32)
_P_OCTAVE = np.log2(_P_LAGS).astype(np.float32)
_P_MIN_ENERGY = N_FFT * 10 ** (-60 / 10)  # frame power -60 dB (RMS 1.0 = 0 dB)
N_PERIODICITY = 8


def periodicity_batch(windows: np.ndarray) -> np.ndarray:
    """Voicing and pitch-movement statistics of one-second windows.

    Parameters
    ----------
    windows : numpy.ndarray
        ``(n, 8000)`` float32 samples.

    Returns
    -------
    numpy.ndarray
        ``(n, 8)`` float32, from the normalised autocorrelation of 15 frames of 32 ms:
        mean peak correlation, fraction of voiced frames (peak > 0.5 and above -60 dB),
        fractions of consecutive voiced pairs whose pitch holds (< 1/2 semitone), glides
        (< 3 semitones) or jumps, the number of voiced/unvoiced switches, and the mean
        and spread of log2 pitch lag over voiced frames.
    """
    windows = np.ascontiguousarray(windows, dtype=np.float32)
    n = windows.shape[0]
    s0, s1 = windows.strides
    frames = np.lib.stride_tricks.as_strided(
        windows[:, _OFFSET:], shape=(n, _P_FRAMES, N_FFT), strides=(s0, s1 * _P_HOP, s1),
        writeable=False,
    )
    spec = scipy.fft.rfft(frames - frames.mean(axis=2, keepdims=True), n=2 * N_FFT, axis=2)
    ac = scipy.fft.irfft(spec.real * spec.real + spec.imag * spec.imag, axis=2)
    energy = ac[..., 0]
    norm = ac[..., _P_LAGS[0] : _P_LAGS[-1] + 1] * _P_UNBIAS
    best = norm.argmax(axis=2)
    peak = np.take_along_axis(norm, best[..., None], axis=2)[..., 0] / np.maximum(energy, 1e-9)
    octave = _P_OCTAVE[best]
    voiced = (peak > 0.5) & (energy > _P_MIN_ENERGY)
    both = voiced[:, 1:] & voiced[:, :-1]
    pairs = np.maximum(both.sum(axis=1), 1)
    step = np.abs(octave[:, 1:] - octave[:, :-1])
    hold = (both & (step < 1 / 24)).sum(axis=1) / pairs
    jump = (both & (step >= 0.25)).sum(axis=1) / pairs
    glide = both.sum(axis=1) / pairs - hold - jump
    switches = (voiced[:, 1:] != voiced[:, :-1]).sum(axis=1)
    n_voiced = np.maximum(voiced.sum(axis=1), 1)
    v_oct = octave * voiced
    mean_oct = v_oct.sum(axis=1) / n_voiced
    spread = np.sqrt(np.maximum((v_oct * octave).sum(axis=1) / n_voiced - mean_oct**2, 0.0))
    return np.stack([peak.mean(axis=1), voiced.mean(axis=1), hold, glide, jump, switches,
                     mean_oct, spread], axis=1).astype(np.float32)
