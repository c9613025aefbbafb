"""Festival text-to-speech: the voices that read the corpus's announcement texts.

Each Debian voice package has its own front end with its own text encoding and its own
way (or none) to change the speaking rate, so :data:`FESTIVAL_VOICES` records what was
measured for each: the encoding it reads without spelling out stray bytes, and whether
``Duration_Stretch`` (diphone voices), the HTS engine's ``-r`` option (the Catalan HTS
voice) or, where Festival has no rate control (the Russian cluster-unit voice), a sox
``tempo`` after rendering changes the rate. Pitch is shifted by sox ``pitch`` after
rendering for every voice: the intonation models differ per voice (CART, LR, the Finnish
and Czech modules, HTS), and one sox step keeps the shift the same in cents everywhere.

Renders are cached by content (voice, text, rate, pitch), so a rebuild with the same
configuration reads the same audio instead of running Festival again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from agent.audio import SAMPLE_RATE
from agent.debian import FESTIVAL_DIR
from agent.errors import UserError
from agent.paths import cache_dir

# Bumped when the rendering recipe changes, so that old cache entries are not reused.
_RECIPE = 1
# Sentences this process had Festival render (cache misses), for the build's estimate.
_rendered = 0


def renders_run() -> int:
    """How many sentences Festival has rendered in this process (not read from cache)."""
    return _rendered


@dataclass(frozen=True)
class FestivalVoice:
    """One Festival voice: its name, package, language and how to drive it."""

    name: str
    package: str
    language: str
    """ISO 639-1 code of the texts it reads."""
    coding: str
    """Python codec of the bytes its front end expects."""
    rate: str
    """``stretch`` (Duration_Stretch), ``hts`` (the HTS ``-r`` option) or ``sox``."""
    support: str = ""
    """Language package the voice needs (not a dependency of the voice package)."""
    support_dir: str = ""

    @property
    def voice(self) -> str:
        """The voice as the manifest names it: ``<package>/<name>``."""
        return f"{self.package}/{self.name}"


def _czech(speaker: str) -> FestivalVoice:
    return FestivalVoice(f"czech_{speaker}", f"festvox-czech-{speaker}", "cs", "iso8859-2",
                         "stretch")


def _nsk(lang: str, code: str, package: str) -> FestivalVoice:
    return FestivalVoice(f"{lang}_NSK_diphone", package, code, "utf-8", "stretch",
                         support=f"festival-{code}", support_dir=f"{lang}_scm")


# Encodings as measured: UTF-8 Czech, Finnish or Catalan text is read byte by byte and comes
# out two to four times too long; Latin-1 Italian and KOI8-R or CP1251 Russian stop the
# front end ("no rule matches").
FESTIVAL_VOICES: dict[str, FestivalVoice] = {v.name: v for v in (
    FestivalVoice("ked_diphone", "festvox-kdlpc16k", "en", "latin-1", "stretch"),
    FestivalVoice("lp_diphone", "festvox-italp16k", "it", "latin-1", "stretch"),
    FestivalVoice("pc_diphone", "festvox-itapc16k", "it", "latin-1", "stretch"),
    FestivalVoice("upc_ca_ona_hts", "festvox-ca-ona-hts", "ca", "iso8859-15", "hts"),
    _czech("dita"), _czech("krb"), _czech("machac"), _czech("ph"),
    FestivalVoice("msu_ru_nsh_clunits", "festvox-ru", "ru", "utf-8", "sox"),
    FestivalVoice("suo_fi_lj_diphone", "festvox-suopuhe-lj", "fi", "latin-1", "stretch"),
    FestivalVoice("hy_fi_mv_diphone", "festvox-suopuhe-mv", "fi", "latin-1", "stretch"),
    _nsk("hindi", "hi", "festvox-hi-nsk"),
    _nsk("marathi", "mr", "festvox-mr-nsk"),
    _nsk("telugu", "te", "festvox-te-nsk"),
)}


@dataclass(frozen=True)
class Utterance:
    """One text for one voice at one rate (``stretch`` > 1 is slower) and pitch shift."""

    text: str
    voice: str
    stretch: float = 1.0
    pitch_cents: float = 0.0

    def key(self) -> str:
        """Content hash naming the render in the cache."""
        blob = json.dumps([_RECIPE, self.voice, self.text, round(self.stretch, 4),
                           round(self.pitch_cents, 2)], ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def festival_voice(name: str) -> FestivalVoice:
    """The table entry of voice ``name``, checked to be installed.

    Raises :class:`UserError` (one line) when Festival, sox, the voice or its language
    package is missing, or the name is unknown.
    """
    spec = FESTIVAL_VOICES.get(name)
    if spec is None:
        raise UserError(f"unknown Festival voice {name!r} (known: "
                        f"{', '.join(sorted(FESTIVAL_VOICES))})")
    if shutil.which("festival") is None:
        raise UserError("festival is not installed (apt-get install festival)")
    if shutil.which("sox") is None:
        raise UserError("sox is not installed (apt-get install sox)")
    if not any((FESTIVAL_DIR / "voices").glob(f"*/{name}")):
        raise UserError(f"Festival voice {name} is not installed "
                        f"(apt-get install {spec.package})")
    if spec.support and not (FESTIVAL_DIR / spec.support_dir).is_dir():
        raise UserError(f"Festival voice {name} needs its language package "
                        f"(apt-get install {spec.support})")
    return spec


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _script(spec: FestivalVoice, items: Sequence[Utterance], wavs: Sequence[Path]) -> str:
    lines = [f"(voice_{spec.name})"]
    for item, wav in zip(items, wavs, strict=True):
        if spec.rate == "stretch":
            lines.append(f"(Parameter.set 'Duration_Stretch {item.stretch:.4f})")
        elif spec.rate == "hts":
            # The HTS engine's -r is a speed factor: the inverse of a duration stretch.
            lines.append(f"(set! hts_engine_params (append {spec.name}::hts_engine_params "
                         f"(list (list \"-r\" {1.0 / item.stretch:.4f}))))")
        lines.append(f"(utt.save.wave (utt.synth (Utterance Text {_scheme_string(item.text)})) "
                     f"{_scheme_string(str(wav))} 'riff)")
    return "\n".join(lines) + "\n"


def _encode(spec: FestivalVoice, text: str) -> None:
    try:
        text.encode(spec.coding)
    except UnicodeEncodeError as exc:
        raise UserError(f"Festival voice {spec.name} reads {spec.coding}: cannot say "
                        f"{exc.object[exc.start:exc.end]!r} in {text!r}") from None


def _postprocess(spec: FestivalVoice, item: Utterance, src: Path, dst: Path) -> None:
    """Pitch shift (and, for voices without a rate control, tempo) to 8 kHz float WAV."""
    effects: list[str] = []
    if item.pitch_cents:
        effects += ["pitch", f"{item.pitch_cents:.2f}"]
    if spec.rate == "sox" and item.stretch != 1.0:
        effects += ["tempo", "-s", f"{1.0 / item.stretch:.4f}"]
    effects += ["rate", "-v", str(SAMPLE_RATE)]
    proc = subprocess.run(["sox", "-q", str(src), "-e", "floating-point", "-b", "32",
                           "-c", "1", str(dst), *effects], capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"sox could not process {spec.name}'s render "
                        f"({(proc.stderr.strip().splitlines() or ['no message'])[-1]})")


def render_batch(items: Sequence[Utterance], *, cache: Path | None = None) -> list[np.ndarray]:
    """Render utterances of one voice, running Festival once for those not yet cached.

    Parameters
    ----------
    items : sequence of Utterance
        All with the same ``voice``.
    cache : Path, optional
        Directory of finished renders (default: ``<cache_dir>/tts/festival``).

    Returns
    -------
    list of numpy.ndarray
        Mono float32 at 8 kHz, one per item, in order.
    """
    global _rendered
    if not items:
        return []
    voices = {it.voice for it in items}
    if len(voices) != 1:
        raise UserError(f"render_batch: one voice per batch, got {sorted(voices)}")
    spec = festival_voice(items[0].voice)
    for it in items:
        _encode(spec, it.text)
    root = (cache or cache_dir() / "tts" / "festival") / spec.name
    root.mkdir(parents=True, exist_ok=True)
    paths = [root / f"{it.key()}.wav" for it in items]
    todo = [(it, p) for it, p in zip(items, paths, strict=True) if not p.is_file()]
    if todo:
        _rendered += len(todo)
        with tempfile.TemporaryDirectory(prefix="festival-") as tmp:
            raw = [Path(tmp) / f"{i}.wav" for i in range(len(todo))]
            script = Path(tmp) / "say.scm"
            script.write_bytes(_script(spec, [it for it, _ in todo], raw).encode(spec.coding))
            proc = subprocess.run(["festival", "--batch", str(script)], capture_output=True,
                                  stdin=subprocess.DEVNULL, cwd=tmp)
            for (it, final), wav in zip(todo, raw, strict=True):
                if not wav.is_file():
                    why = proc.stderr.decode(errors="replace").strip().splitlines() or ["?"]
                    raise UserError(f"Festival voice {spec.name} could not say {it.text!r} "
                                    f"({why[0][:120]})")
                part = final.with_suffix(f".{os.getpid()}.part.wav")
                _postprocess(spec, it, wav, part)
                os.replace(part, final)
    return [sf.read(str(p), dtype="float32")[0] for p in paths]


def render_text(text: str, *, voice: str, stretch: float = 1.0, pitch_cents: float = 0.0,
                cache: Path | None = None) -> np.ndarray:
    """``text`` spoken by Festival voice ``voice``, mono float32 at 8 kHz.

    Parameters
    ----------
    text : str
        In the voice's language (:attr:`FestivalVoice.language`).
    voice : str
        A Festival voice name, e.g. ``ked_diphone`` (see :data:`FESTIVAL_VOICES`).
    stretch : float
        Duration factor: 1.2 speaks 20% slower.
    pitch_cents : float
        Pitch shift after rendering, in cents.
    cache : Path, optional
        Render cache directory (default ``<cache_dir>/tts/festival``).

    Raises
    ------
    UserError
        One line, naming what to install when Festival, sox or the voice is missing, or
        the characters the voice cannot read.

    Examples
    --------
    >>> x = render_text("The number you have dialled is not in service.", voice="ked_diphone")
    >>> x.dtype, x.size > 8000
    (dtype('float32'), True)
    """
    (audio,) = render_batch([Utterance(text, voice, stretch, pitch_cents)], cache=cache)
    return audio
