"""Teachers, class map, label smoothing and a tiny end-to-end distillation."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from agent.audio import SAMPLE_RATE
from agent.audio.io import load_audio, write_wav
from agent.classify.model import StudentModel
from agent.classify.rule import RuleState, StreamRule
from agent.distill import cli
from agent.distill.classmap import TARGETS, load_classmap
from agent.distill.dataset import Recording, SecondsTable, build_table, teach
from agent.distill.smoothing import hann_smooth, per_second, window_frames
from agent.distill.teachers import (
    EarlyMediaTeacher,
    FrameScores,
    SileroVad,
    YamnetTeacher,
    read_class_names,
)
from agent.distill.train import grouped_split, targets
from agent.errors import ConfigError, UserError
from agent.labels import LABEL_INDEX, LABELS


def tone(freqs: tuple[float, ...], seconds: float, *, on_s: float | None = None,
         off_s: float = 0.0, level: float = 0.15) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    x = sum(level * np.sin(2 * np.pi * f * t) for f in freqs)
    if on_s is not None:
        x = x * ((t % (on_s + off_s)) < on_s)
    return np.asarray(x, np.float32)


def speech(tmp_path: Path, text: str, voice: str = "en") -> np.ndarray:
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng is not installed")
    wav = tmp_path / f"{abs(hash((text, voice)))}.wav"
    subprocess.run([exe, "-v", voice, "-w", str(wav), text], check=True, capture_output=True)
    return load_audio(wav)


def music(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A plucked-string melody over a bass line: decaying harmonic notes, 4 per second."""
    sr = SAMPLE_RATE
    out = np.zeros(int(seconds * sr), np.float32)
    scale = [261.6, 293.7, 329.6, 392.0, 440.0, 523.3]
    note = sr // 4
    t = np.arange(note) / sr
    for i in range(out.size // note):
        f = scale[rng.integers(len(scale))]
        env = np.exp(-t * 6)
        x = sum((0.5 / h) * np.sin(2 * np.pi * f * h * t) for h in range(1, 6)) * env
        x += 0.3 * np.sin(2 * np.pi * (f / 2) * t) * env
        out[i * note:(i + 1) * note] = 0.2 * x
    return out


@pytest.fixture(scope="module")
def yamnet() -> YamnetTeacher:
    return YamnetTeacher()


@pytest.fixture(scope="module")
def teacher(yamnet: YamnetTeacher) -> EarlyMediaTeacher:
    return EarlyMediaTeacher(yamnet, vad=SileroVad())


# --- class map -------------------------------------------------------------------------

def test_classmap_maps_every_yamnet_class_exactly_once(yamnet: YamnetTeacher) -> None:
    cmap = load_classmap()
    assert set(cmap.target_of) == set(yamnet.classes)
    assert len(yamnet.classes) == 521
    assert set(cmap.target_of.values()) <= set(TARGETS)
    for label in LABELS:
        assert label in cmap.target_of.values()


def test_classmap_puts_telephone_tones_under_ringback_and_noise_under_silence() -> None:
    cmap = load_classmap()
    for name in ("Dial tone", "Telephone", "Beep, bleep", "Ringtone"):
        assert cmap.target_of[name] == "ringback"
    for name in ("Silence", "White noise", "Pink noise", "Static", "Mains hum"):
        assert cmap.target_of[name] == "silence"
    assert cmap.target_of["Speech"] == "announcement"
    assert cmap.target_of["Singing"] == "music"


def test_classmap_rejects_a_name_mapped_twice(tmp_path: Path) -> None:
    p = tmp_path / "map.yaml"
    p.write_text("announcement: [Speech]\nmusic: [Speech]\n")
    with pytest.raises(ConfigError, match="mapped twice"):
        load_classmap(p)


def test_classmap_rejects_an_unknown_target(tmp_path: Path) -> None:
    p = tmp_path / "map.yaml"
    p.write_text("noise: [Static]\n")
    with pytest.raises(ConfigError, match="unknown target"):
        load_classmap(p)


def test_class_csv_reader_names_a_bad_file(tmp_path: Path) -> None:
    p = tmp_path / "classes.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match="AudioSet class CSV"):
        read_class_names(p)


# --- smoothing -------------------------------------------------------------------------

def test_window_keeps_the_papers_three_seconds_at_other_frame_rates() -> None:
    assert window_frames(100.0) == 301
    assert window_frames(4.0) == 13
    assert window_frames(31.25) % 2 == 1


def test_hann_smoothing_matches_a_hand_computed_vote() -> None:
    # Window 5: hanning(5) = [0, 0.5, 1, 0.5, 0]. Labels 0 1 1 0 2.
    # t=0: neighbours t-2..t+2 -> (-, -, 0, 1, 1) weights (0, .5, 1, .5, 0):
    #      class0 = 1, class1 = 0.5 -> 0
    # t=1: (-, 0, 1, 1, 0) -> class0 = .5 + 0 = .5, class1 = 1 + .5 = 1.5 -> 1
    # t=2: (0, 1, 1, 0, 2) -> class0 = 0 + .5 = .5, class1 = .5 + 1 = 1.5 -> 1
    # t=3: (1, 1, 0, 2, -) -> class0 = 1, class1 = 0 + .5 = .5, class2 = .5 -> 0
    # t=4: (1, 0, 2, -, -) -> class0 = .5, class1 = 0, class2 = 1 -> 2
    labels = np.array([0, 1, 1, 0, 2])
    assert hann_smooth(labels, n_classes=3, window=5).tolist() == [0, 1, 1, 0, 2]
    # An isolated frame inside a long run is voted away.
    assert hann_smooth(np.array([0, 0, 0, 3, 0, 0, 0]), n_classes=4, window=5).tolist() == [0] * 7


def test_hann_smoothing_rejects_an_even_window() -> None:
    with pytest.raises(ValueError):
        hann_smooth(np.zeros(4, int), n_classes=2, window=4)


def test_seconds_are_kept_only_when_all_their_frames_agree() -> None:
    smoothed = np.array([1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3])
    labels, agreed = per_second(smoothed, frame_rate=4.0, n_seconds=3)
    assert labels.tolist() == [1, 2, 3]
    assert agreed.tolist() == [True, False, True]


# --- teachers on generated audio --------------------------------------------------------

def test_yamnet_front_end_shapes_and_range(yamnet: YamnetTeacher) -> None:
    mel = yamnet.log_mel(np.zeros(16000, np.float32))
    assert mel.shape == (98, 64)
    assert np.allclose(mel, np.log(0.001))
    fs = yamnet.frame_scores(np.zeros(2 * SAMPLE_RATE, np.float32))
    assert fs.scores.shape == (8, 521) and fs.frame_rate == 4.0
    assert fs.scores.min() >= 0.0 and fs.scores.max() <= 1.0


def test_teacher_calls_synthesised_speech_an_announcement(
        teacher: EarlyMediaTeacher, tmp_path: Path) -> None:
    x = speech(tmp_path, "The number you have dialled does not exist. Please check the "
                         "number and try again.")
    taught = teach(teacher, x)
    speechy = taught.label[taught.agreed]
    assert speechy.size > 0
    assert np.mean(speechy == LABEL_INDEX["announcement"]) > 0.8


def test_silero_vad_separates_speech_from_tone(tmp_path: Path) -> None:
    vad = SileroVad()
    x = speech(tmp_path, "Your call cannot be completed as dialled.")
    assert vad.frame_scores(x).scores.mean() > 0.3
    assert vad.frame_scores(tone((425.0,), 3.0)).scores.mean() < 0.05


def test_teacher_calls_a_sine_ringback_and_zeros_silence(teacher: EarlyMediaTeacher) -> None:
    ring = teach(teacher, tone((440.0, 480.0), 4.0))
    assert (ring.label == LABEL_INDEX["ringback"]).all()
    beep = teach(teacher, tone((1000.0,), 3.0, level=0.3))
    assert (beep.label == LABEL_INDEX["ringback"]).all()
    quiet = teach(teacher, np.zeros(3 * SAMPLE_RATE, np.float32))
    assert (quiet.label == LABEL_INDEX["silence"]).all()


# --- training --------------------------------------------------------------------------

def _recordings(tmp_path: Path) -> list[Recording]:
    rng = np.random.default_rng(5)
    recs = []
    phrases = ["The subscriber you have called is not available.",
               "This number is no longer in service.",
               "Please hang up and try again later.",
               "All circuits are busy now.",
               "The mobile phone you are calling is switched off."]
    for i, text in enumerate(phrases):
        recs.append(Recording(id=f"a{i}", group=f"a{i}", label="announcement",
                              samples=speech(tmp_path, text, voice=("en", "en-us")[i % 2])))
    for i, f in enumerate((425.0, 400.0, 440.0, 450.0, 420.0)):
        recs.append(Recording(id=f"r{i}", group=f"r{i}", label="ringback",
                              samples=tone((f, f + 40 * (i % 2)), 6.0, on_s=1.0, off_s=0.5)))
    for i in range(5):
        recs.append(Recording(id=f"m{i}", group=f"m{i}", label="music",
                              samples=music(6.0, rng)))
    for i in range(5):
        level = 10 ** ((-70 + 5 * i) / 20)
        recs.append(Recording(id=f"s{i}", group=f"s{i}", label="silence",
                              samples=(level * rng.standard_normal(5 * SAMPLE_RATE))
                              .astype(np.float32)))
    return recs


def test_split_never_puts_a_group_on_both_sides(teacher: EarlyMediaTeacher,
                                                tmp_path: Path) -> None:
    table = build_table(_recordings(tmp_path), teacher)
    test = grouped_split(table)
    groups = np.asarray(table.groups)[table.file]
    assert not set(groups[test]) & set(groups[~test])
    for c in range(len(LABELS)):
        assert test[table.source == c].any() and (~test)[table.source == c].any()
    keep, y = targets(table, "combined")
    assert (y[keep] == table.source[keep]).all()
    keep, y = targets(table, "teacher")
    assert keep.sum() == table.agreed.sum()


def test_distill_trains_a_loadable_student_from_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "recordings"
    for rec in _recordings(tmp_path):
        write_wav(folder / f"{rec.id}.wav", rec.samples)
    out = tmp_path / "model"
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["distill", str(folder), "--out", str(out), "--quick",
                              "--no-cache"])
    assert args.func(args) == 0
    model = StudentModel.load(out / "student.txt")
    report = (out / "REPORT.md").read_text()
    assert "Table I" in report and (out / "MODEL_CARD.md").is_file()
    assert (out / "confusion.png").stat().st_size > 1000
    probs = model.predict_proba(np.zeros((3, model.n_features), np.float32))
    assert probs.shape == (3, 4) and np.allclose(probs.sum(axis=1), 1.0)


