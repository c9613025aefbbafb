import numpy as np
import pytest

from agent.features import N_FEATURES, N_MELS, extract_batch, extract_second, seconds_of
from agent.features.mel import mel_band_centres
from tests.conftest import sine


def test_one_second_gives_29_frames_of_24_bands():
    assert extract_second(np.zeros(8000, np.float32)).shape == (N_FEATURES,) == (29 * 24,)


@pytest.mark.parametrize("freq", [300.0, 425.0, 1000.0, 1400.0, 2100.0, 3000.0])
def test_a_tone_lands_in_the_mel_band_nearest_its_frequency(freq):
    bands = extract_second(sine(freq, 1.0)).reshape(29, N_MELS).mean(axis=0)
    expected = int(np.argmin(np.abs(mel_band_centres() - freq)))
    assert abs(int(np.argmax(bands)) - expected) <= 1


def test_level_shifts_all_bands_by_the_same_decibels():
    loud = extract_second(sine(1000.0, 1.0, level=0.5)).reshape(29, N_MELS).mean(axis=0)
    quiet = extract_second(sine(1000.0, 1.0, level=0.05)).reshape(29, N_MELS).mean(axis=0)
    peak = int(np.argmax(loud))
    assert loud[peak] - quiet[peak] == pytest.approx(20.0, abs=0.1)


def test_digital_silence_is_floored_not_minus_infinity():
    feats = extract_second(np.zeros(8000, np.float32))
    assert np.isfinite(feats).all() and feats.max() <= -99.0


def test_batch_equals_one_at_a_time(rng):
    windows = rng.normal(scale=0.1, size=(5, 8000)).astype(np.float32)
    batch = extract_batch(windows)
    single = np.stack([extract_second(w) for w in windows])
    np.testing.assert_allclose(batch, single, rtol=1e-5, atol=1e-4)


def test_seconds_of_drops_the_partial_tail():
    assert seconds_of(np.zeros(8000 * 3 + 500, np.float32)).shape == (3, 8000)


@pytest.mark.parametrize("shape", [(8000,), (2, 7999), (1, 16000)])
def test_wrong_window_shape_is_rejected(shape):
    with pytest.raises(ValueError, match="expected"):
        extract_batch(np.zeros(shape, np.float32))
