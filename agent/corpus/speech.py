"""Announcements: streams of one voice's speech, from recorded prompts or Festival.

Every voice (a speaker in a Debian prompt package, or a Festival voice reading the texts
of :file:`announcement_texts.yaml`) gets the same share of the class, never less than
``voice_min_s``, so that no voice dominates and a leave-one-voice-out evaluation has
enough of each. Voices take turns stream by stream, so a build stopped early is still
balanced. Voices in ``holdout_voices`` are never used.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from agent.audio import SAMPLE_RATE
from agent.audio.io import load_audio
from agent.corpus.channel import rms_dbfs
from agent.corpus.clip import Clip, draw, noise_like, package_files, seconds
from agent.corpus.config import CorpusConfig, HumanVoice
from agent.corpus.festival import FESTIVAL_VOICES, Utterance, festival_voice, render_batch
from agent.corpus.manifest import SourceRef
from agent.errors import UserError

TEXTS = Path(__file__).with_name("announcement_texts.yaml")
# A prompt quieter than this holds no word a listener would hear (the Russian set has an
# empty is.wav and a -43 dBFS with.wav); spoken prompts measure -30 to -15 dBFS.
_PROMPT_MIN_DBFS = -40.0
# Festival loads a voice in 0.3-6 s; rendering a dozen sentences per run amortises it.
_RENDER_BATCH = 12


@lru_cache(maxsize=4)
def load_texts(path: Path = TEXTS) -> dict[str, tuple[str, ...]]:
    """Announcement texts per language code, validated: non-empty and distinct.

    Raises :class:`UserError` naming the language and entry that is wrong.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: cannot read announcement texts ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise UserError(f"{path}: expected a mapping of language code to sentences")
    out: dict[str, tuple[str, ...]] = {}
    for lang, texts in data.items():
        if not isinstance(texts, list) or not texts:
            raise UserError(f"{path}: {lang}: expected a list of sentences")
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise UserError(f"{path}: {lang}[{i}]: expected a non-empty sentence")
        if len(set(texts)) != len(texts):
            raise UserError(f"{path}: {lang}: a sentence is listed twice")
        out[str(lang)] = tuple(t.strip() for t in texts)
    return out


def is_excluded(relative: str, patterns: list[str]) -> bool:
    """Whether a prompt's path under its voice directory matches one of ``patterns``."""
    return any(fnmatch.fnmatchcase(relative, p) for p in patterns)


def _voice_dir(cfg: CorpusConfig, voice: HumanVoice) -> Path:
    return Path(cfg.sources.asterisk_sounds) / voice.dir


def prompt_files(cfg: CorpusConfig) -> dict[str, list[Path]]:
    """Speech prompts of each human voice (``<package>/<speaker>``), without
    ``cfg.prompt_exclude``; held-out voices are left out.

    Raises :class:`UserError` naming a missing package, or when nothing is left of a voice.
    """
    out = {}
    for voice in cfg.human_voices:
        if cfg.is_held_out(voice.voice):
            continue
        root = _voice_dir(cfg, voice)
        files = [p for p in package_files(root, voice.pattern, voice.package)
                 if not is_excluded(p.relative_to(root).as_posix(), cfg.prompt_exclude)]
        if not files:
            raise UserError(f"{root}: prompt_exclude leaves no prompt of {voice.package}")
        out[voice.voice] = files
    return out


@dataclass
class _Speaker:
    """One voice's supply of utterances, each with where it came from."""

    voice: str
    engine: str
    next: Iterator[tuple[np.ndarray, SourceRef, dict[str, Any]]]
    done_s: float = 0.0
    mix: dict[str, Any] = field(default_factory=dict)


def _prompts(files: list[Path], package: str,
             rng: np.random.Generator) -> Iterator[tuple[np.ndarray, SourceRef, dict[str, Any]]]:
    """Prompts in a shuffled order; each is used once before the pool is reshuffled, so a
    split by stream does not test on a prompt it trained on while the pool lasts."""
    while True:
        heard = False
        for i in rng.permutation(len(files)):
            path = files[i]
            audio = load_audio(path)
            if audio.size < SAMPLE_RATE // 10 or rms_dbfs(audio) < _PROMPT_MIN_DBFS:
                continue
            heard = True
            yield audio, SourceRef(package, str(path), 0.0, seconds(audio.size)), {}
        if not heard:
            raise UserError(f"{files[0].parent}: every prompt of {package} is silent")


