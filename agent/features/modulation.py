"""How the loudness moves: what describes speech rather than a speaker.

The log-mel cells and the periodicity block describe a second's spectrum and voicing;
a monotone synthetic voice (a diphone engine, say) has the steady pitch and the tidy
harmonics of music there, and a student trained on a few voices reads it as music. What
every spoken language shares is its rhythm: syllables come 2-8 times a second, so the
loudness of every band rises and falls at that rate together, with onsets, pauses, and
fricatives and vowels taking turns in the high and low bands. Music modulates more
slowly or more regularly, ringback is square, silence does not move.

For each second, over the second itself and over the last :data:`SECONDS` seconds (the
log-mel frames of the seconds before the stream started read as the extractor's floor),
with cells more than :data:`RANGE_DB` below the window's loudest clipped (pauses and the
floor weigh alike):

* the share of the 0.6-16 Hz envelope modulation energy that lies at 2-8 Hz, in four
  groups of six mel bands and in the loudness (mean of all bands), the loudness
  modulation's peak frequency and its total (log10);
* the mean correlation of the four band groups' envelopes (co-modulation);
* over the second only: the mean, spread and 90th percentile of the spectral flux
  (mean positive frame-to-frame rise over the bands); over both windows: the onset rate
  (flux peaks above mean + one spread, per second), the rate at which frames alternate
  between high- and low-band dominated (spectral tilt around its median, per second),
  and the tilt's spread.

:data:`N_MODULATION` values in all (14 over the second, 11 over the window).
Leave-one-voice-out on the training corpus (docs/benchmarks.md): with this block the
Festival voices went from 97.3% to 98.6% announcement recall and music from 96.7% to
95.6%, at about half the log-mel's cost per second; the shipped student does not use it
(a model whose feature names include ``mod_*`` does, live and in training).

Training (:func:`modulation_batch` over one stream's seconds) and the live stream
(:func:`push_modulation` over a rolling frame history) run the same compiled kernel, so
they compute the same numbers.
"""

from __future__ import annotations

import numba
import numpy as np

from agent.features.mel import _FLOOR_DB, FRAMES_PER_SECOND_WINDOW, N_FEATURES, N_MELS

SECONDS = 3
RANGE_DB = 50.0
FRAME_RATE = 32.0  # log-mel frames per second (31.25 ms hop)
N_SECOND = 14  # values over the second alone
N_WINDOW = 11  # values over the last SECONDS seconds
N_MODULATION = N_SECOND + N_WINDOW
HISTORY_FRAMES = SECONDS * FRAMES_PER_SECOND_WINDOW
_GROUP = 6  # bands per group: 4 groups of 6 bands
_LOW_BANDS, _HIGH_FROM = 10, 14  # spectral tilt: bands 14.. minus bands ..9


def _dft_tables(n: int, taper: bool, low: float, high: float) -> tuple[np.ndarray, ...]:
    """Cosine and sine tables ``(n, K)`` (time-major: the kernel's inner loop runs over
    bins, which vectorises) of the real DFT bins of ``n`` frames whose frequency lies in
    [low, high] Hz, with a Hann taper folded in when ``taper``, and their frequencies."""
    freq = np.fft.rfftfreq(n, 1 / FRAME_RATE)
    bins = np.flatnonzero((freq >= low) & (freq <= high))
    angle = 2 * np.pi * np.outer(bins, np.arange(n)) / n
    window = np.hanning(n) if taper else np.ones(n)
    return (np.ascontiguousarray((np.cos(angle) * window).T),
            np.ascontiguousarray((np.sin(angle) * window).T), freq[bins])


def _tables(n: int, taper: bool) -> tuple:
    """For an ``n``-frame window: the DFT tables of the band groups' envelopes (the 2-8 Hz
    bins, then the bins below 0.6 Hz) and of the loudness (the 0.6-16 Hz bins, then those
    below 0.6 Hz), each with its columns' sums (what a constant contributes: the mean is
    taken out afterwards), which of the loudness's bins lie at 2-8 Hz, their
    frequencies, the squared taper and the number of 2-8 Hz envelope bins."""
    syl = _dft_tables(n, taper, 2.0, 8.0)
    whole = _dft_tables(n, taper, 0.6, 16.0)
    below = _dft_tables(n, taper, 0.0, 0.6 - 1e-9)
    env_cos = np.ascontiguousarray(np.concatenate([syl[0], below[0]], axis=1))
    env_sin = np.ascontiguousarray(np.concatenate([syl[1], below[1]], axis=1))
    loud_cos = np.ascontiguousarray(np.concatenate([whole[0], below[0]], axis=1))
    loud_sin = np.ascontiguousarray(np.concatenate([whole[1], below[1]], axis=1))
    window = np.hanning(n) if taper else np.ones(n)
    return (env_cos, env_sin, env_cos.sum(axis=0), env_sin.sum(axis=0),
            loud_cos, loud_sin, loud_cos.sum(axis=0), loud_sin.sum(axis=0),
            (whole[2] >= 2.0) & (whole[2] <= 8.0), whole[2], window ** 2, syl[2].size)


