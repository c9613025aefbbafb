"""Landmark hashing on generated signals: determinism, offset invariance, density."""

from __future__ import annotations

import numpy as np
import pytest

from agent.fingerprint.index import HashIndex
from agent.fingerprint.landmarks import DEFAULT_PARAMS, LandmarkParams, Landmarks, fingerprint

SR = 8000


def tone_melody(seconds: float, seed: int) -> np.ndarray:
    """Random 80-ms tone pairs (speech-like peak density) at random levels."""
    rng = np.random.default_rng(seed)
    n_notes = int(seconds / 0.08)
    out = []
    for _ in range(n_notes):
        t = np.arange(int(0.08 * SR)) / SR
        f1, f2 = rng.uniform(300, 3300, size=2)
        a = rng.uniform(0.05, 0.3)
        out.append(a * (np.sin(2 * np.pi * f1 * t) + 0.5 * np.sin(2 * np.pi * f2 * t)))
    return np.concatenate(out).astype(np.float32)


def test_fingerprint_is_deterministic() -> None:
    x = tone_melody(3.0, seed=1)
    a, b = fingerprint(x), fingerprint(x.copy())
    assert np.array_equal(a.hashes, b.hashes)
    assert np.array_equal(a.times, b.times)


def test_shift_by_whole_hops_shifts_times_and_keeps_hashes() -> None:
    x = tone_melody(6.0, seed=2)
    hops = 50
    shifted = x[hops * DEFAULT_PARAMS.hop :]
    ref, q = fingerprint(x), fingerprint(shifted)
    ref_pairs = set(zip(ref.hashes.tolist(), (ref.times - hops).tolist(), strict=True))
    q_pairs = set(zip(q.hashes.tolist(), q.times.tolist(), strict=True))
    # The first and last second differ (the density window sees different neighbours).
    interior = {p for p in q_pairs if 60 < p[1] < (q.times.max() - 60)}
    assert interior
    assert len(interior & ref_pairs) / len(interior) > 0.95


@pytest.mark.parametrize("start_samples", [37, 1000, 12345])
def test_query_from_any_offset_votes_for_one_time_offset(start_samples: int) -> None:
    x = tone_melody(8.0, seed=3)
    other = tone_melody(8.0, seed=4)
    index = HashIndex([(1, fingerprint(other)), (2, fingerprint(x))])
    q = x[start_samples : start_samples + 2 * SR]
    best = index.query(fingerprint(q), top=2)
    assert best[0].entry_id == 2
    expected = start_samples / DEFAULT_PARAMS.hop
    assert abs(best[0].offset - expected) <= 1.5
    assert best[0].count > 3 * (best[1].count if len(best) > 1 else 0)


def test_two_seconds_give_dozens_of_hashes_per_second() -> None:
    lm = fingerprint(tone_melody(2.0, seed=5))
    assert len(lm) / 2.0 >= 40


def test_silence_and_digital_zero_give_no_hashes() -> None:
    assert len(fingerprint(np.zeros(3 * SR, np.float32))) == 0
    assert len(fingerprint(np.zeros(100, np.float32))) == 0


def test_landmarks_round_trip_through_bytes() -> None:
    lm = fingerprint(tone_melody(2.0, seed=6))
    back = Landmarks.from_bytes(lm.to_bytes())
    assert np.array_equal(back.hashes, lm.hashes) and np.array_equal(back.times, lm.times)


def test_parameter_version_changes_with_parameters() -> None:
    assert LandmarkParams(fan_out=3).version != DEFAULT_PARAMS.version
