"""The telephone-channel simulator: codecs and the random channel."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import scipy.signal

from agent.audio import SAMPLE_RATE
from agent.corpus.channel import CODECS, apply_codec, rms_dbfs, telephone_channel
from agent.corpus.config import CorpusConfig
from agent.errors import UserError
from tests.conftest import sine

needs_tools = pytest.mark.skipif(
    shutil.which("sox") is None or shutil.which("ffmpeg") is None,
    reason="sox and ffmpeg are needed (apt-get install sox libsox-fmt-all ffmpeg)",
)


def speech_band_noise(rng: np.random.Generator, seconds: float) -> np.ndarray:
    b, a = scipy.signal.butter(4, [300 / 4000, 3400 / 4000], "band")
    x = scipy.signal.lfilter(b, a, rng.standard_normal(int(seconds * SAMPLE_RATE)))
    return (0.1 * x / np.sqrt(np.mean(x**2))).astype(np.float32)


@needs_tools
@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("n", [1, 159, 8000, 12345])
def test_codec_returns_float32_of_the_input_length(codec: str, n: int) -> None:
    out = apply_codec(sine(1000.0, n / SAMPLE_RATE + 1e-9, level=0.1)[:n], codec)
    assert out.shape == (n,)
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out))


@needs_tools
@pytest.mark.parametrize("codec", CODECS)
def test_codec_keeps_a_speech_band_tone_within_3_db(codec: str) -> None:
    x = sine(1000.0, 2.0, level=0.1)
    y = apply_codec(x, codec)
    # Skip the codec's start-up frames.
    assert abs(rms_dbfs(y[2000:-400]) - rms_dbfs(x[2000:-400])) < 3.0


@needs_tools
@pytest.mark.parametrize("codec", CODECS)
def test_codec_output_is_time_aligned_with_its_input(codec: str, rng: np.random.Generator) -> None:
    x = speech_band_noise(rng, 2.0)
    y = apply_codec(x, codec)
    lags = np.arange(-100, 101)
    core = slice(2000, 14000)
    corr = [np.dot(x[core], y[2000 + k:14000 + k]) for k in lags]
    assert abs(int(lags[int(np.argmax(corr))])) <= 2


@pytest.mark.parametrize("codec", ["ulaw", "alaw"])
def test_g711_round_trip_is_idempotent_and_close(codec: str, rng: np.random.Generator) -> None:
    x = np.clip(rng.standard_normal(8000).astype(np.float32) * 0.2, -1, 1)
    once = apply_codec(x, codec)
    assert np.array_equal(apply_codec(once, codec), once)
    big = np.abs(x) > 0.01
    # Logarithmic companding: the error is a small fraction of the sample's magnitude.
    assert np.max(np.abs(once[big] - x[big]) / np.abs(x[big])) < 1 / 16
    assert np.all(np.sign(once[big]) == np.sign(x[big]))


def test_g711_keeps_digital_silence_near_zero() -> None:
    for codec in ("ulaw", "alaw"):
        assert np.max(np.abs(apply_codec(np.zeros(800, dtype=np.float32), codec))) < 1e-3


def test_unknown_codec_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown codec 'g729'"):
        apply_codec(np.zeros(160, dtype=np.float32), "g729")


def test_two_dimensional_input_is_a_user_error() -> None:
    with pytest.raises(UserError, match="1-D"):
        apply_codec(np.zeros((2, 160), dtype=np.float32), "ulaw")


@pytest.mark.parametrize(("codec", "package"), [("gsm", "sox"), ("amr-nb", "sox"),
                                                ("opus-8k", "ffmpeg")])
def test_missing_tool_names_the_apt_package(
    codec: str, package: str, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match=f"apt-get install {package}"):
        apply_codec(np.zeros(160, dtype=np.float32), codec)


@needs_tools
def test_channel_is_deterministic_given_the_generator_state(rng: np.random.Generator) -> None:
    x = speech_band_noise(rng, 3.0)
    a, ta = telephone_channel(x, rng=np.random.default_rng(7))
    b, tb = telephone_channel(x, rng=np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert ta == tb
    json.dumps(ta)
    outs = {telephone_channel(x, rng=np.random.default_rng(s))[0].tobytes() for s in range(5)}
    assert len(outs) > 1


@needs_tools
def test_channel_draws_every_configured_codec(rng: np.random.Generator) -> None:
    x = speech_band_noise(rng, 0.5)
    seen = {telephone_channel(x, rng=np.random.default_rng(s))[1]["codec"] for s in range(60)}
    assert seen == set(CODECS)


def test_channel_sets_the_level_it_records(rng: np.random.Generator) -> None:
    cfg = CorpusConfig(codec_weights={"ulaw": 1.0}, noise_floor_prob=0.0, loss_prob=0.0)
    x = speech_band_noise(rng, 2.0)
    for seed in range(5):
        y, tr = telephone_channel(x, rng=np.random.default_rng(seed), config=cfg)
        target = tr["level"]["target_dbfs"]
        assert cfg.level_dbfs[0] <= target <= cfg.level_dbfs[1]
        gain = tr["level"]["gain_db"]
        # The gain reaches the target unless that would clip a peak.
        assert gain <= target - rms_dbfs(x) + 0.01
        assert abs(rms_dbfs(y) - (rms_dbfs(x) + gain)) < 0.2
        assert np.max(np.abs(y)) < 1.0
        assert tr["codec"] == "ulaw"
        assert "packet_loss" not in tr and "noise_floor_dbfs" not in tr


def test_channel_keep_level_leaves_quiet_noise_quiet(rng: np.random.Generator) -> None:
    cfg = CorpusConfig(codec_weights={"alaw": 1.0}, noise_floor_prob=0.0, loss_prob=0.0)
    x = (rng.standard_normal(8000) * 10 ** (-60 / 20)).astype(np.float32)
    y, tr = telephone_channel(x, rng=np.random.default_rng(0), config=cfg, keep_level=True)
    assert "level" not in tr
    assert abs(rms_dbfs(y) - rms_dbfs(x)) < 1.5


def test_packet_loss_drops_the_number_of_frames_it_records(rng: np.random.Generator) -> None:
    cfg = CorpusConfig(codec_weights={"ulaw": 1.0}, noise_floor_prob=0.0, loss_prob=1.0,
                       loss_rate=[0.3, 0.3])
    x = speech_band_noise(rng, 4.0) + 0.05
    for seed in range(6):
        y, tr = telephone_channel(x, rng=np.random.default_rng(seed), config=cfg)
        loss = tr["packet_loss"]
        frames = y.reshape(-1, 160)
        assert 0 < loss["frames_lost"] < frames.shape[0]
        if loss["conceal"] == "zero":
            assert int(np.sum(np.all(np.abs(frames) < 1e-3, axis=1))) == loss["frames_lost"]
        else:
            repeated = sum(np.array_equal(frames[i], frames[i - 1]) for i in range(1, len(frames)))
            # A lost first frame has nothing to repeat and is zeroed instead.
            assert repeated >= loss["frames_lost"] - 1
