"""Log-mel features of one-second windows of 8 kHz audio.

As in Altwlkany et al. (MASCOTS 2024): a 24-band mel spectrogram with a 31.25 ms hop,
29 frames per second, flattened to 29 x 24 = 696 values. At 8 kHz the hop is 250 samples;
each frame is a 256-sample (32 ms) Hann window, and the 29 frames are centred in the
second so that no part of it weighs more than another. The FFT is single precision
(``scipy.fft``), the dominant cost of the whole per-second path.
"""

from __future__ import annotations

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
_MEL = (
    _mel_filterbank(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX, htk=True)
    .T.astype(np.float32)
    * np.float32(4.0 / (_WINDOW.sum() ** 2))
    / np.float32(_mel_filterbank(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN,
                                 fmax=FMAX, htk=True).max())
)


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


def spectra_into(frames: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Power spectra ``(n, 29, 129)`` float32 of ``(n, 29, 256)`` Hann-windowed frames.

    ``scratch`` is ``(n, 29, 256)`` float32 work space. The log-mel bands and the
    periodicity statistics (:mod:`agent.features.context`) are both computed from these
    spectra, so a second costs one set of FFTs.
    """
    _window_into(frames, scratch)
    return power_of(rfft(scratch))


def log_mel_from_power(power: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Log-mel ``(n, 29, 24)`` float32 in dB of :func:`spectra_into` power, into ``out``."""
    np.matmul(power, _MEL, out=out)
    np.maximum(out, 1e-10, out=out)
    np.log10(out, out=out)
    np.multiply(out, 10.0, out=out)
    return out


def log_mel_into(frames: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Log-mel of ``(n, 29, 256)`` frames written into ``out`` ``(n, 29, 24)`` float32;
    returns the power spectra they came from (for the periodicity statistics).

    ``scratch`` is ``(n, 29, 256)`` float32 work space. The live stream keeps all three
    between seconds (``frames`` a fixed view of its window buffer), so a second costs no
    allocation beyond the FFT's own; :func:`extract_batch` makes them per call.
    """
    power = spectra_into(frames, scratch)
    log_mel_from_power(power, out)
    return power


@numba.njit(cache=True)
def _window_into(frames: np.ndarray, out: np.ndarray) -> None:
    """``frames * _WINDOW`` (float32, exact either way) in one call instead of numpy's
    broadcast over a strided view."""
    for r in range(frames.shape[0]):
        for j in range(frames.shape[1]):
            for k in range(frames.shape[2]):
                out[r, j, k] = frames[r, j, k] * _WINDOW[k]


@numba.njit(cache=True)
def _power_into(spec: np.ndarray, out: np.ndarray) -> None:
    flat, dest = spec.reshape(-1), out.reshape(-1)
    for i in range(flat.size):
        v = flat[i]
        dest[i] = v.real * v.real + v.imag * v.imag


def rfft(x: np.ndarray) -> np.ndarray:
    """``scipy.fft.rfft(x, axis=-1)`` of C-contiguous float32 ``x``, bit for bit."""
    if _pocketfft is None:
        return scipy.fft.rfft(x, axis=-1)
    return _pocketfft.r2c(x, (x.ndim - 1,), True, 0, None, 1)


def irfft(spec: np.ndarray, n: int) -> np.ndarray:
    """``scipy.fft.irfft(spec, n, axis=-1)`` of C-contiguous complex64 ``spec``, bit for bit."""
    if _pocketfft is None:
        return scipy.fft.irfft(spec, n, axis=-1)
    return _pocketfft.c2r(spec, (spec.ndim - 1,), n, False, 2, None, 1)


def power_of(spec: np.ndarray) -> np.ndarray:
    """``|spec|^2`` of a C-contiguous complex64 spectrum as float32.

    Bit for bit ``re * re + im * im`` in float32 (no fused multiply-add), in one compiled
    loop instead of three numpy calls over strided views.
    """
    out = np.empty(spec.shape, np.float32)
    _power_into(spec, out)
    return out


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
    scratch = np.empty((min(n, BATCH_CHUNK), FRAMES_PER_SECOND_WINDOW, N_FFT), np.float32)
    frames = frames_of(windows)
    for a in range(0, n, BATCH_CHUNK):
        b = min(a + BATCH_CHUNK, n)
        log_mel_into(frames[a:b], out[a:b], scratch[: b - a])
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