def test_train_names_the_command_that_builds_a_missing_corpus(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["train", "--corpus", str(tmp_path / "nowhere"), "--out",
                              str(tmp_path / "m")])
    with pytest.raises(UserError, match="early-media-agent corpus build"):
        args.func(args)


@pytest.mark.parametrize("text", ["not json", '{"test_files": "a"}', "{}"])
def test_train_rejects_a_bad_held_out_split_in_one_line(tmp_path: Path, text: str) -> None:
    (tmp_path / "split.json").write_text(text)
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["train", "--corpus", str(tmp_path), "--held-out",
                              str(tmp_path / "split.json"), "--out", str(tmp_path / "m")])
    with pytest.raises(UserError, match="split.json") as err:
        args.func(args)
    assert "\n" not in str(err.value)


def test_distill_rejects_a_folder_without_audio(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["distill", str(tmp_path), "--out", str(tmp_path / "m")])
    with pytest.raises(UserError, match="no audio files"):
        args.func(args)


class _FixedTeacher:
    """A teacher that returns given scores, to check the combination arithmetic."""

    def __init__(self, name: str, scores: np.ndarray, rate: float,
                 classes: tuple[str, ...]) -> None:
        self.name = name
        self._fs = FrameScores(scores=scores.astype(np.float32), frame_rate=rate,
                               classes=classes)

    def frame_scores(self, samples: np.ndarray) -> FrameScores:
        return self._fs


