"""Hann-window label smoothing and per-second agreement (Altwlkany et al., eqs. 1–2).

Each frame label is replaced by the class with the largest Hann-weighted count of labels
in a window around it (eq. 2). The paper used 301 frames at the CNN14 rate of 100 frames
per second, i.e. ±1.5 s; :func:`window_frames` keeps that span at another teacher's frame
rate. A second becomes a training point only if all of its smoothed frames agree.
"""

from __future__ import annotations

import numpy as np

PAPER_WINDOW_FRAMES = 301
PAPER_FRAME_RATE = 100.0


def window_frames(frame_rate: float) -> int:
    """Odd window length spanning the paper's 3.01 s at ``frame_rate`` frames per second."""
    n = int(round(PAPER_WINDOW_FRAMES / PAPER_FRAME_RATE * frame_rate))
    return max(1, n + (n % 2 == 0))


def hann_smooth(labels: np.ndarray, *, n_classes: int, window: int) -> np.ndarray:
    """Smooth a frame-label sequence with a Hann-weighted majority vote.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(T,)`` integer class per frame.
    n_classes : int
        Number of classes.
    window : int
        Odd window length ``2W + 1``; weights are ``numpy.hanning(window)`` (zero at both
        ends, 1 in the middle). Frames outside the sequence do not vote.

    Returns
    -------
    numpy.ndarray
        ``(T,)`` smoothed labels: ``argmax_c sum_k w(k) [labels[t+k] == c]``; ties go to
        the lower class index.

    Examples
    --------
    >>> hann_smooth(np.array([0, 0, 1, 0, 0]), n_classes=2, window=5)
    array([0, 0, 0, 0, 0])
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number, got {window}")
    labels = np.asarray(labels, dtype=np.intp)
    if labels.size == 0:
        return labels.copy()
    weights = np.hanning(window) if window > 1 else np.ones(1)
    onehot = np.zeros((labels.size, n_classes), np.float64)
    onehot[np.arange(labels.size), labels] = 1.0
    half = window // 2
    votes = np.stack(
        [np.convolve(onehot[:, c], weights)[half : half + labels.size] for c in range(n_classes)],
        axis=1,
    )
    # Snap floating-point noise so exact ties resolve deterministically.
    return np.argmax(np.round(votes, 9), axis=1)


def per_second(smoothed: np.ndarray, *, frame_rate: float,
               n_seconds: int) -> tuple[np.ndarray, np.ndarray]:
    """Label each whole second and say whether all of its frames agree.

    Frame ``j`` (centred on ``(j + 0.5) / frame_rate``) belongs to second
    ``floor((j + 0.5) / frame_rate)``.

    Returns
    -------
    (labels, agreed) : tuple of numpy.ndarray
        ``(n_seconds,)`` majority label of each second's frames, and ``(n_seconds,)`` bool,
        True where every frame of that second carries the same smoothed label.
    """
    second_of = np.floor((np.arange(smoothed.size) + 0.5) / frame_rate).astype(np.intp)
    labels = np.zeros(n_seconds, np.intp)
    agreed = np.zeros(n_seconds, bool)
    for s in range(n_seconds):
        frames = smoothed[second_of == s]
        if frames.size == 0:
            continue
        values, counts = np.unique(frames, return_counts=True)
        labels[s] = values[np.argmax(counts)]
        agreed[s] = values.size == 1
    return labels, agreed