# Module-level arrays are compiled into the kernels as constants: no per-call unboxing.
(_E1C, _E1S, _E1CS, _E1SS, _L1C, _L1S, _L1CS, _L1SS, _L1SYL, _L1F, _W1SQ,
 _N_SYL1) = _tables(FRAMES_PER_SECOND_WINDOW, False)
(_E3C, _E3S, _E3CS, _E3SS, _L3C, _L3S, _L3CS, _L3SS, _L3SYL, _L3F, _W3SQ,
 _N_SYL3) = _tables(HISTORY_FRAMES, True)
_GROUPS = N_MELS // _GROUP
_KE = max(_E1C.shape[1], _E3C.shape[1])
_KL = max(_L1C.shape[1], _L3C.shape[1])
# Scratch layout (float64): DFT real and imaginary parts of the 4 band groups and of
# the loudness, tilt, flux, a sort buffer, the previous and the current clipped frame.
_RE_E, _IM_E = 0, _GROUPS * _KE
_RE_L = 2 * _GROUPS * _KE
_IM_L = _RE_L + _KL
_TILT = _IM_L + _KL
_RISE = _TILT + HISTORY_FRAMES
_SORT = _RISE + HISTORY_FRAMES
_PREV = _SORT + HISTORY_FRAMES
_CUR = _PREV + N_MELS
_WORK = _CUR + N_MELS


def new_work() -> np.ndarray:
    """Scratch space for the kernels, one per stream or batch, so that they allocate
    nothing."""
    return np.zeros(_WORK, np.float64)


