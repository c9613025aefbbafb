"""Render tone specs to audio: the reference signals for tests, benchmarks and the corpus."""

from __future__ import annotations

import numpy as np

from agent.audio import SAMPLE_RATE
from agent.tones.plan import ToneSpec, ToneStep


def _unit_rms(step: ToneStep) -> float:
    """RMS of a step rendered with unit-amplitude components (distinct frequencies)."""
    if step.am_hz is not None:
        # sin(a) * (1 + cos(b)) / 2: mean square is (1/2) * (1/4) * (1 + 1/2).
        return float(np.sqrt(3.0 / 16.0))
    return float(np.sqrt(len(step.freqs) / 2.0))


def _step_wave(step: ToneStep, t: np.ndarray) -> np.ndarray:
    if step.am_hz is not None:
        envelope = 0.5 * (1.0 + np.cos(2.0 * np.pi * step.am_hz * t))
        return np.sin(2.0 * np.pi * step.freqs[0] * t) * envelope
    out = np.zeros_like(t)
    for f in step.freqs:
        out += np.sin(2.0 * np.pi * f * t)
    return out


def render(
    spec: ToneSpec,
    *,
    duration_s: float,
    sr: int = SAMPLE_RATE,
    level_dbfs: float = -20.0,
    phase_s: float = 0.0,
) -> np.ndarray:
    """Synthesise a tone as it would be played from ``phase_s`` into its cadence.

    Parameters
    ----------
    spec : ToneSpec
        The tone; a repeating spec cycles for the whole duration, a one-shot spec (SIT)
        plays once and is then silent (or holds its last step if that one has no duration).
    duration_s : float
        Length of the output in seconds.
    sr : int
        Sample rate in Hz.
    level_dbfs : float
        Level of the tone's "on" parts: ``20 log10(rms * sqrt(2))`` (AES17, full-scale sine
        = 0 dBFS). Dual tones share it equally; an ``a*b`` step is ``a`` with 100%
        amplitude modulation by ``b``, i.e. ``sin(2 pi a t) (1 + cos(2 pi b t)) / 2``.
    phase_s : float
        Where in the cadence the output starts (seconds; taken modulo the period).

    Returns
    -------
    numpy.ndarray
        float32 samples.

    Examples
    --------
    >>> from agent.tones.plan import parse_tone
    >>> (busy,) = parse_tone("[480+620/500,0/500]", source="asterisk")
    >>> render(busy, duration_s=2.0).shape
    (16000,)
    """
    if duration_s < 0 or sr <= 0:
        raise ValueError("duration_s must be >= 0 and sr > 0")
    n = int(round(duration_s * sr))
    t = (np.arange(n, dtype=np.float64) / sr) + phase_s
    ends = np.cumsum([s.ms for s in spec.steps], dtype=np.float64) / 1000.0
    period = float(ends[-1])
    if spec.repeat and period > 0:
        pos = np.mod(t, period)
    else:
        pos = t
    idx = np.searchsorted(ends, pos, side="right")
    last = spec.steps[-1]
    if last.ms == 0:
        # A last step without a duration holds for ever.
        idx = np.minimum(idx, len(spec.steps) - 1)
    target_rms = 10.0 ** (level_dbfs / 20.0) / np.sqrt(2.0)
    out = np.zeros(n, dtype=np.float64)
    for k, step in enumerate(spec.steps):
        if not step.is_tone:
            continue
        mask = idx == k
        if mask.any():
            out[mask] = _step_wave(step, t[mask]) * (target_rms / _unit_rms(step))
    return out.astype(np.float32)


def level_dbfs(x: np.ndarray) -> float:
    """The AES17 level of ``x`` in dBFS (full-scale sine = 0 dBFS); -inf for silence."""
    ms = float(np.mean(np.square(x, dtype=np.float64))) if len(x) else 0.0
    return 10.0 * np.log10(2.0 * ms) if ms > 0 else float("-inf")


# Telcordia SIT encodings: (first frequency, second frequency, first length, second length);
# the third segment is always 1776.7 Hz, long. Short = 274 ms, long = 380 ms.
NA_SIT: dict[str, tuple[float, float, int, int]] = {
    "IC": (913.8, 1370.6, 274, 274),
    "VC": (985.2, 1370.6, 380, 274),
    "RO": (913.8, 1428.5, 274, 380),
    "RO-distant": (985.2, 1370.6, 274, 380),
    "NC": (913.8, 1370.6, 380, 380),
    "NC-distant": (985.2, 1428.5, 380, 380),
    "IO": (913.8, 1428.5, 380, 274),
}


def na_sit_spec(code: str) -> ToneSpec:
    """The North-American SIT for ``code`` (a key of :data:`NA_SIT`) as a one-shot spec.

    Examples
    --------
    >>> [s.ms for s in na_sit_spec("VC").steps]
    [380, 274, 380]
    """
    f1, f2, d1, d2 = NA_SIT[code]
    steps = (
        ToneStep((f1,), None, d1),
        ToneStep((f2,), None, d2),
        ToneStep((1776.7,), None, 380),
    )
    return ToneSpec(steps=steps, source="Telcordia GR-1162", repeat=False)
