"""Speech for the composite benchmark (bench/composites.py): what an announcement says.

A :data:`SpeechSource` gives about the seconds asked for; the benchmark cuts it to length.
The corpus's Asterisk prompts (:func:`prompt_speech`, the default), any audio files
(:func:`file_speech`), or carrier texts read by the Festival voices the corpus holds out
(:func:`festival_speech`), so that the evaluation can feed voices the model never heard.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from agent.audio import SAMPLE_RATE
from agent.audio.io import load_audio
from agent.corpus.config import CorpusConfig
from agent.corpus.festival import FESTIVAL_VOICES, render_text
from agent.errors import UserError

#: Speech of about ``seconds`` seconds drawn with ``rng``: 8-kHz float32 samples (any
#: length; the composite cuts or keeps it) and the names of what was joined.
SpeechSource = Callable[[np.random.Generator, float], tuple[np.ndarray, list[str]]]


def _joined(rng: np.random.Generator, seconds: float, pick: Callable[[], tuple[np.ndarray, str]]
            ) -> tuple[np.ndarray, list[str]]:
    """Pieces from ``pick`` joined by short pauses of faint noise, as a carrier's recorded
    announcement joins its phrases (the corpus joins prompts the same way)."""
    cfg = CorpusConfig()
    pause_db = float(rng.uniform(*cfg.pause_noise_dbfs))
    parts: list[np.ndarray] = []
    names: list[str] = []
    n = 0
    while n < seconds * SAMPLE_RATE:
        audio, name = pick()
        if audio.size == 0:
            continue
        pause = rng.standard_normal(int(rng.uniform(*cfg.pause_s) * SAMPLE_RATE))
        parts += [audio, (pause * 10.0 ** (pause_db / 20.0)).astype(np.float32)]
        names.append(name)
        n += audio.size + parts[-1].size
    return np.concatenate(parts), names


def file_speech(paths: Sequence[str | Path]) -> SpeechSource:
    """Speech joined from random files of ``paths`` (any format :func:`load_audio` reads).

    Files are decoded once, on first use.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise UserError("speech: no files given")
    missing = [p for p in files if not p.is_file()]
    if missing:
        raise UserError(f"speech: no such file: {missing[0]}")
    cache: dict[Path, np.ndarray] = {}

    def source(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, list[str]]:
        def pick() -> tuple[np.ndarray, str]:
            path = files[int(rng.integers(len(files)))]
            if path not in cache:
                cache[path] = load_audio(path)
            return cache[path], str(path)
        return _joined(rng, seconds, pick)

    return source


def prompt_speech(voices: Sequence[Path] | None = None) -> SpeechSource:
    """Asterisk prompts of one voice per composite (English, Spanish, French by default),
    without the prompts the corpus leaves out (silence, beeps, chimes)."""
    from agent.corpus.speech import is_excluded
    from agent.debian import ASTERISK_EN, ASTERISK_ES, ASTERISK_FR

    exclude = CorpusConfig().prompt_exclude
    pools = []
    for voice in voices or (ASTERISK_EN, ASTERISK_ES, ASTERISK_FR):
        files = [p for p in sorted(Path(voice).rglob("*.wav"))
                 if not is_excluded(p.relative_to(voice).as_posix(), exclude)]
        if not files:
            raise UserError(f"{voice}: no prompts (is its asterisk-core-sounds package "
                            "installed?)")
        pools.append(file_speech(files))

    def source(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, list[str]]:
        return pools[int(rng.integers(len(pools)))](rng, seconds)

    return source


#: What carriers say when a call fails (read in English by every voice).
CARRIER_TEXTS: tuple[str, ...] = (
    "The subscriber you are calling is not answering. Please try again later.",
    "The number you have dialled does not exist. Please check the number and dial again.",
    "The mobile phone you are calling is switched off or out of coverage area.",
    "All lines are busy at the moment. Please call back later.",
    "Your call cannot be completed as dialled. Please consult your directory.",
    "The person you are trying to reach is not available. Please leave a message "
    "after the tone.",
    "This number has been changed. The new number is not available.",
    "Sorry, the service is temporarily unavailable in your area.",
)


def held_out_festival_voices() -> list[str]:
    """Festival voices the default corpus holds out (``holdout_voices``): no model trained
    on that corpus, nor any of its leave-one-voice-out folds, heard them."""
    cfg = CorpusConfig()
    return [name for name, spec in sorted(FESTIVAL_VOICES.items())
            if cfg.is_held_out(spec.voice)]


#: Rate and pitch of each reading: one voice read three ways stands in for several voices,
#: as the corpus draws rate and pitch per sentence (``tts_stretch``, ``tts_pitch_cents``).
READINGS: tuple[tuple[float, float], ...] = ((1.0, 0.0), (0.88, 200.0), (1.15, -200.0))


def festival_speech(voices: Sequence[str] | None = None,
                    texts: Sequence[str] = CARRIER_TEXTS) -> SpeechSource:
    """Carrier texts read by Festival voices the corpus holds out.

    Parameters
    ----------
    voices : sequence of str, optional
        Festival voice names (default :func:`held_out_festival_voices`: ``ked_diphone``,
        English); each reads every text in every :data:`READINGS`.
    texts : sequence of str
        English sentences.

    Every reading is rendered once, on first use, by
    :func:`agent.corpus.festival.render_text` (cached across runs). A missing voice is a
    one-line :class:`UserError` naming its package.
    """
    names = list(voices) if voices is not None else held_out_festival_voices()
    if not names:
        raise UserError("speech: the corpus holds out no Festival voice (holdout_voices)")
    rendered: list[tuple[np.ndarray, str]] = []

    def source(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, list[str]]:
        if not rendered:
            rendered.extend(
                (render_text(text, voice=v, stretch=rate, pitch_cents=cents),
                 f"{v}-{i}-x{rate}-{cents:+.0f}c")
                for v in names for i, text in enumerate(texts) for rate, cents in READINGS)

        def pick() -> tuple[np.ndarray, str]:
            return rendered[int(rng.integers(len(rendered)))]

        return _joined(rng, seconds, pick)

    return source