def _sentences(cfg: CorpusConfig, name: str, texts: tuple[str, ...], rng: np.random.Generator
               ) -> Iterator[tuple[np.ndarray, SourceRef, dict[str, Any]]]:
    """The voice's sentences in shuffled rounds, each at a drawn rate and pitch; rendered a
    batch at a time (cached, so a replayed build runs Festival only for what is new)."""
    spec = FESTIVAL_VOICES[name]
    while True:
        order = [int(i) for i in rng.permutation(len(texts))]
        for start in range(0, len(order), _RENDER_BATCH):
            chunk = order[start:start + _RENDER_BATCH]
            items = [Utterance(texts[i], name, round(draw(rng, cfg.tts_stretch), 3),
                               round(draw(rng, cfg.tts_pitch_cents), 1)) for i in chunk]
            for i, item, audio in zip(chunk, items, render_batch(items), strict=True):
                ref = SourceRef(spec.package, str(TEXTS), 0.0, seconds(audio.size))
                yield audio, ref, {"language": spec.language, "text": i,
                                   "stretch": item.stretch, "pitch_cents": item.pitch_cents}


def _speakers(cfg: CorpusConfig, rng: np.random.Generator) -> list[_Speaker]:
    speakers = []
    pools = prompt_files(cfg)
    for voice in cfg.human_voices:
        if voice.voice in pools:
            speakers.append(_Speaker(voice.voice, "human",
                                     _prompts(pools[voice.voice], voice.package, rng)))
    texts = load_texts()
    for name in cfg.tts_voices:
        spec = FESTIVAL_VOICES[name]
        if cfg.is_held_out(spec.voice):
            continue
        festival_voice(name)
        if spec.language not in texts:
            raise UserError(f"{TEXTS}: no {spec.language} sentences for Festival voice {name}")
        speakers.append(_Speaker(spec.voice, "festival",
                                 _sentences(cfg, name, texts[spec.language], rng),
                                 mix={"language": spec.language}))
    return speakers


def announcement_clips(cfg: CorpusConfig, rng: np.random.Generator) -> Iterator[Clip]:
    """Announcement-length streams of one voice's speech joined by short low-noise pauses.

    Voices take turns until each has :meth:`CorpusConfig.voice_seconds`; each stream is its
    own ``group`` and names its one voice.
    """
    speakers = _speakers(cfg, rng)
    quota = cfg.voice_seconds()
    max_n = int(cfg.segment_s[1] * SAMPLE_RATE)
    index = 0
    while any(s.done_s < quota for s in speakers):
        for sp in speakers:
            if sp.done_s >= quota:
                continue
            target = draw(rng, cfg.segment_s)
            pause_db = draw(rng, cfg.pause_noise_dbfs)
            parts = [noise_like(rng, int(draw(rng, cfg.pause_s) * SAMPLE_RATE), pause_db)]
            sources: list[SourceRef] = []
            said: list[dict[str, Any]] = []
            n = parts[0].size
            while n < target * SAMPLE_RATE:
                audio, ref, how = next(sp.next)
                audio = audio[: max(0, max_n - n)]
                if audio.size == 0:
                    break
                sources.append(SourceRef(ref.package, ref.path, 0.0, seconds(audio.size)))
                if how:
                    said.append(how)
                parts += [audio, noise_like(rng, int(draw(rng, cfg.pause_s) * SAMPLE_RATE),
                                            pause_db)]
                n += audio.size + parts[-1].size
            samples = np.concatenate(parts)[:max_n].astype(np.float32)
            mix: dict[str, Any] = {"pause_noise_dbfs": round(pause_db, 2),
                                   "prompts": len(sources), **sp.mix}
            if said:
                mix["utterances"] = said
            yield Clip(index, "announcement", f"announcement-{index:05d}", samples, sources,
                       voice=sp.voice, engine=sp.engine, mix=mix)
            sp.done_s += samples.size / SAMPLE_RATE
            index += 1
