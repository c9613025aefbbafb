"""Landmark fingerprints: pairs of spectral peaks hashed with their frequency and time gap.

The scheme follows Wang (2003): find prominent local maxima of the log-magnitude
spectrogram, pair each *anchor* peak with a few later peaks in a target zone, and hash
(anchor frequency, frequency difference, time difference). A hash survives codecs and noise
as long as both peaks do, and it carries no absolute time, so a query that starts anywhere
in a (looping) announcement lines up with the reference at one constant time offset.

Tuned for 8 kHz telephone audio: the band is restricted to 250–3500 Hz (what G.711, GSM,
AMR and narrowband Opus all keep), and peaks are picked densely (about 30 per second) so
that a 2-s query still yields well over a hundred hashes.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from agent.audio import SAMPLE_RATE

F1_BITS = 8
DF_BITS = 6
DT_BITS = 6
HASH_BITS = F1_BITS + DF_BITS + DT_BITS


@dataclass(frozen=True, slots=True)
class LandmarkParams:
    """How peaks are picked and paired. Changing any value changes every hash.

    Attributes
    ----------
    n_fft, hop : int
        STFT size and hop in samples at 8 kHz (512/128: 15.6 Hz bins, 16 ms frames).
    f_min_hz, f_max_hz : float
        Band in which peaks are picked.
    peak_freq_radius, peak_time_radius : int
        Half-size (bins, frames) of the neighbourhood a peak must dominate.
    peaks_per_second : int
        Density: a peak is kept if fewer than this many stronger peaks lie within ±0.5 s.
    floor_db : float
        Peaks weaker than the loudest bin of their frame minus this are ignored.
    context_db : float
        Peaks weaker than the loudest bin within ±1 s minus this are ignored, so pauses
        (where only line noise remains) give no hashes.
    fan_out : int
        Targets paired with each anchor (the nearest ones in time inside the zone).
    dt_max, df_max : int
        Target zone: 1..dt_max frames later, within ±df_max bins.
    """

    n_fft: int = 512
    hop: int = 128
    f_min_hz: float = 250.0
    f_max_hz: float = 3500.0
    peak_freq_radius: int = 6
    peak_time_radius: int = 3
    peaks_per_second: int = 30
    floor_db: float = 45.0
    context_db: float = 35.0
    fan_out: int = 5
    dt_max: int = 2**DT_BITS - 1
    df_max: int = 2 ** (DF_BITS - 1) - 1

    @property
    def frame_s(self) -> float:
        """Duration of one frame (the unit of landmark times) in seconds."""
        return self.hop / SAMPLE_RATE

    @property
    def version(self) -> str:
        """A string that changes whenever the hashes would; stored with each library."""
        return "lm1:" + ",".join(str(v) for v in astuple(self))


DEFAULT_PARAMS = LandmarkParams()


@dataclass(frozen=True, slots=True)
class Landmarks:
    """The hashes of one signal and the frame of each hash's anchor peak (same length)."""

    hashes: np.ndarray  # uint32
    times: np.ndarray  # int32, frames

    def __len__(self) -> int:
        return int(self.hashes.size)

    def to_bytes(self) -> bytes:
        """Pack as little-endian (hash uint32, time uint32) pairs for storage."""
        out = np.empty((self.hashes.size, 2), dtype="<u4")
        out[:, 0] = self.hashes
        out[:, 1] = self.times
        return out.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Landmarks:
        """Inverse of :meth:`to_bytes`."""
        arr = np.frombuffer(data, dtype="<u4").reshape(-1, 2)
        return cls(hashes=arr[:, 0].astype(np.uint32), times=arr[:, 1].astype(np.int32))


def _log_spectrogram(samples: np.ndarray, p: LandmarkParams) -> np.ndarray:
    """(frames, bins) log magnitude in dB, only the bins of the peak band."""
    x = np.asarray(samples, dtype=np.float32)
    if x.size < p.n_fft:
        x = np.pad(x, (0, p.n_fft - x.size))
    frames = sliding_window_view(x, p.n_fft)[:: p.hop]
    window = np.hanning(p.n_fft).astype(np.float32)
    lo = int(np.ceil(p.f_min_hz * p.n_fft / SAMPLE_RATE))
    hi = int(np.floor(p.f_max_hz * p.n_fft / SAMPLE_RATE)) + 1
    spec = np.abs(np.fft.rfft(frames * window, axis=1))[:, lo:hi]
    return 20.0 * np.log10(spec + 1e-6)


def _max_filter(a: np.ndarray, rt: int, rf: int) -> np.ndarray:
    """Maximum over a (2rt+1)×(2rf+1) rectangle around each cell (separable, by shifts)."""
    out = a.copy()
    for d in range(1, rt + 1):
        np.maximum(out[d:], a[:-d], out=out[d:])
        np.maximum(out[:-d], a[d:], out=out[:-d])
    rows = out.copy()
    for d in range(1, rf + 1):
        np.maximum(out[:, d:], rows[:, :-d], out=out[:, d:])
        np.maximum(out[:, :-d], rows[:, d:], out=out[:, :-d])
    return out


