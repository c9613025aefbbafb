"""Announcement voices: Festival renders, the texts, the manifest's voice fields, hold-outs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from agent.audio import SAMPLE_RATE
from agent.config import build
from agent.corpus.build import build_corpus
from agent.corpus.config import CorpusConfig, HumanVoice, SourceDirs
from agent.corpus.festival import FESTIVAL_VOICES, render_text
from agent.corpus.manifest import (
    MANIFEST,
    load_manifest,
    voice_families,
    voice_family,
)
from agent.corpus.speech import load_texts
from agent.errors import ConfigError, UserError

TEXTS = load_texts()
needs_audio_tools = pytest.mark.skipif(
    shutil.which("sox") is None or shutil.which("ffmpeg") is None,
    reason="apt-get install sox libsox-fmt-all ffmpeg",
)


def _rms_dbfs(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-20))


@pytest.mark.parametrize("name", sorted(FESTIVAL_VOICES))
def test_every_festival_voice_speaks_a_sentence_of_its_language(name: str, tmp_path: Path):
    # Not skipped when Festival is missing: scripts/bootstrap.sh installs every voice.
    spec = FESTIVAL_VOICES[name]
    text = TEXTS[spec.language][0]
    audio = render_text(text, voice=name, cache=tmp_path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    seconds = audio.size / SAMPLE_RATE
    # 10 to 20 characters a second was measured for every voice on every text; a voice fed
    # the wrong encoding spells bytes out (3-4x longer) or stops.
    assert len(text) / 25 < seconds < len(text) / 7
    assert _rms_dbfs(audio) > -40.0


def test_rate_and_pitch_change_the_render_and_the_cache_gives_it_back(tmp_path: Path):
    text = TEXTS["cs"][1]
    plain = render_text(text, voice="czech_dita", cache=tmp_path)
    slow = render_text(text, voice="czech_dita", stretch=1.2, cache=tmp_path)
    high = render_text(text, voice="czech_dita", pitch_cents=300, cache=tmp_path)
    assert slow.size == pytest.approx(plain.size * 1.2, rel=0.06)
    assert high.size == pytest.approx(plain.size, rel=0.02)
    assert not np.array_equal(high[: plain.size], plain[: high.size])
    again = render_text(text, voice="czech_dita", stretch=1.2, cache=tmp_path)
    assert np.array_equal(again, slow)
    fresh = render_text(text, voice="czech_dita", stretch=1.2, cache=tmp_path / "other")
    assert np.array_equal(fresh, slow)


@pytest.mark.parametrize("name", ["msu_ru_nsh_clunits", "upc_ca_ona_hts"])
def test_voices_without_duration_stretch_still_change_rate(name: str, tmp_path: Path):
    text = TEXTS[FESTIVAL_VOICES[name].language][2]
    plain = render_text(text, voice=name, cache=tmp_path)
    fast = render_text(text, voice=name, stretch=0.85, cache=tmp_path)
    assert fast.size == pytest.approx(plain.size * 0.85, rel=0.08)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"voice": "kal_diphone"}, "unknown Festival voice 'kal_diphone'"),
     ({"voice": "lp_diphone", "text": "Абонент"}, "lp_diphone reads latin-1")],
)
def test_render_errors_are_one_line(kwargs: dict, message: str, tmp_path: Path):
    args = {"text": "Il numero è inesistente.", **kwargs}
    with pytest.raises(UserError, match=re.escape(message)) as err:
        render_text(args.pop("text"), cache=tmp_path, **args)
    assert "\n" not in str(err.value)


def test_missing_festival_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match=r"apt-get install festival\)"):
        render_text("Hello.", voice="ked_diphone", cache=tmp_path)


def test_texts_hold_200_distinct_sentences_covering_every_voice_language():
    sentences = {t for texts in TEXTS.values() for t in texts}
    assert len(sentences) >= 200
    for name, spec in FESTIVAL_VOICES.items():
        assert len(TEXTS.get(spec.language, ())) >= 20, name
        for text in TEXTS[spec.language]:
            text.encode(spec.coding)
    # Spelled-out numbers only: the Indic and Czech front ends read digits as nothing.
    assert not any(re.search(r"\d", t) for t in sentences)


def test_voice_config_is_checked_once():
    with pytest.raises(ConfigError, match=r"corpus\.tts_voices: unknown Festival voice 'x'"):
        build(CorpusConfig, {"tts_voices": ["x"]}, "corpus")
    with pytest.raises(ConfigError, match=r"corpus\.holdout_voices: 'festvox-nope'"):
        build(CorpusConfig, {"holdout_voices": ["festvox-nope"]}, "corpus")
    with pytest.raises(ConfigError, match=r"corpus\.human_voices\[0\]\.speaker: required"):
        build(CorpusConfig, {"human_voices": [{"package": "p", "dir": "d"}]}, "corpus")


def test_every_voice_gets_an_equal_share_with_a_floor():
    cfg = CorpusConfig()
    voices = cfg.speech_voices()
    assert len(voices) == len(cfg.human_voices) + len(cfg.tts_voices) - 1
    assert "festvox-kdlpc16k/ked_diphone" not in voices
    assert cfg.voice_seconds() >= 150.0
    assert cfg.class_seconds("announcement") == pytest.approx(cfg.voice_seconds() * len(voices))


def test_old_manifests_get_a_voice_derived_from_their_sources(tmp_path: Path):
    prompt = "/usr/share/asterisk/sounds/fr_CA_f_June/digits/1.wav"
    lines = [
        {"id": "announcement-00000", "label": "announcement", "group": "a", "path": "a.wav",
         "duration_s": 5.0, "sources": [{"package": "asterisk-core-sounds-fr-wav",
                                         "path": prompt, "start_s": 0.0, "duration_s": 1.0}]},
        {"id": "music-00000", "label": "music", "group": "m", "path": "m.wav", "duration_s": 5.0,
         "sources": [{"package": "wesnoth-music", "path": "x.ogg", "start_s": 0.0,
                      "duration_s": 5.0}]},
        {"id": "ringback-00000", "label": "ringback", "group": "r", "path": "r.wav",
         "duration_s": 5.0, "transforms": {"mix": {"country": "in"}},
         "sources": [{"package": "agent.tones", "path": "in/ringback/0", "start_s": 0.0,
                      "duration_s": 5.0}]},
        {"id": "silence-00000", "label": "silence", "group": "s", "path": "s.wav",
         "duration_s": 5.0, "transforms": {"mix": {"kind": "pink"}},
         "sources": [{"package": "synthetic", "path": "silence/pink", "start_s": 0.0,
                      "duration_s": 5.0}]},
    ]
    (tmp_path / MANIFEST).write_text("".join(json.dumps(x) + "\n" for x in lines))
    items = load_manifest(tmp_path)
    assert [(it.voice, it.engine, it.vocals) for it in items] == [
        ("asterisk-core-sounds-fr-wav/fr_CA_f_June", "human", False),
        ("wesnoth-music", "music", False),
        ("agent.tones/in", "tone", False),
        ("synthetic/pink", "synthetic", False),
    ]
    assert voice_families(items, label="announcement") == {
        "asterisk-core-sounds-fr-wav": ["asterisk-core-sounds-fr-wav/fr_CA_f_June"]}
    assert voice_family("festvox-czech-dita/czech_dita") == "festvox-czech-dita"


@needs_audio_tools
@pytest.mark.corpus
def test_small_build_names_one_voice_per_announcement_and_never_the_held_out_one(
    tmp_path: Path,
) -> None:
    # Every human voice (WAV and GSM prompts) and three Festival voices of three scripts,
    # plus the held-out English voice, which must not be spoken.
    cfg = CorpusConfig(
        seconds_per_class=1.0, voice_min_s=4.0, more_music=[],
        tts_voices=["czech_krb", "hindi_NSK_diphone", "msu_ru_nsh_clunits", "ked_diphone"],
        sources=SourceDirs(midi_music=""),
    )
    build_corpus(tmp_path / "c", cfg, labels=["announcement"], progress=False)
    items = load_manifest(tmp_path / "c")
    by_voice: dict[str, float] = {}
    for it in items:
        assert it.voice and it.engine in ("human", "festival")
        # One file, one voice: every stretch of it comes from the voice's package.
        assert {s.package for s in it.sources} == {voice_family(it.voice)}
        by_voice[it.voice] = by_voice.get(it.voice, 0.0) + it.duration_s
    assert set(by_voice) == set(cfg.speech_voices())
    assert all(sec >= 4.0 for sec in by_voice.values())
    assert not any(v.startswith("festvox-kdlpc16k") for v in by_voice)
    festival = [it for it in items if it.engine == "festival"]
    assert festival and all(u["language"] in TEXTS for it in festival
                            for u in it.transforms["mix"]["utterances"])


def test_the_default_build_never_holds_the_held_out_voice():
    cfg = CorpusConfig()
    assert "festvox-kdlpc16k" in cfg.holdout_voices
    assert not any(voice_family(v) == "festvox-kdlpc16k" for v in cfg.speech_voices())
    # Held out by family or by the exact voice, the result is the same.
    by_voice = CorpusConfig(holdout_voices=["festvox-kdlpc16k/ked_diphone"])
    assert by_voice.speech_voices() == cfg.speech_voices()


def test_a_human_voice_absent_from_the_machine_names_its_package(tmp_path: Path):
    cfg = CorpusConfig(human_voices=[HumanVoice("asterisk-prompt-xx", "xx", "xx_f_Nobody")],
                       tts_voices=[], holdout_voices=[],
                       sources=SourceDirs(asterisk_sounds=str(tmp_path)))
    with pytest.raises(UserError, match=r"apt-get install asterisk-prompt-xx\)"):
        build_corpus(tmp_path / "out", cfg, labels=["announcement"], progress=False)


_VOCAL = next(m for m in CorpusConfig().more_music if m.vocals)


@needs_audio_tools
@pytest.mark.corpus
def test_songs_with_singing_are_their_own_flagged_music_source(tmp_path: Path) -> None:
    # One file of each base package (the smallest), so that cutting them stays quick.
    dirs = {}
    for name, src, pattern in (("moh", SourceDirs().asterisk_moh, "*.wav"),
                               ("wesnoth", SourceDirs().wesnoth_music, "*.ogg")):
        dirs[name] = tmp_path / name
        dirs[name].mkdir()
        smallest = min(Path(src).glob(pattern), key=lambda p: p.stat().st_size)
        (dirs[name] / smallest.name).symlink_to(smallest)
    cfg = CorpusConfig(seconds_per_class=8.0, more_music=[_VOCAL], more_music_seconds=8.0,
                       sources=SourceDirs(asterisk_moh=str(dirs["moh"]), midi_music="",
                                          wesnoth_music=str(dirs["wesnoth"])))
    result = build_corpus(tmp_path / "c", cfg, labels=["music"], progress=False)
    items = load_manifest(tmp_path / "c")
    sung = [it for it in items if it.vocals]
    assert sung and all(it.voice == _VOCAL.package == it.sources[0].package for it in sung)
    assert all(it.engine == "music" for it in items)
    assert {it.voice for it in items if not it.vocals} <= {"asterisk-moh-opsound-wav",
                                                          "wesnoth-music"}
    assert result["vocal_music_sources"] == [_VOCAL.package]
    assert result["per_voice_seconds"]["music"][_VOCAL.package] >= 8.0
