"""Reading and writing audio files: the one module of the package that touches audio on disk.

Everything else works on float32 numpy arrays at :data:`agent.audio.SAMPLE_RATE` (8 kHz
telephone audio) in the range [-1, 1].
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from agent.audio import SAMPLE_RATE
from agent.errors import UserError


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    # libsndfile prefixes its messages with the path; the caller already names the file.
    if ":" in text and text.startswith("Error opening"):
        text = text.split(":", 2)[-1].strip()
    return text


def _decode_with_ffmpeg(path: Path, sr: int) -> np.ndarray | None:
    """Decode formats libsndfile lacks (AMR, some MP3s) through ffmpeg, if it is installed."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return None
    proc = subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1",
         "-ar", str(sr), "-"],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout:
        return None
    return np.frombuffer(proc.stdout, dtype="<f4").copy()


def load_audio(path: str | Path, *, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file as mono float32 at ``sr`` Hz.

    Parameters
    ----------
    path : str or Path
        WAV, OGG, FLAC, MP3 (anything libsndfile reads; ffmpeg decodes the rest), any
        sample rate, mono or multichannel (channels are averaged).
    sr : int
        Target sample rate.

    Returns
    -------
    numpy.ndarray
        1-D float32 samples in [-1, 1].

    Raises
    ------
    UserError
        With a one-line message naming the file and the reason: missing, empty,
        not audio, truncated header.
    """
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such file")
    if p.is_dir():
        raise UserError(f"{p}: is a directory, not an audio file")
    size = p.stat().st_size
    if size == 0:
        raise UserError(f"{p}: empty file")
    with p.open("rb") as fh:
        head = fh.read(12)
    if head[:4] == b"RIFF" and (size < 44 or head[8:12] != b"WAVE"):
        raise UserError(f"{p}: truncated or malformed WAV header")
    try:
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
        samples = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        if head[:4] == b"RIFF":
            raise UserError(f"{p}: malformed WAV file ({_reason(exc)})") from None
        decoded = _decode_with_ffmpeg(p, sr)
        if decoded is None:
            raise UserError(f"{p}: not a readable audio file ({_reason(exc)})") from None
        return decoded.astype(np.float32, copy=False)
    if rate != sr and samples.size:
        samples = soxr.resample(samples, rate, sr, quality="HQ")
    return np.ascontiguousarray(samples, dtype=np.float32)


def write_wav(path: str | Path, samples: np.ndarray, *, sr: int = SAMPLE_RATE) -> None:
    """Write mono float32 samples as 16-bit PCM WAV."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(samples, -1.0, 1.0), sr, subtype="PCM_16")


def write_raw(path: str | Path, payload: bytes) -> None:
    """Write headerless bytes (e.g. a µ-law stream for SIPp's ``rtp_stream``)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(payload)