def find_peaks(samples: np.ndarray, p: LandmarkParams = DEFAULT_PARAMS) -> np.ndarray:
    """Prominent spectral peaks as an (n, 2) int32 array of (frame, bin), sorted by frame.

    ``bin`` counts from the first bin of the peak band. A peak dominates its neighbourhood,
    stands within ``floor_db`` of its frame's loudest bin and above digital silence, and is
    among the ``peaks_per_second`` strongest within ±0.5 s (a sliding window, so the choice
    does not depend on where the signal was cut).
    """
    spec = _log_spectrogram(samples, p)
    if spec.shape[0] == 0:
        return np.zeros((0, 2), dtype=np.int32)
    local_max = spec == _max_filter(spec, p.peak_time_radius, p.peak_freq_radius)
    frame_top = spec.max(axis=1)
    reach = int(round(1.0 / p.frame_s))
    padded = np.pad(frame_top, reach, constant_values=-np.inf)
    context_top = sliding_window_view(padded, 2 * reach + 1).max(axis=-1)
    # -20 dBFS full-scale sine ≈ 20*log10(n_fft/4 * 0.1); 90 dB below that is silence/dither.
    absolute_floor = 20.0 * np.log10(p.n_fft / 4 * 0.1) - 90.0
    ok = (
        local_max
        & (spec >= frame_top[:, None] - p.floor_db)
        & (spec >= context_top[:, None] - p.context_db)
        & (spec > absolute_floor)
    )
    t, f = np.nonzero(ok)
    if t.size == 0:
        return np.zeros((0, 2), dtype=np.int32)
    v = spec[t, f]
    half = int(round(0.5 / p.frame_s))
    lo = np.searchsorted(t, t - half, side="left")
    hi = np.searchsorted(t, t + half, side="right")
    stronger = np.zeros(t.size, dtype=np.int32)
    width = int((hi - lo).max())
    # Count stronger peaks in each peak's ±0.5 s window, one window position at a time.
    for k in range(width):
        j = lo + k
        inside = j < hi
        jj = np.where(inside, j, 0)
        stronger += inside & (v[jj] > v)
    keep = stronger < p.peaks_per_second
    return np.stack([t[keep], f[keep]], axis=1).astype(np.int32)


def pair_peaks(peaks: np.ndarray, p: LandmarkParams = DEFAULT_PARAMS) -> Landmarks:
    """Pair each anchor with up to ``fan_out`` nearest later peaks in its target zone.

    Returns
    -------
    Landmarks
        ``hash = f1 << 12 | (df + 32) << 6 | dt`` (20 bits), time = anchor frame.
    """
    n = peaks.shape[0]
    t = peaks[:, 0].astype(np.int64)
    f = peaks[:, 1].astype(np.int64)
    taken = np.zeros(n, dtype=np.int32)
    hashes: list[np.ndarray] = []
    times: list[np.ndarray] = []
    max_f1 = 2**F1_BITS - 1
    for k in range(1, n):
        a = np.arange(n - k)
        b = a + k
        dt = t[b] - t[a]
        live = (taken[a] < p.fan_out) & (dt <= p.dt_max)
        if not live.any() and (dt > p.dt_max).all():
            break
        df = f[b] - f[a]
        use = live & (dt >= 1) & (np.abs(df) <= p.df_max)
        idx = a[use]
        if idx.size:
            taken[idx] += 1
            f1 = np.minimum(f[idx], max_f1)
            h = (f1 << (DF_BITS + DT_BITS)) | ((df[use] + 2 ** (DF_BITS - 1)) << DT_BITS) | dt[use]
            hashes.append(h.astype(np.uint32))
            times.append(t[idx].astype(np.int32))
    if not hashes:
        return Landmarks(np.zeros(0, np.uint32), np.zeros(0, np.int32))
    h_all = np.concatenate(hashes)
    t_all = np.concatenate(times)
    order = np.argsort(t_all, kind="stable")
    return Landmarks(hashes=h_all[order], times=t_all[order])


def fingerprint(samples: np.ndarray, params: LandmarkParams = DEFAULT_PARAMS) -> Landmarks:
    """Landmark hashes of 8 kHz mono float samples.

    Parameters
    ----------
    samples : numpy.ndarray
        1-D float audio at 8 kHz, any length (shorter than one FFT gives no hashes).
    params : LandmarkParams
        Peak-picking and pairing parameters; the library stores their ``version``.

    Returns
    -------
    Landmarks
        Deterministic for a given input; shifting the input by whole hops shifts every
        time by the same number of frames and leaves the hashes unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(16000) / 8000
    >>> lm = fingerprint(np.sin(2 * np.pi * (500 + 400 * t) * t).astype(np.float32))
    >>> len(lm) > 0
    True
    """
    return pair_peaks(find_peaks(samples, params), params)
