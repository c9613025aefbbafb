"""The corpus builder on the real Debian audio: manifest, resume, provenance, errors."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from agent.audio import SAMPLE_RATE
from agent.audio.io import load_audio
from agent.config import build, read_yaml
from agent.corpus import cli
from agent.corpus.build import build_corpus
from agent.corpus.config import CorpusConfig, MusicSource, SourceDirs
from agent.corpus.manifest import MANIFEST, CorpusItem, load_manifest
from agent.corpus.sources import (
    MIDI_PACKAGE,
    MOH_PACKAGE,
    WESNOTH_PACKAGE,
    more_music_files,
    music_files,
    render_midi,
)
from agent.corpus.speech import is_excluded, prompt_files
from agent.corpus.truth import first_burst_s, second_labels
from agent.errors import ConfigError, UserError
from agent.labels import LABELS
from agent.paths import CONFIG_DIR

DEFAULTS = SourceDirs()
HUMAN = CorpusConfig().human_voices
# The three prompt voices the corpus began with; the builder tests keep to them (and no
# Festival voice) so that they stay quick. tests/test_corpus_voices.py covers the rest.
FIRST_VOICES = HUMAN[:3]
PROMPTS_ONLY = {"human_voices": FIRST_VOICES, "tts_voices": [], "holdout_voices": [],
                "voice_min_s": 0.0}
needs_tools = pytest.mark.skipif(
    shutil.which("sox") is None or shutil.which("ffmpeg") is None,
    reason="sox and ffmpeg are needed (apt-get install sox libsox-fmt-all ffmpeg)",
)
_missing = [
    d for d in (
        *(Path(DEFAULTS.asterisk_sounds) / v.dir for v in HUMAN),
        Path(DEFAULTS.asterisk_moh),
        Path(DEFAULTS.wesnoth_music),
    ) if not d.is_dir()
]
needs_debian_audio = pytest.mark.skipif(
    bool(_missing) or shutil.which("sox") is None or shutil.which("ffmpeg") is None,
    reason=f"Debian audio packages or sox/ffmpeg absent ({', '.join(map(str, _missing))}); "
    "apt-get install asterisk-core-sounds-{en,es,fr}-wav asterisk-moh-opsound-wav "
    "wesnoth-music sox libsox-fmt-all ffmpeg",
)


HAVE_MIDI = Path(DEFAULTS.midi_music).is_dir() and Path(DEFAULTS.soundfont).is_file()
needs_midi = pytest.mark.skipif(
    not HAVE_MIDI or shutil.which("fluidsynth") is None,
    reason="apt-get install planetblupi-music-midi fluidsynth fluid-soundfont-gm",
)


def _link_some(src: str, dst: Path, pattern: str, count: int) -> None:
    """Link the ``count`` smallest files, to keep decoding quick."""
    dst.mkdir()
    for path in sorted(Path(src).glob(pattern), key=lambda p: (p.stat().st_size, p.name))[:count]:
        (dst / path.name).symlink_to(path)


@pytest.fixture
def small_sources(tmp_path: Path) -> SourceDirs:
    """The real prompts and music on hold, two of the game music files and one MIDI file
    (reading them all to cut segments takes longer than a test should)."""
    _link_some(DEFAULTS.wesnoth_music, tmp_path / "wesnoth", "*.ogg", 2)
    midi = ""
    if HAVE_MIDI:
        _link_some(DEFAULTS.midi_music, tmp_path / "midi", "*.mid", 1)
        midi = str(tmp_path / "midi")
    return SourceDirs(DEFAULTS.asterisk_sounds, DEFAULTS.asterisk_moh,
                      str(tmp_path / "wesnoth"), midi_music=midi)


def tiny(sources: SourceDirs, **kw: object) -> CorpusConfig:
    settings = {"seconds_per_class": 20.0, "midi_seconds": 30.0, "more_music": [],
                **PROMPTS_ONLY, "human_voices": FIRST_VOICES[:1], **kw}
    return CorpusConfig(sources=sources, **settings)  # type: ignore[arg-type]


def test_shipped_config_file_validates() -> None:
    cfg = build(CorpusConfig, read_yaml(CONFIG_DIR / "corpus.yaml"), "corpus")
    assert cfg == CorpusConfig()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"segment_s": [15.0, 4.0]}, "corpus.segment_s"),
        ({"level_dbfs": [-10.0]}, "corpus.level_dbfs"),
        ({"codec_weights": {"g729": 1.0}}, "corpus.codec_weights.g729"),
        ({"codec_weights": {"ulaw": 0.0}}, "corpus.codec_weights"),
        ({"loss_prob": 1.5}, "corpus.loss_prob"),
        ({"seconds_per_clas": 10}, "corpus.seconds_per_clas: unknown"),
        ({"sources": {"moh": "/x"}}, "corpus.sources.moh: unknown"),
        ({"more_music": [{"package": "x"}]}, "corpus.more_music[0].dir: required"),
        ({"more_music_seconds": -1}, "corpus.more_music_seconds"),
    ],
)
def test_bad_config_names_the_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        build(CorpusConfig, data, "corpus")


@needs_debian_audio
@pytest.mark.corpus
def test_tiny_build_writes_a_valid_manifest(tmp_path: Path, small_sources: SourceDirs) -> None:
    out = tmp_path / "corpus"
    result = build_corpus(out, tiny(small_sources), progress=False)
    items = load_manifest(out)
    assert result["built_files"] == len(items) and result["skipped_files"] == 0
    assert {it.label for it in items} == set(LABELS)
    for label in LABELS:
        seconds = sum(it.duration_s for it in items if it.label == label)
        assert 20.0 <= seconds < 20.0 + 15.0 + 1e-6
    packages = {s.package for it in items for s in it.sources}
    assert FIRST_VOICES[0].package in packages
    assert {MOH_PACKAGE, WESNOTH_PACKAGE} & packages
    for it in items:
        info = sf.info(str(out / it.path))
        assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
        assert abs(info.frames / SAMPLE_RATE - it.duration_s) < 1e-3
        assert 4.0 - 1e-3 <= it.duration_s <= 15.0 + 1e-3
        assert it.transforms["channel"]["codec"] in CorpusConfig().codec_weights
        assert it.sources and all(s.duration_s > 0 for s in it.sources)
        for s in it.sources:
            assert s.package == "agent.tones" or s.package == "synthetic" or Path(s.path).is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files"] == len(items)
    readme = (out / "README").read_text()
    assert all(pkg in readme for pkg in packages)
    assert not list(out.rglob("*.part.wav"))


@needs_debian_audio
@pytest.mark.corpus
def test_each_prompt_is_used_in_one_announcement_only(
    tmp_path: Path, small_sources: SourceDirs
) -> None:
    cfg = CorpusConfig(seconds_per_class=120.0, sources=small_sources, **PROMPTS_ONLY)
    build_corpus(tmp_path, cfg, labels=["announcement"], progress=False)
    items = load_manifest(tmp_path)
    used = [s.path for it in items for s in it.sources]
    assert {s.package for it in items for s in it.sources} == {v.package for v in FIRST_VOICES}
    assert len(used) == len(set(used))
    assert all(it.group == it.id for it in items)


@needs_debian_audio
@pytest.mark.corpus
def test_music_segments_of_one_file_share_a_group_and_do_not_overlap(
    tmp_path: Path, small_sources: SourceDirs
) -> None:
    cfg = tiny(small_sources, seconds_per_class=120.0)
    build_corpus(tmp_path, cfg, labels=["music"], progress=False)
    by_file: dict[str, list[tuple[float, float, str]]] = {}
    for it in load_manifest(tmp_path):
        (src,) = it.sources
        by_file.setdefault(src.path, []).append((src.start_s, src.duration_s, it.group))
    assert len(by_file) > 1
    packages = {s.package for it in load_manifest(tmp_path) for s in it.sources}
    assert {MOH_PACKAGE, WESNOTH_PACKAGE} <= packages
    assert (MIDI_PACKAGE in packages) == HAVE_MIDI
    for spans in by_file.values():
        assert len({g for _, _, g in spans}) == 1
        spans.sort()
        for (s0, d0, _), (s1, _, _) in zip(spans, spans[1:], strict=False):
            assert s0 + d0 <= s1 + 1e-3


@needs_debian_audio
@pytest.mark.corpus
def test_resumed_build_skips_done_files_and_equals_a_fresh_build(
    tmp_path: Path, small_sources: SourceDirs
) -> None:
    resumed, fresh = tmp_path / "resumed", tmp_path / "fresh"
    first = build_corpus(resumed, tiny(small_sources, seconds_per_class=10.0), progress=False)
    # A crash mid-file leaves a partial file that the manifest does not list.
    (resumed / "audio" / "silence" / "silence-09999.part.wav").write_bytes(b"RIFF")
    second = build_corpus(resumed, tiny(small_sources), progress=False)
    third = build_corpus(resumed, tiny(small_sources), progress=False)
    # A build killed after writing a file but before its manifest line redoes that file.
    lines = (resumed / MANIFEST).read_text().splitlines(keepends=True)
    (resumed / MANIFEST).write_text("".join(lines[:-1]))
    fourth = build_corpus(resumed, tiny(small_sources), progress=False)
    build_corpus(fresh, tiny(small_sources), progress=False)
    assert second["skipped_files"] == first["built_files"] > 0
    assert third["built_files"] == 0
    assert fourth["built_files"] == 1
    a, b = load_manifest(resumed), load_manifest(fresh)
    assert sorted(i.as_json().__repr__() for i in a) == sorted(i.as_json().__repr__() for i in b)
    for it in b:
        assert np.array_equal(load_audio(resumed / it.path), load_audio(fresh / it.path))


@needs_debian_audio
@pytest.mark.corpus
def test_same_seed_builds_the_same_audio_and_another_seed_does_not(
    tmp_path: Path, small_sources: SourceDirs
) -> None:
    outs = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        build_corpus(tmp_path / name, tiny(small_sources, seed=seed, seconds_per_class=8.0),
                     labels=["silence", "ringback"], progress=False)
        outs[name] = [load_audio(tmp_path / name / it.path).tobytes()
                      for it in load_manifest(tmp_path / name)]
    assert outs["a"] == outs["b"]
    assert outs["a"] != outs["c"]


_MORE = {m.package: m for m in CorpusConfig().more_music}
_FOF = "fretsonfire-songs-muldjord"
needs_more_music = pytest.mark.skipif(
    not all(Path(_MORE[p].dir).is_dir() for p in ("openttd-openmsx", _FOF)) or not HAVE_MIDI
    or shutil.which("fluidsynth") is None,
    reason="apt-get install openttd-openmsx fretsonfire-songs-muldjord fluidsynth "
    "fluid-soundfont-gm",
)


@pytest.fixture
def more_music(tmp_path: Path) -> list[MusicSource]:
    """One MIDI file of openMSX and two Frets on Fire songs, which are all named song.ogg."""
    midi = tmp_path / "openmsx"
    _link_some(_MORE["openttd-openmsx"].dir, midi, "*.mid", 1)
    songs = tmp_path / "fof"
    for song in sorted(Path(_MORE[_FOF].dir).glob("*/song.ogg"))[:2]:
        (songs / song.parent.name).mkdir(parents=True)
        (songs / song.parent.name / "song.ogg").symlink_to(song)
    return [MusicSource("openttd-openmsx", str(midi), "*.mid"),
            MusicSource(_FOF, str(songs), "song.ogg")]


@needs_debian_audio
@needs_more_music
@pytest.mark.corpus
def test_more_music_appends_files_and_keeps_the_built_ones(
    tmp_path: Path, small_sources: SourceDirs, more_music: list[MusicSource]
) -> None:
    grown, fresh = tmp_path / "grown", tmp_path / "fresh"
    base = tiny(small_sources)
    build_corpus(grown, base, labels=["music"], progress=False)
    before = (grown / MANIFEST).read_text()
    more = dataclasses.replace(base, more_music=more_music, more_music_seconds=40.0)
    result = build_corpus(grown, more, labels=["music"], progress=False)
    assert (grown / MANIFEST).read_text().startswith(before)
    items = load_manifest(grown)
    old = len(before.splitlines())
    assert result["skipped_files"] == old and result["built_files"] == len(items) - old > 0
    added = items[old:]
    assert sorted(it.id for it in items) == [f"music-{i:05d}" for i in range(len(items))]
    assert min(it.id for it in added) == f"music-{old:05d}"
    assert {s.package for it in added for s in it.sources} == {"openttd-openmsx", _FOF}
    assert sum(it.duration_s for it in added) >= 40.0
    songs = {it.group for it in added if it.sources[0].package == _FOF}
    assert len(songs) == 2 and all(g.startswith(f"music:{_FOF}/") for g in songs)
    # Settings that change the existing files, or the added ones, are still refused.
    for changed in (dataclasses.replace(more, seed=3),
                    dataclasses.replace(more, more_music=more_music[:1])):
        with pytest.raises(UserError, match="other settings"):
            build_corpus(grown, changed, labels=["music"], progress=False)
    build_corpus(fresh, more, labels=["music"], progress=False)
    assert (fresh / MANIFEST).read_text() == (grown / MANIFEST).read_text()


def test_missing_more_music_package_is_named(tmp_path: Path) -> None:
    cfg = CorpusConfig(more_music=[MusicSource("some-music", str(tmp_path / "absent"))])
    with pytest.raises(UserError, match="apt-get install some-music"):
        more_music_files(cfg)


@needs_midi
def test_midi_renders_the_requested_seconds_of_audible_mono() -> None:
    (first, *_) = sorted(Path(DEFAULTS.midi_music).glob("*.mid"))
    x = render_midi(first, soundfont=Path(DEFAULTS.soundfont), seconds=6.0)
    assert x.shape == (6 * SAMPLE_RATE,)
    assert np.all(np.isfinite(x)) and 0.001 < float(np.sqrt(np.mean(x**2))) < 1.0


def test_missing_soundfont_names_its_package(tmp_path: Path) -> None:
    sources = SourceDirs(midi_music=str(tmp_path), soundfont=str(tmp_path / "none.sf2"))
    (tmp_path / "a.mid").write_bytes(b"MThd")
    with pytest.raises(UserError, match="apt-get install fluid-soundfont-gm"):
        music_files(CorpusConfig(sources=sources))


@needs_tools
def test_reusing_a_directory_with_another_seed_is_refused(tmp_path: Path) -> None:
    build_corpus(tmp_path, CorpusConfig(seconds_per_class=5.0), labels=["silence"],
                 progress=False)
    with pytest.raises(UserError, match="other settings"):
        build_corpus(tmp_path, CorpusConfig(seconds_per_class=5.0, seed=3), labels=["silence"],
                     progress=False)


@needs_tools
@pytest.mark.parametrize(
    ("field", "package"),
    [("asterisk_sounds", "asterisk-core-sounds-en-wav"),
     ("asterisk_moh", MOH_PACKAGE),
     ("wesnoth_music", WESNOTH_PACKAGE),
     ("midi_music", MIDI_PACKAGE)],
)
def test_missing_debian_package_is_a_one_line_user_error(
    tmp_path: Path, field: str, package: str
) -> None:
    # Listed (never read): every other source is present, so the error is about `field`.
    present = {"asterisk_sounds": tmp_path / "sounds", "asterisk_moh": tmp_path / "moh",
               "wesnoth_music": tmp_path / "wesnoth", "midi_music": tmp_path / "midi"}
    for voice in HUMAN:
        (present["asterisk_sounds"] / voice.dir).mkdir(parents=True, exist_ok=True)
        (present["asterisk_sounds"] / voice.dir / f"a{voice.pattern[1:]}").write_bytes(b"")
    for key, name in (("asterisk_moh", "a.wav"), ("wesnoth_music", "a.ogg"),
                      ("midi_music", "a.mid")):
        present[key].mkdir()
        (present[key] / name).write_bytes(b"")
    (tmp_path / "gm.sf2").write_bytes(b"")
    sources = SourceDirs(**{k: str(v) for k, v in present.items()},
                         soundfont=str(tmp_path / "gm.sf2"))
    sources = dataclasses.replace(sources, **{field: str(tmp_path / "absent")})
    labels = ["announcement"] if field == "asterisk_sounds" else ["music"]
    with pytest.raises(UserError, match=f"apt-get install {package}") as err:
        build_corpus(tmp_path / "out", CorpusConfig(seconds_per_class=5.0, sources=sources),
                     labels=labels, progress=False)
    assert "\n" not in str(err.value)


@needs_tools
def test_missing_or_corrupt_manifest_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no corpus manifest"):
        load_manifest(tmp_path)
    build_corpus(tmp_path, CorpusConfig(seconds_per_class=5.0), labels=["silence"],
                 progress=False)
    with (tmp_path / MANIFEST).open("a") as fh:
        fh.write('{"id": "x", "label": "silence"\n')
    with pytest.raises(UserError, match=r"manifest\.jsonl:2: corrupt"):
        load_manifest(tmp_path)


def test_manifest_with_an_unknown_label_is_a_user_error(tmp_path: Path) -> None:
    line = {"id": "a", "label": "speech", "group": "a", "path": "a.wav", "duration_s": 1.0}
    (tmp_path / MANIFEST).write_text(json.dumps(line) + "\n")
    with pytest.raises(UserError, match="unknown label 'speech'"):
        load_manifest(tmp_path)


@needs_tools
def test_cli_build_and_info_print_totals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["corpus", "build", "--out", str(tmp_path), "--seconds-per-class",
                              "6", "--labels", "silence,ringback", "--quiet"])
    assert args.func(args) == 0
    capsys.readouterr()
    args = parser.parse_args(["corpus", "info", "--out", str(tmp_path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "silence" in out and "ringback" in out and "announcement" not in out
    with pytest.raises(SystemExit):
        parser.parse_args(["corpus", "build", "--labels", "speech"])


def _ringback_item(phase_s: float, duration_s: float = 8.0) -> CorpusItem:
    return CorpusItem(id="ringback-00000", label="ringback", group="ringback:us",
                      path="a.wav", duration_s=duration_s,
                      transforms={"mix": {"country": "us", "variant": 0, "phase_s": phase_s}})


def test_ringback_seconds_before_the_first_burst_are_silence() -> None:
    # US ringback: 2 s on, 4 s off. From 2.5 s into the cadence the burst comes at 3.5 s.
    assert first_burst_s(_ringback_item(2.5)) == pytest.approx(3.5, abs=1e-3)
    assert second_labels(_ringback_item(2.5), 8) == ["silence"] * 3 + ["ringback"] * 5
    assert second_labels(_ringback_item(0.5), 8) == ["ringback"] * 8
    # From 2.0 s in, the first second holds no tone until exactly 4 s: four silent seconds.
    assert second_labels(_ringback_item(2.0), 6) == ["silence"] * 4 + ["ringback"] * 2
    music = CorpusItem(id="music-00000", label="music", group="music:a", path="a.wav",
                       duration_s=5.0)
    assert first_burst_s(music) is None and second_labels(music, 5) == ["music"] * 5


def test_prompt_exclude_leaves_out_non_speech_prompts() -> None:
    cfg = CorpusConfig()
    assert is_excluded("silence/10.wav", cfg.prompt_exclude)
    assert is_excluded("beep.wav", cfg.prompt_exclude)
    assert not is_excluded("tt-monkeysintro.wav", cfg.prompt_exclude)
    assert not is_excluded("vm-intro.wav", cfg.prompt_exclude)


@needs_debian_audio
def test_prompt_files_skip_the_excluded_prompts() -> None:
    root = Path(DEFAULTS.asterisk_sounds)
    every = prompt_files(CorpusConfig(prompt_exclude=[]))
    speech = prompt_files(CorpusConfig())
    for voice in HUMAN:
        d = root / voice.dir
        gone = {p.relative_to(d).as_posix() for p in set(every[voice.voice])
                - set(speech[voice.voice])}
        assert all(is_excluded(g, CorpusConfig().prompt_exclude) for g in gone)
        if voice in FIRST_VOICES:
            assert {"silence/1.wav", "beep.wav", "confbridge-join.wav"} <= gone
    with pytest.raises(UserError, match="leaves no prompt"):
        prompt_files(CorpusConfig(prompt_exclude=["*"]))


def test_prompt_exclude_must_be_patterns() -> None:
    with pytest.raises(ConfigError, match="prompt_exclude"):
        build(CorpusConfig, {"prompt_exclude": [""]}, "corpus").validate()


@needs_debian_audio
@pytest.mark.corpus
def test_a_changed_prompt_exclude_rebuilds_announcements_only(
    tmp_path: Path, small_sources: SourceDirs
) -> None:
    old = tiny(small_sources, seconds_per_class=8.0, prompt_exclude=[])
    build_corpus(tmp_path, old, labels=["announcement", "silence"], progress=False)
    # A record written before prompt_exclude existed was built with every prompt.
    record = json.loads((tmp_path / "build.json").read_text())
    del record["prompt_exclude"]
    (tmp_path / "build.json").write_text(json.dumps(record))
    silence = {it.id: (tmp_path / it.path).read_bytes()
               for it in load_manifest(tmp_path) if it.label == "silence"}
    new = dataclasses.replace(old, prompt_exclude=["[a-m]*.wav"])
    result = build_corpus(tmp_path, new, labels=["announcement", "silence"], progress=False)
    items = load_manifest(tmp_path)
    assert result["skipped_files"] == len(silence)
    assert {it.id: (tmp_path / it.path).read_bytes()
            for it in items if it.label == "silence"} == silence
    root = Path(small_sources.asterisk_sounds)
    used = [Path(*Path(s.path).relative_to(root).parts[1:]).as_posix()
            for it in items if it.label == "announcement" for s in it.sources]
    assert used and all(not is_excluded(u, new.prompt_exclude) for u in used)
    fresh = tmp_path / "fresh"
    build_corpus(fresh, new, labels=["announcement"], progress=False)
    assert [it.as_json() for it in load_manifest(fresh)] == [
        it.as_json() for it in items if it.label == "announcement"]
    # Any other change is still refused.
    with pytest.raises(UserError, match="other settings"):
        build_corpus(tmp_path, dataclasses.replace(new, seed=5), labels=["silence"],
                     progress=False)