@numba.njit(cache=True)
def _select(a: np.ndarray, k: int) -> float:
    """The ``k``-th smallest of ``a`` (reordered in place; Hoare's selection)."""
    lo, hi = 0, a.size - 1
    while lo < hi:
        pivot = a[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return a[k]


@numba.njit(cache=True, fastmath=True)
def _share(re: np.ndarray, im: np.ndarray, syllabic: int, first_below: int, k: int,
           n: int, energy: float) -> tuple[float, float]:
    """The 2-8 Hz share (bins ``< syllabic``) of the energy in all bins from 0.6 Hz to
    Nyquist (16 Hz) and that total. The total by Parseval, from the tapered signal's
    ``energy`` less the bins below 0.6 Hz (from ``first_below`` on, bin 0 first): an
    odd-length real signal's bins above 0 each hold half their energy in the mirrored
    negative frequency."""
    syl = 0.0
    for j in range(syllabic):
        syl += re[j] * re[j] + im[j] * im[j]
    total = (n * energy - (re[first_below] ** 2 + im[first_below] ** 2)) / 2.0
    for j in range(first_below + 1, k):
        total -= re[j] * re[j] + im[j] * im[j]
    return syl / max(total, 1e-6), total


@numba.njit(cache=True, fastmath=True)
def _block(frames: np.ndarray, seconds: int, out: np.ndarray, at: int,
           work: np.ndarray) -> int:
    """The values of one window of ``(T, 24)`` log-mel frames (T = 29 ``seconds``
    frames) into ``out[at:]``, with ``work`` (:func:`new_work`) as scratch; returns the
    next free index. One pass over the frames: each clipped frame adds to the band
    groups' and the loudness's DFTs, sums and cross products, and the means come out
    afterwards (a constant's DFT is the tables' column sums)."""
    if seconds == 1:
        ec, es, ecs, ess = _E1C, _E1S, _E1CS, _E1SS
        lc, ls, lcs, lss, lsyl, lf, wsq, n_syl = (_L1C, _L1S, _L1CS, _L1SS, _L1SYL, _L1F,
                                                  _W1SQ, _N_SYL1)
    else:
        ec, es, ecs, ess = _E3C, _E3S, _E3CS, _E3SS
        lc, ls, lcs, lss, lsyl, lf, wsq, n_syl = (_L3C, _L3S, _L3CS, _L3SS, _L3SYL, _L3F,
                                                  _W3SQ, _N_SYL3)
    n = frames.shape[0]
    ke = ec.shape[1]
    kl = lc.shape[1]
    top = frames[0, 0]
    for t in range(n):
        for b in range(N_MELS):
            top = max(top, frames[t, b])
    low = top - np.float32(RANGE_DB)
    work[: _TILT] = 0.0
    tilt = work[_TILT : _TILT + n]
    rise = work[_RISE : _RISE + n - 1]
    prev = work[_PREV:_CUR]
    cur = work[_CUR:_WORK]
    sums = np.zeros(_GROUPS + 1)  # per signal: sum, sum of x^2 w^2, sum of x w^2
    sq_w = np.zeros(_GROUPS + 1)
    x_w = np.zeros(_GROUPS + 1)
    cross = np.zeros((_GROUPS, _GROUPS))
    value = np.zeros(_GROUPS + 1)
    for t in range(n):
        for b in range(N_MELS):
            cur[b] = max(frames[t, b], low)
        loud = 0.0
        for i in range(_GROUPS):
            part = 0.0
            for b in range(i * _GROUP, (i + 1) * _GROUP):
                part += cur[b]
            value[i] = part / _GROUP
            loud += part
        value[_GROUPS] = loud / N_MELS
        hi = 0.0
        for b in range(_HIGH_FROM, N_MELS):
            hi += cur[b]
        lo = 0.0
        for b in range(_LOW_BANDS):
            lo += cur[b]
        tilt[t] = hi / (N_MELS - _HIGH_FROM) - lo / _LOW_BANDS
        if t > 0:
            up = 0.0
            for b in range(N_MELS):
                up += max(cur[b] - prev[b], 0.0)
            rise[t - 1] = up / N_MELS
        for b in range(N_MELS):
            prev[b] = cur[b]
        w2 = wsq[t]
        for i in range(_GROUPS + 1):
            v = value[i]
            sums[i] += v
            sq_w[i] += v * v * w2
            x_w[i] += v * w2
        for i in range(_GROUPS):
            for j in range(i, _GROUPS):
                cross[i, j] += value[i] * value[j]
            v = value[i]
            re = work[_RE_E + i * ke : _RE_E + (i + 1) * ke]
            im = work[_IM_E + i * ke : _IM_E + (i + 1) * ke]
            for j in range(ke):
                re[j] += v * ec[t, j]
                im[j] += v * es[t, j]
        v = value[_GROUPS]
        re = work[_RE_L : _RE_L + kl]
        im = work[_IM_L : _IM_L + kl]
        for j in range(kl):
            re[j] += v * lc[t, j]
            im[j] += v * ls[t, j]
    # Take the means out: DFT(x - m) = DFT(x) - m * column sums; the tapered energy
    # likewise.
    wsum = wsq.sum()
    for i in range(_GROUPS + 1):
        m = sums[i] / n
        energy = sq_w[i] - 2.0 * m * x_w[i] + m * m * wsum
        if i < _GROUPS:
            re = work[_RE_E + i * ke : _RE_E + (i + 1) * ke]
            im = work[_IM_E + i * ke : _IM_E + (i + 1) * ke]
            for j in range(ke):
                re[j] -= m * ecs[j]
                im[j] -= m * ess[j]
            out[at + i], _ = _share(re, im, n_syl, n_syl, ke, n, energy)
        else:
            re = work[_RE_L : _RE_L + kl]
            im = work[_IM_L : _IM_L + kl]
            for j in range(kl):
                re[j] -= m * lcs[j]
                im[j] -= m * lss[j]
            best = -1.0
            peak = 0.0
            syl = 0.0
            for j in range(lf.size):
                p = re[j] * re[j] + im[j] * im[j]
                if lsyl[j]:
                    syl += p
                if p > best:
                    best = p
                    peak = lf[j]
            _, total = _share(re, im, 0, lf.size, kl, n, energy)
            out[at + i] = syl / max(total, 1e-6)
            out[at + i + 1] = peak
            out[at + i + 2] = np.log10(total + 1e-3)
    at += _GROUPS + 3
    # Co-modulation: mean correlation of the band groups' envelopes.
    corr = 0.0
    for i in range(_GROUPS):
        for j in range(i + 1, _GROUPS):
            mi = sums[i] / n
            mj = sums[j] / n
            ni = max(np.sqrt(max(cross[i, i] - n * mi * mi, 0.0)), 1e-6)
            nj = max(np.sqrt(max(cross[j, j] - n * mj * mj, 0.0)), 1e-6)
            corr += (cross[i, j] - n * mi * mj) / (ni * nj)
    out[at] = corr / (_GROUPS * (_GROUPS - 1) // 2)
    at += 1
    # Spectral flux: the mean positive rise over the bands from one frame to the next.
    m = n - 1
    mean = 0.0
    for t in range(m):
        mean += rise[t]
    mean /= m
    var = 0.0
    for t in range(m):
        var += (rise[t] - mean) ** 2
    spread = np.sqrt(var / m)
    ordered = work[_SORT : _SORT + n]
    if seconds == 1:
        rises = ordered[:m]
        rises[:] = rise
        pos = 0.9 * (m - 1)  # numpy's linear percentile
        i0 = int(pos)
        lower = _select(rises, i0)
        upper = _select(rises, min(i0 + 1, m - 1))
        out[at] = mean
        out[at + 1] = spread
        out[at + 2] = lower + (upper - lower) * (pos - i0)
        at += 3
    above = mean + spread
    onsets = 0
    for t in range(1, m - 1):
        if rise[t] > above and rise[t] >= rise[t - 1] and rise[t] > rise[t + 1]:
            onsets += 1
    out[at] = onsets / seconds
    # High/low band alternation: frames on either side of the tilt's median.
    ordered[:] = tilt
    half = n // 2
    median = _select(ordered, half)
    if n % 2 == 0:
        median = 0.5 * (median + _select(ordered, half - 1))
    turns = 0
    previous = np.sign(tilt[0] - median)
    tmean = 0.0
    for t in range(n):
        tmean += tilt[t]
        side = np.sign(tilt[t] - median)
        if t > 0 and side != previous:
            turns += 1
        previous = side
    tmean /= n
    var = 0.0
    for t in range(n):
        var += (tilt[t] - tmean) ** 2
    out[at + 1] = turns / seconds
    out[at + 2] = np.sqrt(var / n)
    return at + 3


@numba.njit(cache=True)
def _row(history: np.ndarray, out: np.ndarray, work: np.ndarray) -> None:
    """Both windows of one second from its ``(87, 24)`` frame history (oldest first)."""
    at = _block(history[history.shape[0] - FRAMES_PER_SECOND_WINDOW:], 1, out, 0, work)
    _block(history, SECONDS, out, at, work)


@numba.njit(cache=True)
def _shift_in(history: np.ndarray, mel: np.ndarray) -> None:
    """Drop the oldest second of ``history`` and append ``mel`` (frame by frame, oldest
    first, so the overlapping copy never reads a row it already overwrote)."""
    keep = history.shape[0] - FRAMES_PER_SECOND_WINDOW
    for t in range(keep):
        for b in range(N_MELS):
            history[t, b] = history[t + FRAMES_PER_SECOND_WINDOW, b]
    for t in range(FRAMES_PER_SECOND_WINDOW):
        for b in range(N_MELS):
            history[keep + t, b] = mel[t, b]


@numba.njit(cache=True)
def _batch(mel: np.ndarray, out: np.ndarray, work: np.ndarray) -> None:
    history = np.full((HISTORY_FRAMES, N_MELS), _FLOOR_DB, np.float32)
    for i in range(mel.shape[0]):
        _shift_in(history, mel[i])
        _row(history, out[i], work)


@numba.njit(cache=True)
def _push(history: np.ndarray, mel: np.ndarray, out: np.ndarray, work: np.ndarray) -> None:
    _shift_in(history, mel)
    _row(history, out, work)


def modulation_batch(features: np.ndarray) -> np.ndarray:
    """Modulation values of every second of one stream, in order.

    Parameters
    ----------
    features : numpy.ndarray
        ``(n, 696)`` log-mel features of consecutive seconds of one stream.

    Returns
    -------
    numpy.ndarray
        ``(n, 25)`` float32 (see the module docstring); the seconds before the stream
        started read as the floor.
    """
    if features.ndim != 2 or features.shape[1] != N_FEATURES:
        raise ValueError(f"expected (n, {N_FEATURES}) features, got {features.shape}")
    mel = np.ascontiguousarray(features, np.float32).reshape(-1, FRAMES_PER_SECOND_WINDOW,
                                                              N_MELS)
    out = np.empty((mel.shape[0], N_MODULATION), np.float32)
    _batch(mel, out, new_work())
    return out


def modulation_of_runs(features: np.ndarray, file: np.ndarray, t: np.ndarray) -> np.ndarray:
    """:func:`modulation_batch` of rows from many streams: each run of consecutive seconds
    (same ``file``, ``t`` one more than the row before) is one stream."""
    n = features.shape[0]
    out = np.empty((n, N_MODULATION), np.float32)
    if n == 0:
        return out
    starts = np.flatnonzero(np.r_[True, (file[1:] != file[:-1]) | (t[1:] != t[:-1] + 1)])
    ends = np.r_[starts[1:], n]
    for a, b in zip(starts, ends, strict=True):
        out[a:b] = modulation_batch(features[a:b])
    return out


def new_history() -> np.ndarray:
    """A live stream's frame history before its first second: all floor."""
    return np.full((HISTORY_FRAMES, N_MELS), _FLOOR_DB, np.float32)


def push_modulation(history: np.ndarray, mel: np.ndarray, out: np.ndarray,
                    work: np.ndarray) -> None:
    """Add a second's ``(29, 24)`` log-mel frames to a live stream's ``history``
    (:func:`new_history`) and write its :data:`N_MODULATION` values into ``out``, with
    ``work`` (:func:`new_work`) as scratch."""
    _push(history, mel, out, work)
