"""Features beyond the 696: a summary and the periodicity of this second, and what the
previous seconds looked like.

A one-second window cannot tell the silent gap of a ringback cadence (up to 4 s off in
the US, 2 s in India and the UK) from real silence; the seconds before it can. For each
of the :data:`CONTEXT_SECONDS` previous seconds this gives the loudest frame per mel band
(24 values), so a tone burst 1–4 s ago stays visible. Seconds before the stream started
read as the extractor's floor. Training (:func:`context_batch` over a file) and the live
stream (:func:`context_from_history` over a rolling buffer) compute the same numbers.

:func:`periodicity_batch` adds voicing and pitch movement, from the log-mel frames' spectra.
:func:`summary_batch` condenses a second's own 29×24 log-mel cells into statistics a tree
model cannot form from single cells: per-band mean, spread and frame-to-frame change
(steady tone vs. syllables vs. notes), and the loudness contour.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numba
import numpy as np

from agent.audio import SAMPLE_RATE
from agent.features.mel import (
    _FLOOR_DB,
    _WINDOW,
    BATCH_CHUNK,
    EVEN_FRAMES,
    FRAMES_PER_SECOND_WINDOW,
    N_FEATURES,
    N_FFT,
    N_MELS,
    SpectraBuffers,
    autocorrelation_call,
    frames_of,
    log_mel_into,
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


@numba.njit(cache=True)
def push_context(context: np.ndarray, features: np.ndarray) -> None:
    """Advance a live stream's context by one second, in place.

    ``context`` ``(96,)`` holds what :func:`context_batch` gives the second just
    classified; afterwards it holds the next second's: the band maxima shift back one
    second and ``features`` ``(696,)`` of the second just classified take the front.
    """
    for i in range(context.size - 1, N_MELS - 1, -1):
        context[i] = context[i - N_MELS]
    for b in range(N_MELS):
        best = features[b]
        for f in range(1, FRAMES_PER_SECOND_WINDOW):
            v = features[f * N_MELS + b]
            if v > best:
                best = v
        context[b] = best


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
# separates unseen music from speech. It is read from the log-mel frames' own power spectra
# (no second set of FFTs): the inverse transform of a frame's power, DC removed (a type-I
# DCT, the power being real and even), is the circular autocorrelation of the
# Hann-windowed frame; dividing by the window's own autocorrelation undoes the taper.
# Lags 20–128 samples = 400–62.5 Hz.
_P_LAGS = np.arange(20, N_FFT // 2 + 1)
_WINDOW_AC = np.fft.irfft(np.abs(np.fft.rfft(_WINDOW.astype(np.float64))) ** 2, N_FFT)
_P_UNBIAS = (_WINDOW_AC[0] / _WINDOW_AC[_P_LAGS]).astype(np.float32)
_P_OCTAVE = np.log2(_P_LAGS).astype(np.float32)
# A voiced frame is at least -42 dB (RMS 1.0 = 0 dB): lag 0 of the windowed frame's
# autocorrelation is its energy, the mean square times the window's energy. Chosen on a
# validation split of the training files: -60 to -42 dB score alike, -36 dB and up lose.
_P_MIN_DB = -42.0
_P_MIN_ENERGY = float(np.sum(_WINDOW.astype(np.float64) ** 2)) * 10 ** (_P_MIN_DB / 10)
N_ACF = 8
# Spectral steadiness: how alike the fine (31.25 Hz) magnitude spectra of consecutive
# even frames are over 312.5-3406 Hz. A held note keeps its harmonics in the same bins from
# one 62.5-ms step to the next; speech moves them with its pitch and formants. (All 29
# frames, 31.25 ms apart, scored alike on the validation splits and cost 0.5 µs more.) Plucked and
# electronic music with syllable-like onsets fooled the voicing values alone. Magnitude
# (not log) scored best of log, magnitude and fourth root on a validation split of the
# training files, and costs a square root per bin.
_S_BINS = (10, 110)
N_STEADINESS = 6
N_PERIODICITY = N_ACF + N_STEADINESS


def periodicity_fn(buffers: SpectraBuffers, out: np.ndarray) -> Callable[[], np.ndarray]:
    """:func:`periodicity_from_power` of these buffers into ``out`` as a zero-argument
    call, bound once (the live stream's way, as :func:`agent.features.mel.spectra_fn`)."""
    even, ac = buffers.even, buffers.ac
    transform = autocorrelation_call(even, ac)

    def run() -> np.ndarray:
        transform()
        _periodicity_into(ac, even, out)
        return out

    return run


def periodicity_from_power(buffers: SpectraBuffers, out: np.ndarray) -> np.ndarray:
    """:func:`periodicity_batch` of seconds given their log-mel spectra.

    Parameters
    ----------
    buffers : SpectraBuffers
        Filled by :func:`agent.features.mel.spectra_into` (``power`` and ``even``).
    out : numpy.ndarray
        ``(n, 14)`` float32, written.
    """
    return periodicity_fn(buffers, out)()


def periodicity_batch(windows: np.ndarray) -> np.ndarray:
    """Voicing and pitch-movement statistics of one-second windows.

    Parameters
    ----------
    windows : numpy.ndarray
        ``(n, 8000)`` float32 samples.

    Returns
    -------
    numpy.ndarray
        ``(n, 14)`` float32. First 8 from the normalised autocorrelation of the 15 even
        log-mel frames (32 ms, every 62.5 ms): mean peak correlation, fraction of voiced
        frames (peak > 0.5 and above -42 dB), fractions of consecutive voiced pairs whose
        pitch holds (< 1/2 semitone), glides (< 3 semitones) or jumps, the number of
        voiced/unvoiced switches, and the mean and spread of log2 pitch lag over voiced
        frames. Then 6 of spectral steadiness, from the correlation of each of the 15
        even frames' magnitude spectrum (312.5-3406 Hz, mean removed) with the next even
        frame's (62.5 ms on): its mean, median, standard deviation and the fractions
        above 0.8 and 0.6, and the mean correlation two even frames (125 ms) apart.
    """
    return log_mel_and_periodicity(windows)[1]


def log_mel_and_periodicity(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`agent.features.extract_batch` and :func:`periodicity_batch` of the same
    ``(n, 8000)`` windows from one set of FFTs, as the live stream computes them: the
    ``(n, 696)`` log-mel and ``(n, 14)`` periodicity, both float32."""
    windows = np.ascontiguousarray(windows, dtype=np.float32)
    if windows.ndim != 2 or windows.shape[1] != SAMPLE_RATE:
        raise ValueError(f"expected (n, {SAMPLE_RATE}) windows, got {windows.shape}")
    n = windows.shape[0]
    mel = np.empty((n, FRAMES_PER_SECOND_WINDOW, N_MELS), np.float32)
    per = np.empty((n, N_PERIODICITY), np.float32)
    frames = frames_of(windows)
    buffers = SpectraBuffers.for_seconds(min(n, BATCH_CHUNK))
    for a in range(0, n, BATCH_CHUNK):
        b = min(a + BATCH_CHUNK, n)
        head = buffers.head(b - a)
        log_mel_into(frames[a:b], mel[a:b], head)
        periodicity_from_power(head, per[a:b])
    return mel.reshape(n, N_FEATURES), per


@numba.njit(cache=True)
def _block_sum32(a: np.ndarray) -> np.float32:
    """Sum of at most 128 float32 values as numpy orders it: below 8 one by one, else
    eight running sums combined pairwise, then the remainder one by one."""
    n = a.size
    if n < 8:
        res = np.float32(0.0)
        for i in range(n):
            res += a[i]
        return res
    # Eight scalar accumulators (not an array: no allocation per call).
    r0, r1, r2, r3, r4, r5, r6, r7 = a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
    i = 8
    while i < n - n % 8:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[i]
        i += 1
    return res


@numba.njit(cache=True)
def _sum32(a: np.ndarray) -> np.float32:
    """Sum of a float32 vector in exactly numpy's pairwise order (halves cut at a
    multiple of 8 down to blocks of 128), so that the compiled statistics below equal
    the numpy expressions they replace bit for bit."""
    if a.size <= 128:
        return _block_sum32(a)
    half = a.size // 2
    half -= half % 8
    return _sum32(a[:half]) + _sum32(a[half:])


@numba.njit(cache=True)
def _periodicity_stats(ac: np.ndarray, out: np.ndarray) -> None:
    """The eight statistics of :func:`periodicity_batch` from ``(n, 16, 129)`` float32
    autocorrelations (lags 0..128; the 16th row is padding), one compiled loop instead of
    some thirty numpy calls per second.

    Comparisons against constants are in float32, as numpy does with a Python scalar
    against a float32 array; ratios of counts are float64, as numpy's are."""
    n_frames = EVEN_FRAMES
    first = _P_LAGS[0]
    half_semitone = np.float32(1 / 24)
    three_semitones = np.float32(0.25)
    min_energy = np.float32(_P_MIN_ENERGY)
    floor = np.float32(1e-9)
    peak = np.empty(n_frames, np.float32)
    octave = np.empty(n_frames, np.float32)
    voiced = np.empty(n_frames, np.bool_)
    v_oct = np.empty(n_frames, np.float32)
    v_oct2 = np.empty(n_frames, np.float32)
    for r in range(ac.shape[0]):
        for j in range(n_frames):
            best = 0
            best_v = ac[r, j, first] * _P_UNBIAS[0]
            for k in range(1, _P_UNBIAS.size):
                v = ac[r, j, first + k] * _P_UNBIAS[k]
                if v > best_v:
                    best, best_v = k, v
            energy = ac[r, j, 0]
            peak[j] = best_v / (energy if energy > floor else floor)
            octave[j] = _P_OCTAVE[best]
            voiced[j] = peak[j] > np.float32(0.5) and energy > min_energy
        n_both = n_hold = n_jump = n_switch = 0
        for j in range(n_frames - 1):
            n_switch += voiced[j + 1] != voiced[j]
            if voiced[j + 1] and voiced[j]:
                n_both += 1
                step = abs(octave[j + 1] - octave[j])
                n_hold += step < half_semitone
                n_jump += step >= three_semitones
        n_voiced = 0
        for j in range(n_frames):
            n_voiced += voiced[j]
            v_oct[j] = octave[j] if voiced[j] else np.float32(0.0)
            v_oct2[j] = v_oct[j] * octave[j]
        pairs = max(n_both, 1)
        hold = n_hold / pairs
        jump = n_jump / pairs
        mean_oct = _sum32(v_oct) / max(n_voiced, 1)
        var = _sum32(v_oct2) / max(n_voiced, 1) - mean_oct**2
        spread = math.sqrt(var if var > 0.0 else 0.0)
        out[r, 0] = _sum32(peak) / np.float32(n_frames)
        out[r, 1] = n_voiced / n_frames
        out[r, 2] = hold
        out[r, 3] = n_both / pairs - hold - jump
        out[r, 4] = jump
        out[r, 5] = n_switch
        out[r, 6] = mean_oct
        out[r, 7] = spread


@numba.njit(cache=True)
def _periodicity_into(ac: np.ndarray, even: np.ndarray, out: np.ndarray) -> None:
    """Both parts of :func:`periodicity_batch` in one compiled call, from the even
    frames: the eight voicing statistics from their autocorrelations ``ac``, the six
    steadiness values from their power spectra ``even``."""
    _periodicity_stats(ac, out)
    _steadiness_stats(even, out)


@numba.njit(cache=True, fastmath=True)
def _steadiness_stats(power: np.ndarray, out: np.ndarray) -> None:
    """Columns 8-13 of :func:`periodicity_batch` from the even frames' ``(n, 16, 129)``
    power spectra (the 16th row is padding).

    The correlation of two mean-removed spectra comes from plain sums (of each, of the
    products, and of the power, which is the magnitude squared), so each bin's magnitude is
    read once per pair rather than centred and scaled first: a third of the time."""
    lo, hi = _S_BINS
    width = hi - lo
    n_frames = EVEN_FRAMES
    mag = np.empty((n_frames, width), np.float32)
    total = np.empty(n_frames, np.float64)
    spread = np.empty(n_frames, np.float64)
    near = np.empty(n_frames - 1, np.float64)
    for r in range(power.shape[0]):
        for j in range(n_frames):
            s = 0.0
            q = 0.0
            for k in range(width):
                p = power[r, j, lo + k]
                v = math.sqrt(p)
                mag[j, k] = v
                s += v
                q += p
            total[j] = s
            # A silent frame correlates with nothing (0), as a centred shape of zeros would.
            spread[j] = max(math.sqrt(max(q - s * s / width, 0.0)), 1e-6)
        far = 0.0
        for j in range(n_frames - 1):
            dot = 0.0
            for k in range(width):
                dot += mag[j, k] * mag[j + 1, k]
            near[j] = (dot - total[j] * total[j + 1] / width) / (spread[j] * spread[j + 1])
            if j < n_frames - 2:
                dot = 0.0
                for k in range(width):
                    dot += mag[j, k] * mag[j + 2, k]
                far += (dot - total[j] * total[j + 2] / width) / (spread[j] * spread[j + 2])
        m = near.size
        mean_near = near.sum() / m
        var = 0.0
        above_08 = above_06 = 0
        for j in range(m):
            var += (near[j] - mean_near) ** 2
            above_08 += near[j] > 0.8
            above_06 += near[j] > 0.6
        ordered = np.sort(near)
        out[r, N_ACF] = mean_near
        out[r, N_ACF + 1] = 0.5 * (ordered[(m - 1) // 2] + ordered[m // 2])
        out[r, N_ACF + 2] = math.sqrt(var / m)
        out[r, N_ACF + 3] = above_08 / m
        out[r, N_ACF + 4] = above_06 / m
        out[r, N_ACF + 5] = far / (n_frames - 2)
