"""A simulated telephone channel: the codecs, levels, noise and packet loss early media meets.

Training on coded audio recovers most of what perceptual codecs cost a classifier, so
every corpus file passes through :func:`telephone_channel` once. :func:`apply_codec` is the
stable entry point other parts use to put test audio through one named codec.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import numpy as np

from agent.audio import SAMPLE_RATE, g711
from agent.corpus.config import CODEC_NAMES, CorpusConfig
from agent.errors import UserError

CODECS: tuple[str, ...] = CODEC_NAMES
"""Codec names accepted by :func:`apply_codec`."""

FRAME_S = 0.020
"""RTP packetisation interval: the unit of packet loss."""

# opencore-amr's encoder delays its output by 5 ms (measured by cross-correlating band-limited
# noise before and after the round trip); the others come back aligned to within a sample.
_CODEC_DELAY = {"amr-nb": 40}

_APT_PACKAGE = {"sox": "sox libsox-fmt-all", "ffmpeg": "ffmpeg"}


def require_tool(name: str) -> str:
    """Path of ``sox`` or ``ffmpeg``; a one-line :class:`UserError` naming the apt package."""
    path = shutil.which(name)
    if path is None:
        raise UserError(f"{name} is not installed (apt-get install {_APT_PACKAGE[name]})")
    return path


def _run(cmd: list[str], payload: bytes, codec: str) -> bytes:
    proc = subprocess.run(cmd, input=payload, capture_output=True, check=False)
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()
        detail = reason[-1] if reason else f"exit status {proc.returncode}"
        raise UserError(f"codec {codec}: {cmd[0].rsplit('/', 1)[-1]} failed ({detail})")
    return proc.stdout


def _f32(samples: np.ndarray) -> bytes:
    return np.clip(samples, -1.0, 1.0).astype("<f4").tobytes()


_SOX_RAW = ["-t", "raw", "-e", "floating-point", "-b", "32", "-r", str(SAMPLE_RATE), "-c", "1"]


def _sox_roundtrip(samples: np.ndarray, *, fmt: str, codec: str, extra: list[str]) -> np.ndarray:
    sox = require_tool("sox")
    # -D: sox dithers by default when it reduces float to 16 bits, which would make the
    # channel random beyond the caller's generator.
    coded = _run([sox, "-V1", "-D", *_SOX_RAW, "-", *extra, "-t", fmt, "-"], _f32(samples), codec)
    decoded = _run(
        [sox, "-V1", "-D", "-t", fmt, "-r", str(SAMPLE_RATE), "-c", "1", "-", *_SOX_RAW, "-"],
        coded,
        codec,
    )
    return np.frombuffer(decoded, dtype="<f4")


def _opus_roundtrip(samples: np.ndarray, *, bitrate: str, codec: str) -> np.ndarray:
    ffmpeg = require_tool("ffmpeg")
    common = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error"]
    coded = _run(
        [*common, "-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "pipe:0",
         "-c:a", "libopus", "-b:a", bitrate, "-application", "voip", "-f", "ogg", "pipe:1"],
        _f32(samples),
        codec,
    )
    decoded = _run(
        [*common, "-f", "ogg", "-i", "pipe:0", "-f", "f32le", "-ar", str(SAMPLE_RATE),
         "-ac", "1", "pipe:1"],
        coded,
        codec,
    )
    return np.frombuffer(decoded, dtype="<f4")


def _fit_length(decoded: np.ndarray, n: int) -> np.ndarray:
    """Codecs pad to whole frames; trim or zero-pad back to the input's length."""
    out = np.zeros(n, dtype=np.float32)
    m = min(n, decoded.size)
    out[:m] = decoded[:m]
    return out


