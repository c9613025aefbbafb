import subprocess
import wave

import numpy as np
import pytest

from agent.audio.g711 import (
    ALAW_TO_PCM16,
    ULAW_TO_PCM16,
    alaw_decode,
    alaw_encode,
    ulaw_decode,
    ulaw_encode,
)
from agent.audio.io import load_audio, write_wav
from agent.errors import UserError
from tests.conftest import sine


@pytest.mark.parametrize("enc,dec", [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)])
def test_g711_round_trip_keeps_a_tone_within_quantisation_noise(enc, dec):
    x = sine(440.0, 1.0, level=0.5)
    y = dec(enc(x))
    snr = 10 * np.log10(np.mean(x**2) / np.mean((x - y) ** 2))
    assert len(enc(x)) == x.size and snr > 30


@pytest.mark.parametrize("table", [ULAW_TO_PCM16, ALAW_TO_PCM16])
def test_g711_codes_decode_to_256_distinct_levels_but_zero(table):
    assert len(np.unique(table)) >= 255


@pytest.mark.parametrize("codec,table", [("u-law", ULAW_TO_PCM16), ("a-law", ALAW_TO_PCM16)])
def test_g711_decoding_matches_sox_byte_for_byte(tmp_path, codec, table):
    raw = tmp_path / "all.raw"
    raw.write_bytes(bytes(range(256)))
    out = tmp_path / "all.s16"
    subprocess.run(["sox", "-t", "raw", "-r", "8000", "-e", codec, "-c", "1", str(raw),
                    "-e", "signed", "-b", "16", "-t", "raw", str(out)], check=True)
    np.testing.assert_array_equal(np.fromfile(out, "<i2"), table)


def test_g711_encode_decode_is_idempotent_on_decoded_values():
    once = ulaw_encode(ulaw_decode(bytes(range(256))))
    assert ulaw_encode(ulaw_decode(once)) == once


def test_load_audio_resamples_stereo_to_8k_mono(tmp_path):
    import soundfile as sf

    t = np.arange(44100) / 44100
    left = 0.3 * np.sin(2 * np.pi * 1000 * t)
    sf.write(tmp_path / "s.wav", np.stack([left, left], axis=1), 44100)
    x = load_audio(tmp_path / "s.wav")
    assert x.dtype == np.float32 and abs(x.size - 8000) <= 1
    assert np.sqrt(np.mean(x**2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.05)


def _truncated_wav(path):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 8000)
    path.write_bytes(path.read_bytes()[:30])


@pytest.mark.parametrize(
    "make,reason",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(b"this is not audio at all, just text\n" * 20), "not a readable"),
        (_truncated_wav, "truncated or malformed WAV header"),
    ],
    ids=["missing", "empty", "not-audio", "truncated-header"],
)
def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path, make, reason):
    p = tmp_path / "bad.wav"
    make(p)
    with pytest.raises(UserError) as info:
        load_audio(p)
    msg = str(info.value)
    assert str(p) in msg and reason in msg and "\n" not in msg


def test_write_then_load_round_trips(tmp_path):
    x = sine(700.0, 1.5)
    write_wav(tmp_path / "x.wav", x)
    np.testing.assert_allclose(load_audio(tmp_path / "x.wav"), x, atol=1e-4)