def test_vad_backs_up_speech_unless_the_tagger_hears_music(yamnet: YamnetTeacher) -> None:
    names = yamnet.classes
    tagged = np.zeros((2, len(names)))
    tagged[:, names.index("Speech")] = 0.1
    tagged[1, names.index("Music")] = 0.8
    tagger = _FixedTeacher("tagger", tagged, 4.0, names)
    vad = _FixedTeacher("vad", np.full((16, 1), 0.9), 31.25, ("speech",))
    combined = EarlyMediaTeacher(tagger, vad=vad).frame_scores(np.zeros(4000, np.float32))
    a, m = LABEL_INDEX["announcement"], LABEL_INDEX["music"]
    assert combined.scores[0, a] == pytest.approx(0.9)
    assert combined.scores[1, a] == pytest.approx(max(0.1, 0.9 * (1 - 0.8)))
    assert combined.scores[1, m] == pytest.approx(0.8)
    alone = EarlyMediaTeacher(tagger).frame_scores(np.zeros(4000, np.float32))
    assert alone.scores[0, a] == pytest.approx(0.1)


def test_combined_labels_keep_cadence_gaps_only_after_a_heard_burst() -> None:
    from agent.distill.dataset import SecondsTable

    r, s = LABEL_INDEX["ringback"], LABEL_INDEX["silence"]
    # One ringback file: it starts inside a gap (2 s), then burst, gap, gap, burst.
    teacher = np.array([s, s, r, s, s, r])
    n = teacher.size
    table = SecondsTable(
        features=np.zeros((n, 696), np.float32), context=np.zeros((n, 96), np.float32),
        periodicity=np.zeros((n, 8), np.float32), source=np.full(n, r, np.int8),
        teacher=teacher.astype(np.int8), agreed=np.ones(n, bool),
        soft=np.zeros((n, 4), np.float32), file=np.zeros(n, np.int32),
        t=np.arange(n, dtype=np.int32), ids=["r0"], groups=["r0"], strata=["ringback/x"],
    )
    keep, y = targets(table, "combined")
    assert keep.tolist() == [False, False, True, True, True, True]
    assert (y[keep] == r).all()
    keep, y = targets(table, "source")
    assert keep.all()