def apply_codec(samples: np.ndarray, codec: str) -> np.ndarray:
    """Encode and decode 8 kHz audio with one telephone codec.

    Parameters
    ----------
    samples : numpy.ndarray
        1-D float samples at 8 kHz in [-1, 1] (values outside are clipped).
    codec : str
        One of :data:`CODECS`: ``ulaw``/``alaw`` (G.711, numpy), ``gsm`` (GSM 06.10 full
        rate, sox), ``amr-nb`` (12.2 kb/s, sox with libopencore), ``opus-8k`` and
        ``opus-16k`` (libopus at 8 and 16 kb/s, VoIP mode, ffmpeg).

    Returns
    -------
    numpy.ndarray
        float32, the same length as ``samples``.

    Raises
    ------
    UserError
        For an unknown codec, or when sox/ffmpeg is missing or fails (naming the apt
        package to install).

    Examples
    --------
    >>> tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
    >>> apply_codec(tone, "gsm").shape
    (8000,)
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise UserError(f"apply_codec: expected 1-D samples, got shape {x.shape}")
    if codec not in CODECS:
        raise UserError(f"unknown codec {codec!r} (known: {', '.join(CODECS)})")
    if x.size == 0:
        return x.copy()
    if codec == "ulaw":
        return g711.ulaw_decode(g711.ulaw_encode(x)).astype(np.float32)
    if codec == "alaw":
        return g711.alaw_decode(g711.alaw_encode(x)).astype(np.float32)
    if codec == "gsm":
        decoded = _sox_roundtrip(x, fmt="gsm", codec=codec, extra=[])
    elif codec == "amr-nb":
        # -C 7 selects mode MR122, the 12.2 kb/s mode GSM/UMTS voice calls mostly use.
        decoded = _sox_roundtrip(x, fmt="amr-nb", codec=codec, extra=["-C", "7"])
    else:
        decoded = _opus_roundtrip(x, bitrate=codec.split("-")[1], codec=codec)
    return _fit_length(decoded[_CODEC_DELAY.get(codec, 0):], x.size)


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level in dB relative to RMS 1.0; -inf dB is reported as -200."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    return 20.0 * np.log10(rms) if rms > 1e-10 else -200.0


def _uniform(rng: np.random.Generator, pair: list[float]) -> float:
    return float(rng.uniform(pair[0], pair[1]))


def _set_level(x: np.ndarray, target_dbfs: float) -> tuple[np.ndarray, float]:
    """Scale to the target RMS, but never so far that peaks clip."""
    current = rms_dbfs(x)
    if current <= -200.0:
        return x, 0.0
    gain_db = target_dbfs - current
    peak = float(np.max(np.abs(x)))
    gain_db = min(gain_db, float(20.0 * np.log10(0.99 / peak)))
    return (x * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32), gain_db


def _packet_loss(
    x: np.ndarray, *, rng: np.random.Generator, rate: float
) -> tuple[np.ndarray, dict[str, Any]]:
    """Drop 20 ms frames; a receiver either plays silence or repeats the last good frame."""
    n = int(round(FRAME_S * SAMPLE_RATE))
    frames = x.size // n
    lost = np.flatnonzero(rng.random(frames) < rate)
    conceal = "repeat" if rng.random() < 0.5 else "zero"
    out = x.copy()
    for i in lost:
        seg = slice(i * n, (i + 1) * n)
        out[seg] = out[(i - 1) * n:i * n] if conceal == "repeat" and i > 0 else 0.0
    return out, {"rate": round(rate, 4), "frames_lost": int(lost.size), "conceal": conceal}


def telephone_channel(
    samples: np.ndarray,
    *,
    rng: np.random.Generator,
    config: CorpusConfig | None = None,
    keep_level: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Pass 8 kHz audio through a randomly drawn telephone channel.

    In order: a level (uniform in ``config.level_dbfs``) unless ``keep_level``; with
    probability ``noise_floor_prob`` a white noise floor; a codec drawn by
    ``codec_weights``; with probability ``loss_prob`` packet loss of 20 ms frames.

    Parameters
    ----------
    samples : numpy.ndarray
        1-D float32 at 8 kHz.
    rng : numpy.random.Generator
        The only source of randomness: the same generator state gives the same output.
    config : CorpusConfig, optional
        Ranges and weights; the defaults when omitted.
    keep_level : bool
        Leave the level alone (for line-noise/silence audio whose low level is the point).

    Returns
    -------
    (numpy.ndarray, dict)
        The degraded audio (same length, float32) and a JSON-ready record of every
        transform applied, for the corpus manifest.
    """
    cfg = config or CorpusConfig()
    x = np.asarray(samples, dtype=np.float32).copy()
    transforms: dict[str, Any] = {}
    if not keep_level:
        target = _uniform(rng, cfg.level_dbfs)
        x, gain_db = _set_level(x, target)
        transforms["level"] = {"target_dbfs": round(target, 2), "gain_db": round(float(gain_db), 2)}
    if rng.random() < cfg.noise_floor_prob:
        floor = _uniform(rng, cfg.noise_floor_dbfs)
        x = x + rng.standard_normal(x.size).astype(np.float32) * np.float32(10 ** (floor / 20))
        transforms["noise_floor_dbfs"] = round(floor, 2)
    names = [c for c in CODECS if cfg.codec_weights.get(c, 0.0) > 0]
    weights = np.array([cfg.codec_weights[c] for c in names], dtype=np.float64)
    codec = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    x = apply_codec(x, codec)
    transforms["codec"] = codec
    if rng.random() < cfg.loss_prob:
        x, transforms["packet_loss"] = _packet_loss(x, rng=rng, rate=_uniform(rng, cfg.loss_rate))
    return x.astype(np.float32, copy=False), transforms
