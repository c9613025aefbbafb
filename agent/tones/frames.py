"""Stage 1 of tone detection: the audio as 32-ms frames every 10 ms, each frame measured.

Each frame's level and its *purity*, the share of its energy in its two strongest
spectral peaks. Purity does not depend on level, so a loud signal is not a tone unless it
is one (spandsp's single-frequency descriptors skip this check); a minimum absolute level
keeps digital silence and line noise out. A frame is *steady* when its main peak holds
still (speech harmonics glide), and its peak frequency, interpolated, says which SIT or
CED band it lies in (:mod:`agent.tones.sit`).

The last few seconds of audio are kept as well (:class:`_History`): the long FFTs of a
whole part and the fits of its first or last few milliseconds read them back.
"""

from __future__ import annotations

import functools
from typing import overload

import numpy as np

from agent.tones.config import ToneConfig

FRAME_S = 0.032
HOP_S = 0.010
_OFFS = np.arange(-2, 3)  # a peak's +-2 bins hold a Hann-windowed tone's main lobe


@overload
def _level_db(mean_square: float) -> float: ...


@overload
def _level_db(mean_square: np.ndarray) -> np.ndarray: ...


def _level_db(mean_square: float | np.ndarray) -> float | np.ndarray:
    """Level in dBFS of samples with this mean square (float or array): a full-scale sine
    reads 0 dB, as the tone plans' levels do. (Doubling is exact, so where the division
    by the length happens does not change the number.)"""
    return 10.0 * np.log10(2.0 * mean_square + 1e-20)


@functools.lru_cache(maxsize=64)
def _hann(n: int) -> np.ndarray:
    """A periodic Hann window (cached: segment lengths repeat)."""
    w = np.hanning(n + 1)[:-1]
    w.flags.writeable = False
    return w


class _History:
    """The stream's last 4 s in a ring buffer, addressed by stream time.

    Long enough for the middle of a 4-s SIT or ringback part; older audio is gone.
    """

    def __init__(self, sr: int) -> None:
        self.sr = sr
        self.hist_len = int(4 * sr)
        self.reset()

    def reset(self) -> None:
        """Forget the audio: the next sample pushed is time 0."""
        self.n_in = 0
        self.hist = np.zeros(self.hist_len, dtype=np.float32)
        self.hist_pos = 0

    def push(self, x: np.ndarray) -> None:
        """Keep the last few seconds in a ring buffer for the long per-segment FFTs."""
        n = len(x)
        if n >= self.hist_len:
            self.hist[:] = x[-self.hist_len :]
            self.hist_pos = 0
        else:
            end = self.hist_pos + n
            if end <= self.hist_len:
                self.hist[self.hist_pos : end] = x
            else:
                k = self.hist_len - self.hist_pos
                self.hist[self.hist_pos :] = x[:k]
                self.hist[: n - k] = x[k:]
            self.hist_pos = end % self.hist_len
        self.n_in += n

    def samples(self, t0: float, t1: float, limit: int) -> np.ndarray:
        """Samples between times t0 and t1 (seconds since reset), at most ``limit`` centred."""
        a, b = int(round(t0 * self.sr)), int(round(t1 * self.sr))
        if b - a > limit:
            # The middle of the span or, when that has left the buffer (Suriname's 15-s
            # ringback burst), its newest stretch still held.
            a = max((a + b) // 2 - limit // 2, self.n_in - self.hist_len)
            b = min(a + limit, b)
        a, b = max(a, self.n_in - self.hist_len, 0), min(b, self.n_in)
        if b <= a:
            return np.zeros(0)
        # Absolute sample i lives at (i - n_in + hist_pos) mod hist_len.
        idx = np.arange(a - self.n_in, b - self.n_in) + self.hist_pos
        return self.hist.take(idx, mode="wrap")


class _FrameAnalyser:
    """Level, tonality, steadiness and frequency band of each frame of a batch.

    Parameters
    ----------
    config : ToneConfig
        ``min_level_dbfs`` and ``frame_purity`` make a frame tonal.
    sr : int
        Sample rate of the frames.
    band_edges : np.ndarray
        Sorted (low, high) edges of the bands a frame's peak is placed in, band 1 first
        (see :func:`agent.tones.sit.band_edges`).
    """

    def __init__(self, config: ToneConfig, sr: int, band_edges: np.ndarray) -> None:
        self.config = config
        self.frame = int(round(FRAME_S * sr))
        self.hop = int(round(HOP_S * sr))
        self.nfft = 1 << (self.frame - 1).bit_length()
        self.window = np.hanning(self.frame + 1)[:-1].astype(np.float64)
        self.wnorm = float(np.sum(self.window**2))
        freqs = np.arange(self.nfft // 2 + 1) * sr / self.nfft
        self.band = (int(np.searchsorted(freqs, 150.0)), int(np.searchsorted(freqs, 3700.0)))
        self.bin_hz = sr / self.nfft
        self.band_edges = band_edges
        self.reset()

    def reset(self) -> None:
        """Forget the peaks of the last frame seen."""
        self.last_k = (-10, -10)

    def analyse(self, frames: np.ndarray, *, idle: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """Per frame of ``frames`` (one per row): level (dBFS), tonal, steady and band (1-3
        SIT segments, 4 CED, 0 none). ``None`` when ``idle`` (nothing under way) and no
        frame is loud enough, or none tonal: there is nothing to look at."""
        n = len(frames)
        wf = frames * self.window
        level = _level_db(np.einsum("ij,ij->i", wf, wf) / self.wnorm)
        loud = level >= self.config.min_level_dbfs
        if idle and not loud.any():
            return None
        spec = np.fft.rfft(wf, self.nfft)
        power = spec.real**2 + spec.imag**2
        total = power[:, 1:].sum(axis=1) + 1e-30
        lo, hi = self.band
        pb = power[:, lo:hi]
        # Peaks are searched away from the band edges so that +-2 bins stay inside it.
        k1 = pb[:, 2:-2].argmax(axis=1) + 2
        rows = np.arange(n)[:, None]
        near = k1[:, None] + _OFFS
        e1 = pb[rows, near]
        around_k1 = e1[:, 1:4].T.copy()
        pb[rows, near] = 0.0
        k2 = pb[:, 2:-2].argmax(axis=1) + 2
        e2 = pb[rows, k2[:, None] + _OFFS]
        purity = (e1.sum(axis=1) + e2.sum(axis=1)) / total
        tonal = (purity >= self.config.frame_purity) & loud
        # A tone starts only on frames whose peak holds still (speech harmonics glide);
        # the two components of a dual tone may take turns as the stronger one.
        prev1 = np.concatenate([[self.last_k[0]], k1[:-1]])
        prev2 = np.concatenate([[self.last_k[1]], k2[:-1]])
        self.last_k = (int(k1[-1]), int(k2[-1]))
        if idle and not tonal.any():
            return None
        steady = tonal & (np.minimum(np.abs(k1 - prev1), np.abs(k1 - prev2)) <= 1)
        # Parabolic interpolation of the log spectrum around the main peak.
        la, lb, lc = np.log(around_k1 + 1e-30)
        den = la - 2.0 * lb + lc
        delta = np.where(den < 0, 0.5 * (la - lc) / np.where(den < 0, den, -1.0), 0.0)
        peak_hz = (lo + k1 + delta) * self.bin_hz
        # Inside band b (1-based) the edge index is odd: 2b - 1.
        edge = np.searchsorted(self.band_edges, peak_hz)
        band = np.where(tonal & (edge % 2 == 1), (edge + 1) // 2, 0)
        return level, tonal, steady, band
