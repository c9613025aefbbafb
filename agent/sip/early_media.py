"""Early-media audio for the SIPp carrier, made at test time (never committed), and models.

Tones come from the project's tone synthesiser; announcements from the Debian
``asterisk-core-sounds-en-wav`` prompts; music from ``wesnoth-music``; silence is line
hiss. :func:`train_fixture_model` trains a small four-class LightGBM on the same sources,
so the e2e tests run the live path with a real model that does not change under them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from agent.audio import SAMPLE_RATE
from agent.audio.g711 import alaw_encode, ulaw_decode, ulaw_encode
from agent.audio.io import load_audio, write_raw
from agent.debian import ASTERISK_EN, WESNOTH_MUSIC

SOUNDS = ASTERISK_EN
MUSIC = WESNOTH_MUSIC


def _plans() -> dict[str, Any]:
    from agent.tones.plan import load_tone_plans

    return load_tone_plans()


def _tone(kind: str, cc: str, seconds: float, *, phase_s: float = 0.0) -> np.ndarray:
    from agent.tones.synth import render

    spec = _plans()[cc].specs(kind)[0]
    return render(spec, duration_s=seconds, level_dbfs=-18.0, phase_s=phase_s)


def _fit(x: np.ndarray, seconds: float) -> np.ndarray:
    n = int(seconds * SAMPLE_RATE)
    reps = int(np.ceil(n / max(1, x.size)))
    return np.tile(x, reps)[:n].astype(np.float32)


def _silence(seconds: float, rng: np.random.Generator, *, dbfs: float = -50.0) -> np.ndarray:
    """Dead air: line hiss (digital zeros would look like a ringback cadence's pause)."""
    return (rng.standard_normal(int(seconds * SAMPLE_RATE)) * 10 ** (dbfs / 20)).astype(np.float32)


def _speech(seconds: float, names: list[str]) -> np.ndarray:
    parts = [load_audio(SOUNDS / f"{n}.wav") for n in names]
    return _fit(np.concatenate(parts), seconds)


def _music(seconds: float, name: str = "transience.ogg", offset_s: float = 20.0) -> np.ndarray:
    x = load_audio(MUSIC / name)
    start = int(offset_s * SAMPLE_RATE)
    return _fit(x[start:] * 0.5, seconds)


def early_media(kind: str, seconds: float, *, seed: int = 0) -> np.ndarray:
    """Audio of one kind: announcement, ringback, music, silence, busy, sit_vc."""
    rng = np.random.default_rng(seed)
    if kind == "announcement":
        return _speech(seconds, ["ss-noservice", "vm-isunavail", "all-circuits-busy-now"])
    if kind == "ringback":
        return _tone("ringback", "us", seconds)
    if kind == "busy":
        return _tone("busy", "us", seconds)
    if kind == "music":
        return _music(seconds)
    if kind == "silence":
        return _silence(seconds, rng)
    if kind == "sit_vc":
        from agent.tones.synth import na_sit_spec, render

        sit = render(na_sit_spec("VC"), duration_s=1.2, level_dbfs=-24.0)
        return _fit(np.concatenate([sit, _speech(seconds, ["ss-noservice"])]), seconds)
    raise ValueError(f"unknown early-media kind {kind!r}")


def write_alaw(path: Path, samples: np.ndarray) -> Path:
    """Headerless 8 kHz A-law (for a PCMA carrier)."""
    write_raw(path, alaw_encode(np.clip(samples, -1.0, 1.0)))
    return path


def write_ulaw(path: Path, samples: np.ndarray) -> Path:
    """Headerless 8 kHz µ-law, what SIPp's ``rtp_stream`` plays."""
    write_raw(path, ulaw_encode(np.clip(samples, -1.0, 1.0)))
    return path


def usable_model(workdir: Path) -> Path:
    """The shipped ``models/student.txt`` if it loads, else a fixture model in ``workdir``."""
    from agent.classify.model import StudentModel
    from agent.errors import UserError
    from agent.paths import MODELS_DIR

    shipped = MODELS_DIR / "student.txt"
    try:
        StudentModel.load(shipped)
        return shipped
    except UserError:
        return train_fixture_model(workdir / "student.txt")


def train_fixture_model(path: Path) -> Path:
    """A small four-class student on the same sources (only when no real model exists)."""
    from agent.classify.model import InputLayout
    from agent.distill.train import TrainParams, fit
    from agent.features import extract_batch
    from agent.labels import LABELS

    rng = np.random.default_rng(7)
    names = sorted(p.stem for p in SOUNDS.glob("*.wav"))[:120]
    audio = {
        "announcement": _speech(90, names),
        "ringback": np.concatenate([_tone("ringback", cc, 15, phase_s=p) for cc in
                                    ("us", "de", "in", "fr", "it", "cn") for p in (0.0, 1.3)]),
        "music": np.concatenate([_music(30, n.name, 10.0)
                                 for n in sorted(MUSIC.glob("*.ogg"))[:3]]),
        "silence": np.concatenate([_silence(30, rng, dbfs=d) for d in (-60, -50, -40)]),
    }
    # What the live path hears went through G.711 on the wire.
    audio = {k: ulaw_decode(ulaw_encode(np.clip(x, -1, 1))) for k, x in audio.items()}
    xs, ys = [], []
    for label, x in audio.items():
        x = x[: x.size // SAMPLE_RATE * SAMPLE_RATE].reshape(-1, SAMPLE_RATE)
        xs.append(extract_batch(x))
        ys.append(np.full(len(x), LABELS.index(label)))
    # Small and without feature or row sampling: a fixture, not a model to ship.
    params = TrainParams(num_rounds=40, learning_rate=0.2, num_leaves=8, min_data_in_leaf=5,
                         feature_fraction=1.0, bagging_fraction=1.0)
    fit(np.concatenate(xs), np.concatenate(ys), layout=InputLayout(),
        params=params).save_model(str(path))
    return path