def _bare_table(files: list[tuple[str, str, str]], seconds: int = 5) -> SecondsTable:
    """A table of ``(id, group, stratum)`` files of ``seconds`` rows each, no features."""
    n = len(files) * seconds
    source = np.repeat([LABEL_INDEX[s.split("/")[0]] for _, _, s in files], seconds)
    return SecondsTable(
        features=np.zeros((n, 1), np.float32), context=np.zeros((n, 1), np.float32),
        periodicity=np.zeros((n, 1), np.float32), source=source.astype(np.int8),
        teacher=source.astype(np.int8), agreed=np.ones(n, bool),
        soft=np.zeros((n, len(LABELS)), np.float32),
        file=np.repeat(np.arange(len(files)), seconds).astype(np.int32),
        t=np.tile(np.arange(seconds), len(files)).astype(np.int32),
        ids=[f for f, _, _ in files], groups=[g for _, g, _ in files],
        strata=[s for _, _, s in files])


def test_training_carries_probabilities_over_per_file_in_time_order_like_the_stream() -> None:
    from agent.classify.rule import carry_over
    from agent.distill.train import carried_over

    table = _bare_table([("a", "a", "music/p"), ("b", "b", "music/p")], seconds=3)
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(len(LABELS)), size=len(table))
    shuffled = rng.permutation(len(table))
    got = carried_over(table.subset(shuffled), probs[shuffled])
    for f in range(2):
        carried = None
        for t in range(3):
            r = f * 3 + t
            carried = carry_over(carried, probs[r].tolist(), StreamRule().persistence)
            np.testing.assert_allclose(got[np.flatnonzero(shuffled == r)[0]], carried)


def test_split_keeps_an_earlier_held_out_set_and_splits_new_sources() -> None:
    old = [(f"music-{i:05d}", f"music:t{i // 2}.ogg", "music/old-pkg") for i in range(20)]
    old += [(f"ringback-{i:05d}", f"ringback:c{i}", "ringback/agent.tones") for i in range(10)]
    # One group of each old stratum, fewer than a fresh 20% split would take.
    held = ["music-00002", "music-00003", "ringback-00004"]
    new = [(f"music-{20 + i:05d}", f"music:new/t{i}.ogg", "music/new-pkg") for i in range(10)]
    after = _bare_table(old + new)
    test = grouped_split(after, keep_test=held)
    test_ids = {after.ids[f] for f in after.file[test]}
    # The earlier held-out files (and only they) of the old sources, plus new-source files.
    assert test_ids & {i for i, _, _ in old} == set(held)
    assert 0 < len(test_ids - set(held)) < len(new)
    groups = np.asarray(after.groups)[after.file]
    assert not set(groups[test]) & set(groups[~test])
    # A held-out file pulls in the files of its group.
    one = grouped_split(after, keep_test=["music-00000"])
    assert {after.ids[f] for f in after.file[one] if after.strata[f] == "music/old-pkg"} == {
        "music-00000", "music-00001"}


def test_stream_ending_before_a_decision_counts_the_gap_before_a_burst_as_ringback() -> None:
    def decide(labels: str) -> str | None:
        names = {"A": "announcement", "R": "ringback", "M": "music", "S": "silence"}
        state = RuleState()
        for t, k in enumerate(labels):
            state.push(t, names[k], 0.9)
        decision = state.finish(float(len(labels)))
        return decision.label if decision is not None else None

    # Started inside a 4-s cadence gap, one burst second heard, then the call ended.
    assert decide("SSSR") == "ringback"
    # Silence long before the burst is not its gap; silence alone stays silence.
    assert decide("SSSSSSSSR") == "silence"
    assert decide("SSSS") == "silence"
    assert decide("SSAR") == "announcement"


def test_held_out_notes_name_files_the_corpus_no_longer_has() -> None:
    from agent.distill.cli import held_out_notes

    split = Path("models/split.json")
    assert len(held_out_notes(["a-1", "b-2"], ["a-1", "b-2", "c-3"], split=split)) == 1
    notes = held_out_notes(["a-1", "b-2", "b-9"], ["a-1", "b-2"], split=split)
    assert notes[0].startswith("Held out: the 3 files models/split.json")
    assert notes[1] == "1 of them are no longer in the corpus: b-9."
