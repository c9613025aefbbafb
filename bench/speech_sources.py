"""Speech for the composite benchmark (bench/composites.py): what an announcement says.

A :data:`SpeechSource` gives about the seconds asked for; the benchmark cuts it to length.
The corpus's Asterisk prompts (:func:`prompt_speech`, the default), any audio files
(:func:`file_speech`), or carrier texts read by Festival voices the corpus never used
(:func:`festival_speech`), so that the evaluation can feed voices the model never heard.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from agent.audio import SAMPLE_RATE
from agent.audio.io import load_audio
from agent.corpus.config import CorpusConfig
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
    from agent.corpus.sources import is_excluded
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


#: Festival voices that speak (as Debian packages them today); each reads every text.
FESTIVAL_VOICES: tuple[str, ...] = (
    "ked_diphone", "lp_diphone", "pc_diphone", "hy_fi_mv_diphone", "suo_fi_lj_diphone",
    "czech_dita", "czech_krb", "czech_machac", "czech_ph", "msu_ru_nsh_clunits",
    "upc_ca_ona_hts",
)
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


def festival_speech(voices: Sequence[str] = FESTIVAL_VOICES,
                    texts: Sequence[str] = CARRIER_TEXTS) -> SpeechSource:
    """Carrier texts read by Festival's ``text2wave`` in voices the corpus never used.

    Every (voice, text) pair is rendered once, on first use (about a minute for the
    defaults). A voice that fails to load (its package missing) is left out; none at all
    is a one-line :class:`UserError`.
    """
    import subprocess
    import tempfile

    rendered: list[Path] = []
    workdir = tempfile.TemporaryDirectory(prefix="composites-festival-")

    def render_all() -> None:
        for voice in voices:
            for i, text in enumerate(texts):
                out = Path(workdir.name) / f"{voice}-{i}.wav"
                try:
                    proc = subprocess.run(["text2wave", "-eval", f"(voice_{voice})", "-o",
                                           str(out)], input=text.encode(), check=False,
                                          capture_output=True, timeout=120)
                except FileNotFoundError:
                    raise UserError("speech: festival is not installed (apt-get install "
                                    "festival and its festvox voices)") from None
                if proc.returncode != 0 or not out.is_file() or out.stat().st_size < 1000:
                    break  # the voice does not load: its other texts would fail alike
                rendered.append(out)
        if not rendered:
            raise UserError(f"speech: no Festival voice of {', '.join(voices)} speaks")

    inner: list[SpeechSource] = []

    def source(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, list[str]]:
        if not inner:
            render_all()
            inner.append(file_speech(rendered))
        audio, names = inner[0](rng, seconds)
        return audio, [Path(n).stem for n in names]

    return source
