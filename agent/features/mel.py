"""Log-mel features of one-second windows of 8 kHz audio.

As in Altwlkany et al. (MASCOTS 2024): a 24-band mel spectrogram with a 31.25 ms hop,
29 frames per second, flattened to 29 x 24 = 696 values. At 8 kHz the hop is 250 samples;
each frame is a 256-sample (32 ms) Hann window, and the 29 frames are centred in the
second so that no part of it weighs more than another. The FFT is single precision
(``scipy.fft``), the dominant cost of the whole per-second path.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from librosa.filters import mel as _mel_filterbank

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


def _frames(windows: np.ndarray) -> np.ndarray:
    """View ``(n, 8000)`` windows as ``(n, 29, 256)`` frames without copying."""
    n = windows.shape[0]
    s0, s1 = windows.strides
    base = windows[:, _OFFSET:]
    return np.lib.stride_tricks.as_strided(
        base, shape=(n, FRAMES_PER_SECOND_WINDOW, N_FFT), strides=(s0, s1 * HOP, s1),
        writeable=False,
    )


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
    spec = scipy.fft.rfft(_frames(windows) * _WINDOW, axis=-1)
    power = spec.real * spec.real + spec.imag * spec.imag
    mel = power @ _MEL
    np.maximum(mel, 1e-10, out=mel)
    db = np.log10(mel, out=mel)
    db *= 10.0
    return db.reshape(windows.shape[0], N_FEATURES)


def extract_second(window: np.ndarray) -> np.ndarray:
    """Features of one second of audio: ``(8000,)`` float32 → ``(696,)`` float32."""
    return extract_batch(window.reshape(1, SAMPLE_RATE))[0]


def seconds_of(samples: np.ndarray) -> np.ndarray:
    """Split a signal into whole one-second windows ``(n, 8000)``; a partial tail is dropped."""
    n = samples.shape[0] // SAMPLE_RATE
    return np.ascontiguousarray(samples[: n * SAMPLE_RATE], dtype=np.float32).reshape(
        n, SAMPLE_RATE
    )
