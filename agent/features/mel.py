"""Log-mel features of one-second windows of 8 kHz audio.

As in Altwlkany et al. (MASCOTS 2024): a 24-band mel spectrogram with a 31.25 ms hop,
29 frames per second, flattened to 29 x 24 = 696 values. At 8 kHz the hop is 250 samples;
each frame is a 256-sample (32 ms) Hann window, and the 29 frames are centred in the
second so that no part of it weighs more than another. The FFT is single precision
(scipy's pocketfft), the largest cost of the whole per-second path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numba
import numpy as np
import scipy.fft
from librosa.filters import mel as _mel_filterbank

try:
    # scipy.fft's own pocketfft binding: the same transform, without the ~3 µs of argument
    # handling and backend dispatch that scipy.fft.rfft adds to every call (a tenth of a
    # second's whole cost). Private to scipy, hence the fallback.
    from scipy.fft._pocketfft import pypocketfft as _pocketfft
except ImportError:  # pragma: no cover - depends on the scipy build
    _pocketfft = None

from agent.audio import SAMPLE_RATE

N_MELS = 24
HOP = 250  # 31.25 ms at 8 kHz
N_FFT = 256
FRAMES_PER_SECOND_WINDOW = 29
N_FEATURES = FRAMES_PER_SECOND_WINDOW * N_MELS
FMIN = 100.0
FMAX = 3900.0
_OFFSET = (SAMPLE_RATE - ((FRAMES_PER_SECOND_WINDOW - 1) * HOP + N_FFT)) // 2
_FLOOR_DB = -100.0
# Batches are worked through this many seconds at a time: the FFT's buffers then stay in
# cache instead of costing fresh pages for every call (each row is computed alike).
BATCH_CHUNK = 16

_WINDOW = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann
# Power-spectrum to mel; magnitudes are scaled so that a full-scale sine reads about 0 dB.
_FILTERBANK = _mel_filterbank(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN,
                              fmax=FMAX, htk=True)
_MEL = (_FILTERBANK.T.astype(np.float32) * np.float32(4.0 / (_WINDOW.sum() ** 2))
        / np.float32(_FILTERBANK.max()))


def mel_band_centres() -> np.ndarray:
    """Centre frequency in Hz of each of the :data:`N_MELS` bands (for tests and plots)."""
    mels = np.linspace(2595 * np.log10(1 + FMIN / 700), 2595 * np.log10(1 + FMAX / 700),
                       N_MELS + 2)
    return (700 * (10 ** (mels / 2595) - 1))[1:-1]


def frames_of(windows: np.ndarray) -> np.ndarray:
    """View ``(n, 8000)`` windows as ``(n, 29, 256)`` frames without copying."""
    n = windows.shape[0]
    s0, s1 = windows.strides
    base = windows[:, _OFFSET:]
    return np.lib.stride_tricks.as_strided(
        base, shape=(n, FRAMES_PER_SECOND_WINDOW, N_FFT), strides=(s0, s1 * HOP, s1),
        writeable=False,
    )


# The periodicity statistics read every other frame (0, 2, ..., 28). Their buffer holds
# one more, all zeros: pocketfft transforms rows in SIMD groups, and 16 rows take 4.2 µs
# where 15 take 5.1.
EVEN_FRAMES = (FRAMES_PER_SECOND_WINDOW + 1) // 2
_EVEN_ROWS = EVEN_FRAMES + 1


@dataclass(frozen=True)
class SpectraBuffers:
    """Work space of :func:`spectra_into` for ``n`` seconds: the frames' complex spectra
    ``(n, 29, 129)`` complex64, their Hann-windowed power ``(n, 29, 129)`` float32, and
    the power of the even frames without its DC bin ``(n, 16, 129)`` float32 (contiguous,
    for the periodicity statistics' transform; the 16th row stays zero).

    The live stream keeps one between seconds; batch functions make one per call.
    """

    spec: np.ndarray
    power: np.ndarray
    even: np.ndarray
    ac: np.ndarray  # the even frames' autocorrelations, (n, 16, 129) float32

    @classmethod
    def for_seconds(cls, n: int) -> SpectraBuffers:
        shape = (n, FRAMES_PER_SECOND_WINDOW, N_FFT // 2 + 1)
        even = (n, _EVEN_ROWS, N_FFT // 2 + 1)
        return cls(spec=np.empty(shape, np.complex64), power=np.empty(shape, np.float32),
                   even=np.zeros(even, np.float32), ac=np.empty(even, np.float32))

    def head(self, n: int) -> SpectraBuffers:
        """The buffers of the first ``n`` seconds (views)."""
        return SpectraBuffers(spec=self.spec[:n], power=self.power[:n], even=self.even[:n],
                              ac=self.ac[:n])


def spectra_fn(frames: np.ndarray, buffers: SpectraBuffers) -> Callable[[], np.ndarray]:
    """:func:`spectra_into` of these frames into these buffers as a zero-argument call.

    The live stream binds its fixed frame view and buffers once and calls this every
    second; arguments resolved here cost nothing per call (about 0.8 µs of a second's
    work went to passing them through the layers below).
    """
    spec, power, even = buffers.spec, buffers.power, buffers.even
    interleaved = spec.view(np.float32)
    fft = rfft_call(frames, spec)

    def run() -> np.ndarray:
        fft()
        _hann_power_into(interleaved, power, even)
        return power

    return run


def spectra_into(frames: np.ndarray, buffers: SpectraBuffers) -> np.ndarray:
    """Power spectra ``(n, 29, 129)`` float32 of ``(n, 29, 256)`` frames under a periodic
    Hann window, written into ``buffers.power`` (and the even frames' into
    ``buffers.even``) and returned.

    The window is applied after the FFT, as the three-tap convolution it is in frequency
    (``0.5 X[k] - 0.25 (X[k-1] + X[k+1])``): the FFT then reads the frames straight from
    the signal, without a windowed copy. The log-mel bands and the periodicity statistics
    (:mod:`agent.features.context`) both come from these spectra, so a second costs one
    set of FFTs.
    """
    return spectra_fn(frames, buffers)()


def log_mel_from_power(power: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Log-mel ``(n, 29, 24)`` float32 in dB of :func:`spectra_into` power, into ``out``."""
    np.matmul(power, _MEL, out=out)
    np.maximum(out, 1e-10, out=out)
    np.log10(out, out=out)
    np.multiply(out, 10.0, out=out)
    return out


def log_mel_into(frames: np.ndarray, out: np.ndarray, buffers: SpectraBuffers) -> np.ndarray:
    """Log-mel of ``(n, 29, 256)`` frames written into ``out`` ``(n, 29, 24)`` float32;
    returns the power spectra they came from (for the periodicity statistics).

    The live stream keeps ``frames`` (a fixed view of its window buffer), ``out`` and
    ``buffers`` between seconds, so a second allocates nothing; :func:`extract_batch`
    makes them per call.
    """
    power = spectra_into(frames, buffers)
    log_mel_from_power(power, out)
    return power


@numba.njit(cache=True)
def _hann_power_into(spec: np.ndarray, out: np.ndarray, even: np.ndarray) -> None:
    """Power of the Hann-windowed spectra from the unwindowed ones: ``spec`` is the
    float32 view (re, im interleaved) of ``(n, 29, 129)`` complex spectra of real frames,
    whose bins -1 and 129 are the conjugates of bins 1 and 127. Frames 0, 2, ..., 28 are
    also copied into ``even`` ``(n, 16, 129)`` with bin 0 (DC) zeroed."""
    half, quarter = np.float32(0.5), np.float32(0.25)
    last = out.shape[2] - 1
    for r in range(out.shape[0]):
        for j in range(out.shape[1]):
            x = spec[r, j]
            o = out[r, j]
            re = half * x[0] - half * x[2]
            im = half * x[1]
            o[0] = re * re + im * im
            for k in range(1, last):
                re = half * x[2 * k] - quarter * (x[2 * k - 2] + x[2 * k + 2])
                im = half * x[2 * k + 1] - quarter * (x[2 * k - 1] + x[2 * k + 3])
                o[k] = re * re + im * im
            re = half * x[2 * last] - half * x[2 * last - 2]
            im = half * x[2 * last + 1]
            o[last] = re * re + im * im
            if j % 2 == 0:
                e = even[r, j // 2]
                e[0] = 0.0
                for k in range(1, last + 1):
                    e[k] = o[k]


def rfft_call(x: np.ndarray, out: np.ndarray) -> Callable[[], np.ndarray]:
    """``scipy.fft.rfft(x, axis=-1)`` of float32 ``x`` (strided views too) into complex64
    ``out``, as a zero-argument call bound to these arrays."""
    if _pocketfft is None:
        def run() -> np.ndarray:
            out[...] = scipy.fft.rfft(x, axis=-1)
            return out

        return run
    return partial(_pocketfft.r2c, x, (x.ndim - 1,), True, 0, out, 1)


def autocorrelation_call(power: np.ndarray, out: np.ndarray | None = None
                         ) -> Callable[[], np.ndarray]:
    """Circular autocorrelation, lags 0..128, of frames given their ``(..., 129)`` float32
    power spectra, as a zero-argument call bound to these arrays: a type-I DCT (the power
    is real and even), scaled by 1/256 as ``scipy.fft.irfft(power, 256)[..., :129]`` would
    give it; into ``out`` if given, else into a new array each call."""
    if _pocketfft is None:
        def run() -> np.ndarray:
            ac = scipy.fft.dct(power, type=1, axis=-1) / np.float32(2 * (power.shape[-1] - 1))
            if out is None:
                return ac
            out[...] = ac
            return out

        return run
    return partial(_pocketfft.dct, power, 1, (power.ndim - 1,), 2, out, 1, False)


def extract_batch(windows: np.ndarray) -> np.ndarray:
    """Features of many one-second windows at once.

    Parameters
    ----------
    windows : numpy.ndarray
        ``(n, 8000)`` float32 samples, each row one second at 8 kHz.

    Returns
    -------
    numpy.ndarray
        ``(n, 696)`` float32: log-mel power in dB, frame-major (frame 0's 24 bands first),
        floored at -100 dB.

    Examples
    --------
    >>> x = np.zeros((2, 8000), np.float32)
    >>> extract_batch(x).shape
    (2, 696)
    """
    windows = np.ascontiguousarray(windows, dtype=np.float32)
    if windows.ndim != 2 or windows.shape[1] != SAMPLE_RATE:
        raise ValueError(f"expected (n, {SAMPLE_RATE}) windows, got {windows.shape}")
    n = windows.shape[0]
    out = np.empty((n, FRAMES_PER_SECOND_WINDOW, N_MELS), np.float32)
    buffers = SpectraBuffers.for_seconds(min(n, BATCH_CHUNK))
    frames = frames_of(windows)
    for a in range(0, n, BATCH_CHUNK):
        b = min(a + BATCH_CHUNK, n)
        log_mel_into(frames[a:b], out[a:b], buffers.head(b - a))
    return out.reshape(n, N_FEATURES)


def extract_second(window: np.ndarray) -> np.ndarray:
    """Features of one second of audio: ``(8000,)`` float32 → ``(696,)`` float32."""
    return extract_batch(window.reshape(1, SAMPLE_RATE))[0]


def seconds_of(samples: np.ndarray) -> np.ndarray:
    """Split a signal into whole one-second windows ``(n, 8000)``; a partial tail is dropped."""
    n = samples.shape[0] // SAMPLE_RATE
    return np.ascontiguousarray(samples[: n * SAMPLE_RATE], dtype=np.float32).reshape(
        n, SAMPLE_RATE
    )
