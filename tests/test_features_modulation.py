"""The modulation block: the syllable rhythm of speech, the same numbers live and in training."""

from __future__ import annotations

import numpy as np
import pytest

from agent.audio import SAMPLE_RATE
from agent.features import extract_batch, seconds_of
from agent.features.mel import _FLOOR_DB
from agent.features.modulation import (
    FRAME_RATE,
    N_MODULATION,
    RANGE_DB,
    modulation_batch,
    modulation_of_runs,
    new_history,
    new_work,
    push_modulation,
)

GROUPS = ((0, 6), (6, 12), (12, 18), (18, 24))


def _reference(frames: np.ndarray, seconds: int) -> list[float]:
    """The block's definition in plain numpy (full FFTs, no Parseval shortcut), for one
    window of ``(T, 24)`` frames."""
    g = np.maximum(frames.astype(np.float64), frames.max() - RANGE_DB)
    env = np.stack([g[:, a:b].mean(axis=1) for a, b in GROUPS])
    loud = g.mean(axis=1)
    window = np.hanning(g.shape[0]) if seconds > 1 else np.ones(g.shape[0])
    freq = np.fft.rfftfreq(g.shape[0], 1 / FRAME_RATE)
    whole = (freq >= 0.6) & (freq <= 16.0)
    syl = (freq >= 2.0) & (freq <= 8.0)

    def spectrum(x: np.ndarray) -> tuple[float, float, float]:
        power = np.abs(np.fft.rfft((x - x.mean()) * window)) ** 2
        total = power[whole].sum()
        return power[syl].sum() / max(total, 1e-6), freq[whole][power[whole].argmax()], total

    out = [spectrum(e)[0] for e in env]
    share, peak, total = spectrum(loud)
    out += [share, peak, np.log10(total + 1e-3)]
    c = env - env.mean(axis=1, keepdims=True)
    c /= np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-6)
    out.append(np.mean([c[i] @ c[j] for i in range(4) for j in range(i + 1, 4)]))
    rise = np.maximum(np.diff(g, axis=0), 0).mean(axis=1)
    if seconds == 1:
        out += [rise.mean(), rise.std(), np.percentile(rise, 90)]
    mid = rise[1:-1]
    onsets = (mid > rise.mean() + rise.std()) & (mid >= rise[:-2]) & (mid > rise[2:])
    out.append(onsets.sum() / seconds)
    tilt = g[:, 14:].mean(axis=1) - g[:, :10].mean(axis=1)
    side = np.sign(tilt - np.median(tilt))
    out += [(side[1:] != side[:-1]).sum() / seconds, tilt.std()]
    return out


def _speech_like(seconds: int, rate_hz: float, seed: int = 0) -> np.ndarray:
    """Formant-like partials switched on and off at a syllable rate, with noise bursts
    (fricatives) between them."""
    rng = np.random.default_rng(seed)
    t = np.arange(seconds * SAMPLE_RATE) / SAMPLE_RATE
    on = (np.sin(2 * np.pi * rate_hz * t) > 0).astype(np.float32)
    voiced = sum(np.sin(2 * np.pi * f * t) for f in (500, 1100, 2400)) * on
    fricative = rng.standard_normal(t.size) * (1 - on) * 0.3
    x = 0.1 * voiced + 0.05 * np.convolve(fricative, [1, -1], "same")
    return x.astype(np.float32)


def test_the_kernel_computes_the_definition() -> None:
    feats = extract_batch(seconds_of(_speech_like(5, 4.0)))
    got = modulation_batch(feats)
    mel = feats.reshape(-1, 29, 24)
    padded = np.concatenate([np.full((2, 29, 24), _FLOOR_DB, np.float32), mel])
    for i in range(len(mel)):
        history = padded[i : i + 3].reshape(87, 24)
        want = _reference(history[58:], 1) + _reference(history, 3)
        np.testing.assert_allclose(got[i], want, rtol=2e-4, atol=2e-5)


def test_the_live_stream_gives_the_training_numbers() -> None:
    feats = extract_batch(seconds_of(_speech_like(6, 5.0, seed=1)))
    batch = modulation_batch(feats)
    history, work = new_history(), new_work()
    out = np.empty(N_MODULATION, np.float32)
    for i, row in enumerate(feats):
        push_modulation(history, row.reshape(29, 24), out, work)
        np.testing.assert_array_equal(out, batch[i])


def test_syllable_rhythm_is_what_it_measures() -> None:
    speech = modulation_batch(extract_batch(seconds_of(_speech_like(4, 4.0))))[-1]
    t = np.arange(4 * SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.2 * np.sin(2 * np.pi * 425 * t)).astype(np.float32)
    slow = (0.2 * np.sin(2 * np.pi * 440 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t))
            ).astype(np.float32)
    steady = modulation_batch(extract_batch(seconds_of(tone)))[-1]
    swell = modulation_batch(extract_batch(seconds_of(slow)))[-1]
    share, energy, turns = 18, 20, 23  # over the 3-s window: loudness 2-8 Hz share, log10
    # modulation energy, high/low-band alternations per second
    assert speech[share] > 0.4 > 0.1 > swell[share]
    assert speech[energy] > steady[energy] + 5  # a steady tone hardly modulates at all
    assert speech[turns] > 2 * swell[turns]


def test_runs_restart_at_each_file_and_at_a_gap() -> None:
    feats = extract_batch(seconds_of(_speech_like(4, 4.0)))
    both = np.concatenate([feats, feats])
    got = modulation_of_runs(both, np.array([0] * 4 + [1] * 4), np.array([0, 1, 2, 3] * 2))
    np.testing.assert_array_equal(got[:4], got[4:])
    gap = modulation_of_runs(feats, np.zeros(4, int), np.array([0, 1, 5, 6]))
    np.testing.assert_array_equal(gap[2:], modulation_batch(feats[2:]))


def test_wrong_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="expected"):
        modulation_batch(np.zeros((2, 10), np.float32))
