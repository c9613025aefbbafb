"""Leave-one-voice-out folds: who is held out together, and that a fold's model never
learns from the voice it scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agent.classify.model import InputLayout
from agent.distill.dataset import SecondsTable
from agent.distill.folds import (
    PITCH_LEVEL,
    TEACHER_SPEECH,
    TEACHER_UNSEEN,
    FileVoice,
    _halves,
    feature_layout,
    feature_matrix,
    fold_names,
    manifest_voices,
    run_folds,
)
from agent.distill.lovo import score
from agent.distill.train import inputs
from agent.errors import UserError
from agent.labels import LABEL_INDEX, LABELS


def _source(package: str, path: str) -> dict[str, object]:
    return {"package": package, "path": path, "start_s": 0.0, "duration_s": 5.0}


def test_manifest_voices_come_from_the_items_voice_engine_vocals_and_group(
        tmp_path: Path) -> None:
    lines = [
        {"id": "m-1", "label": "music", "group": "g", "path": "a.wav", "duration_s": 5.0,
         "voice": "fretsonfire-songs-sectoid", "engine": "music", "vocals": True,
         "sources": [_source("fretsonfire-songs-sectoid", "song.ogg")]},
        {"id": "a-1", "label": "announcement", "group": "h", "path": "b.wav",
         "duration_s": 5.0, "voice": "festvox-czech-dita/czech_dita", "engine": "festival",
         "sources": [_source("festvox-czech-dita", "x")]},
    ]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(o) + "\n" for o in lines))
    got = manifest_voices(tmp_path)
    assert got["m-1"] == FileVoice("music", "fretsonfire-songs-sectoid", True, "music", "g")
    assert got["a-1"] == FileVoice("announcement", "festvox-czech-dita/czech_dita", None,
                                   "festival", "h")


def test_a_voice_family_is_one_fold_whatever_its_speakers() -> None:
    files = [FileVoice("announcement", "asterisk-core-sounds-en-wav/en_US_f_Allison"),
             FileVoice("announcement", "asterisk-core-sounds-en-wav/en_US_m_Other")]
    assert set(fold_names(files)) == {"announcement asterisk-core-sounds-en-wav"}


def test_each_voice_is_one_fold_and_ringback_and_silence_groups_are_dealt_into_k() -> None:
    files = [FileVoice("announcement", "en"), FileVoice("announcement", "fr"),
             FileVoice("announcement", "en"), FileVoice("music", "wesnoth-music")]
    countries = [f"ringback:{cc}" for cc in ("at", "de", "in", "uk", "us", "za", "jp")]
    files += [FileVoice("ringback", "agent.tones/x", group=c) for c in countries + countries[:3]]
    files += [FileVoice("silence", f"synthetic/{kind}", group=f"silence-{i}")
              for i, kind in enumerate(["hum", "hum", "pink", "white"])]
    folds = fold_names(files, group_folds=3)
    assert folds[:4] == ["announcement en", "announcement fr", "announcement en",
                         "music wesnoth-music"]
    ring = folds[4:4 + 10]
    assert set(ring) == {f"ringback groups {k}/3" for k in (1, 2, 3)}
    # Every file of a country lands in that country's one fold.
    for i in range(3):
        assert ring[i] == ring[len(countries) + i]
    # Silence groups are single files: the two hum files may fall in different folds.
    assert folds[-4:] == ["silence groups 1/3", "silence groups 2/3", "silence groups 3/3",
                          "silence groups 1/3"]


def test_speech_folds_by_engine_hold_out_every_voice_of_an_engine_at_once() -> None:
    files = [FileVoice("announcement", "festvox-ru/msu", engine="festival"),
             FileVoice("announcement", "festvox-czech-dita/dita", engine="festival"),
             FileVoice("announcement", "asterisk-core-sounds-en-wav/Allison", engine="human"),
             FileVoice("announcement", "asterisk-core-sounds-fr-wav"),
             FileVoice("music", "performous", engine="music", vocals=True)]
    assert fold_names(files, speech_by="engine") == [
        "announcement engine festival", "announcement engine festival",
        "announcement engine human", "announcement asterisk-core-sounds-fr-wav",
        "music performous"]
    with pytest.raises(ValueError):
        fold_names(files, speech_by="language")


def _table(voices: list[tuple[str, str, float]], *, files_per_voice: int = 4,
           seconds: int = 12) -> tuple[SecondsTable, list[FileVoice]]:
    """Files of ``(label, voice, x)``: each voice's seconds sit at feature value ``x``
    (plus a little noise); teacher = source, all agreed."""
    rng = np.random.default_rng(0)
    files: list[FileVoice] = []
    xs, ids, groups = [], [], []
    for label, voice, x in voices:
        for i in range(files_per_voice):
            files.append(FileVoice(label, voice))
            xs.append(x)
            ids.append(f"{voice}-{i}")
            groups.append(f"{voice}:{i // 2}")
    n = len(files) * seconds
    source = np.repeat([LABEL_INDEX[f.label] for f in files], seconds).astype(np.int8)
    feats = (np.repeat(xs, seconds)[:, None] + rng.normal(scale=0.1, size=(n, 2))
             ).astype(np.float32)
    table = SecondsTable(
        features=feats, context=np.zeros((n, 3), np.float32),
        periodicity=np.zeros((n, 14), np.float32), source=source, teacher=source.copy(),
        agreed=np.ones(n, bool), soft=np.eye(len(LABELS), dtype=np.float32)[source],
        file=np.repeat(np.arange(len(files)), seconds).astype(np.int32),
        t=np.tile(np.arange(seconds), len(files)).astype(np.int32), ids=ids, groups=groups,
        strata=[f.label for f in files])
    return table, files


# Two announcement voices at the far ends, music in between: a model that never heard a
# far voice can only call it music; one that had heard it would call it announcement.
_FAR_APART = [("announcement", "a-low", -100.0), ("announcement", "a-high", 100.0),
              ("music", "m-1", -50.0), ("music", "m-2", 50.0)]


def test_a_voice_unlike_any_other_is_scored_by_a_model_that_never_heard_it() -> None:
    table, files = _table(_FAR_APART)
    run = run_folds(table, fold_names(files), features="logmel")
    announcement = table.source == LABEL_INDEX["announcement"]
    assert (run.pred[announcement] == LABEL_INDEX["music"]).all()
    assert len(run.folds) == 4 and len(run.fit_seconds) == 4


def test_teacher_labels_of_the_unseen_voice_teach_it_from_the_other_half() -> None:
    table, files = _table(_FAR_APART)
    run = run_folds(table, fold_names(files), strategy=TEACHER_UNSEEN, features="logmel")
    announcement = table.source == LABEL_INDEX["announcement"]
    assert (run.pred[announcement] == LABEL_INDEX["announcement"]).all()


def test_teacher_speech_learns_only_what_the_teacher_calls_speech_in_unseen_files() -> None:
    table, files = _table(_FAR_APART)
    music = table.source == LABEL_INDEX["music"]
    # The teacher calls the unseen music silence: taught that, the student would say so.
    table.teacher[music] = LABEL_INDEX["silence"]
    folds = fold_names(files)
    everything = run_folds(table, folds, strategy=TEACHER_UNSEEN, features="logmel")
    speech = run_folds(table, folds, strategy=TEACHER_SPEECH, features="logmel")
    assert (everything.pred[music] == LABEL_INDEX["silence"]).all()
    assert not (speech.pred[music] == LABEL_INDEX["silence"]).any()
    announcement = table.source == LABEL_INDEX["announcement"]
    assert (speech.pred[announcement] == LABEL_INDEX["announcement"]).all()


def test_halves_split_a_fold_by_file_group() -> None:
    table, _ = _table(_FAR_APART)
    rows = np.isin(table.file, [0, 1, 2, 3])
    a, b = _halves(table, rows)
    assert not (a & b).any() and ((a | b) == rows).all()
    groups = np.asarray(table.groups)[table.file]
    assert not set(groups[a]) & set(groups[b])


def test_scores_put_the_teacher_beside_the_student_on_the_same_seconds() -> None:
    table, files = _table(_FAR_APART)
    music = table.source == LABEL_INDEX["music"]
    table.teacher[music & (table.t < 3)] = LABEL_INDEX["silence"]
    files = [FileVoice(f.label, f.voice, vocals=(f.voice == "m-1") if f.label == "music"
                       else None) for f in files]
    run = run_folds(table, fold_names(files), features="logmel")
    s = score(table, run, files)
    a, m = LABEL_INDEX["announcement"], LABEL_INDEX["music"]
    assert s.recall[a] == 0.0 and s.teacher_recall[a] == 1.0
    assert s.teacher_recall[m] == pytest.approx(9 / 12)
    assert "announcement" in s.classes_below_teacher()
    assert {r.name for r in s.folds} == {"announcement a-low", "announcement a-high",
                                         "music m-1", "music m-2"}
    assert all(r.seconds == 4 * 12 and r.files == 4 for r in s.folds)
    assert s.subsets["music with vocals"][0] == 4 * 12
    assert s.subsets["music with vocals"][2] == pytest.approx(9 / 12)
    # Every announcement call is decided music by the student, announcement by the teacher.
    for row in s.folds:
        if row.label == "announcement":
            assert (row.student_calls, row.teacher_calls) == (0.0, 1.0)


def test_the_shipped_spec_gives_the_shipped_columns_in_order() -> None:
    rng = np.random.default_rng(1)
    n = 5
    table = SecondsTable(
        features=rng.normal(size=(n, 696)).astype(np.float32),
        context=rng.normal(size=(n, 96)).astype(np.float32),
        periodicity=rng.normal(size=(n, 14)).astype(np.float32),
        source=np.zeros(n, np.int8), teacher=np.zeros(n, np.int8), agreed=np.ones(n, bool),
        soft=np.zeros((n, 4), np.float32), file=np.zeros(n, np.int32),
        t=np.arange(n, dtype=np.int32), ids=["f"], groups=["f"], strata=["announcement"])
    for spec in ("logmel+periodicity+context", "context+periodicity+logmel",
                 "logmel+voicing+pitch+steadiness+context"):
        np.testing.assert_array_equal(feature_matrix(table, spec),
                                      inputs(table, "logmel+periodicity+context"))
    np.testing.assert_array_equal(
        feature_matrix(table, "logmel+periodicity-level+context"),
        np.delete(inputs(table, "logmel+periodicity+context"), 696 + PITCH_LEVEL, axis=1))
    assert feature_layout("logmel+voicing+steadiness+context") is None
    assert feature_layout("logmel+acf+steadiness+context") == InputLayout(
        periodicity=True, context=True)
    assert feature_layout("logmel+acf+context") is None
    assert feature_matrix(table, "logmel+steadiness").shape == (n, 696 + 6)
    assert feature_matrix(table, "logmel+pitch")[:, -1].tolist() == table.periodicity[:, 6
                                                                                      ].tolist()


@pytest.mark.parametrize("spec", ["periodicity+context", "logmel+formants"])
def test_feature_specs_must_name_known_blocks_and_the_log_mel(spec: str) -> None:
    table, _ = _table(_FAR_APART)
    with pytest.raises(ValueError):
        feature_matrix(table, spec)


def test_an_unknown_label_strategy_is_refused_in_one_line() -> None:
    table, files = _table(_FAR_APART)
    with pytest.raises(UserError, match="label strategy 'guess'"):
        run_folds(table, fold_names(files), strategy="guess", features="logmel")


def test_candidate_blocks_come_last_are_never_shipped_and_read_only_the_files_past() -> None:
    rng = np.random.default_rng(2)
    n = 6
    table = SecondsTable(
        features=rng.normal(-40, 10, size=(n, 696)).astype(np.float32),
        context=rng.normal(size=(n, 96)).astype(np.float32),
        periodicity=rng.normal(size=(n, 14)).astype(np.float32),
        source=np.zeros(n, np.int8), teacher=np.zeros(n, np.int8), agreed=np.ones(n, bool),
        soft=np.zeros((n, 4), np.float32), file=np.array([0, 0, 0, 1, 1, 1], np.int32),
        t=np.array([0, 1, 2, 0, 1, 2], np.int32), ids=["f", "g"], groups=["f", "g"],
        strata=["announcement", "announcement"])
    shipped = inputs(table, "logmel+periodicity+context+modulation")
    x = feature_matrix(table, "logmel+periodicity+context+modulation+voicing-history")
    np.testing.assert_array_equal(x[:, : shipped.shape[1]], shipped)
    assert x.shape == (n, 696 + 14 + 96 + 25 + 13)
    assert feature_layout("logmel+periodicity+context+modulation") == InputLayout(
        periodicity=True, context=True, modulation=True)
    assert feature_layout("logmel+periodicity+context+voicing-history") is None
    # A file's first second has no past: the same values whatever came before it.
    first = feature_matrix(table.subset(table.file == 1), "logmel+modulation+voicing-history")
    np.testing.assert_allclose(x[3, 696 + 14 + 96:], first[0, 696:], rtol=1e-6)
    np.testing.assert_allclose(x[3, -13:], table.periodicity[3, [0, 1, 2, 3, 4, 5, 7, 8, 9,
                                                                 10, 11, 12, 13]] / 3,
                               rtol=1e-6)
