"""Train the LightGBM student on teacher-labelled seconds and measure it.

Labels (``--labels``):

* ``teacher`` — the paper's recipe: only seconds whose smoothed teacher frames agree, with
  the teacher's label;
* ``source`` — every second, with its corpus file's true class;
* ``combined`` — the true class, on seconds where the teacher's agreed label confirms it;
  a ringback file's seconds the teacher calls silence are kept as ringback when the
  teacher heard ringback in the :data:`GAP_SECONDS` seconds before (the silent gaps of a
  cadence, which a one-second teacher cannot know but the context features show); other
  disagreements are dropped as doubtful (a music file's quiet bar, a pause between
  prompts, a ringback file that starts inside a gap).

The split is by file group (files cut from the same source audio never straddle it),
stratified by class, 80/20.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import scipy.fft

from agent.classify.model import InputLayout
from agent.classify.rule import RuleState, StreamRule, carry_over
from agent.distill import LABEL_MODES
from agent.distill.dataset import Recording, SecondsTable
from agent.errors import UserError
from agent.features import N_MELS
from agent.features.modulation import modulation_of_runs
from agent.labels import LABEL_INDEX, LABELS

FEATURE_SETS = (
    "logmel+periodicity+context", "logmel+periodicity+context+modulation",
    "logmel+summary+context", "logmel+context",
    "logmel+summary+periodicity+context", "logmel", "mfcc",
)
STUDENT_FEATURES = FEATURE_SETS[0]
"""What ``train`` fits first and ships: log-mel, periodicity (pitch level included: on
voices held out one at a time, leaving it out lost MIDI music to announcement, macro-F1
0.924 vs 0.958, bench/classifier.py) and context. Adding the modulation block (the
syllable rhythm synthetic voices share with human ones) raised announcement recall on
unseen voices by a point and lowered music recall by as much, at half the log-mel's cost
per second, which broke the 20x-YAMNet speed target: measured, not shipped
(docs/benchmarks.md)."""
N_MFCC = 13
GAP_SECONDS = 4


@dataclass(frozen=True)
class TrainParams:
    """LightGBM settings of the student (small trees, few rounds: it must run in µs).

    30 rounds of 7-leaf trees at rate 0.55 (120 trees) scored as well as 60 rounds of 31
    leaves at 0.3 and every size between on three validation splits of the training files
    (mean macro-F1 0.9623-0.9647, within the ±0.002 that the seed moves it); the smallest
    of the best predicts fastest, since the trees are compiled to branches and their code
    must stay in cache. Rates of 0.6 and above let one split in six collapse (0.85-0.91)."""

    num_rounds: int = 30
    learning_rate: float = 0.55
    num_leaves: int = 7
    min_data_in_leaf: int = 20
    feature_fraction: float = 0.5
    bagging_fraction: float = 0.8
    seed: int = 7

    def lgb_params(self) -> dict[str, object]:
        return {
            "objective": "multiclass", "num_class": len(LABELS),
            "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction, "bagging_freq": 1,
            "seed": self.seed, "num_threads": 1, "verbosity": -1, "deterministic": True,
        }


def targets(table: SecondsTable, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Which rows to train on and their labels under ``mode`` (see module docstring)."""
    if mode == "teacher":
        return table.agreed.copy(), table.teacher.astype(np.intp)
    if mode not in LABEL_MODES:
        raise UserError(f"--labels {mode!r}: expected one of {', '.join(LABEL_MODES)}")
    if (table.source < 0).any():
        raise UserError(f"--labels {mode}: needs a labelled corpus (some files have no label)")
    if mode == "source":
        return np.ones(len(table), bool), table.source.astype(np.intp)
    gap = ((table.source == LABEL_INDEX["ringback"]) & (table.teacher == LABEL_INDEX["silence"])
           & after_teacher_ringback(table, within=GAP_SECONDS))
    keep = (table.agreed & (table.teacher == table.source)) | gap
    return keep, table.source.astype(np.intp)


def _in_time_order(table: SecondsTable) -> Iterator[tuple[int, bool]]:
    """Row indices file by file, each file's seconds in time order, with whether the row
    is its file's first."""
    prev_file = -1
    for r in np.lexsort((table.t, table.file)):
        f = int(table.file[r])
        yield int(r), f != prev_file
        prev_file = f


def after_teacher_ringback(table: SecondsTable, *, within: int) -> np.ndarray:
    """Rows whose file had a teacher-ringback second in the ``within`` seconds before."""
    ring = table.teacher == LABEL_INDEX["ringback"]
    out = np.zeros(len(table), bool)
    prev_ring = None
    for r, first in _in_time_order(table):
        if first:
            prev_ring = None
        t = int(table.t[r])
        out[r] = prev_ring is not None and t - prev_ring <= within
        if ring[r]:
            prev_ring = t
    return out


def carried_over(table: SecondsTable, probs: np.ndarray, rule: StreamRule | None = None
                 ) -> np.ndarray:
    """Each file's per-second probabilities through
    :func:`~agent.classify.rule.carry_over`, in time order, as the live stream applies it."""
    persistence = (rule or StreamRule()).persistence
    out = np.empty_like(probs)
    carried = None
    for r, first in _in_time_order(table):
        carried = carry_over(None if first else carried, probs[r].tolist(), persistence)
        out[r] = carried
    return out


def mfcc(features: np.ndarray) -> np.ndarray:
    """MFCCs (first 13, DCT-II of the 24 log-mel bands) of each frame: ``(n, 29 * 13)``."""
    frames = features.reshape(features.shape[0], -1, N_MELS)
    return scipy.fft.dct(frames, type=2, norm="ortho", axis=-1)[..., :N_MFCC].reshape(
        features.shape[0], -1
    ).astype(np.float32)


def layout_of(feature_set: str) -> InputLayout | None:
    """The student input layout of a feature set (None for MFCC, measured but not shipped)."""
    if feature_set == "mfcc":
        return None
    if feature_set not in FEATURE_SETS:
        raise ValueError(feature_set)
    return InputLayout(summary="summary" in feature_set, context="context" in feature_set,
                       periodicity="periodicity" in feature_set,
                       modulation="modulation" in feature_set)


def inputs(table: SecondsTable, feature_set: str) -> np.ndarray:
    """The model inputs of each row for one of :data:`FEATURE_SETS`."""
    layout = layout_of(feature_set)
    if layout is None:
        return mfcc(table.features)
    modulation = (modulation_of_runs(table.features, table.file, table.t)
                  if layout.modulation else None)
    return layout.assemble(table.features, table.context, table.periodicity, modulation)


def grouped_split(table: SecondsTable, *, test_fraction: float = 0.2, seed: int = 0,
                  keep_test: Collection[str] = ()) -> np.ndarray:
    """Row mask of the test set: whole file groups, about ``test_fraction`` of each stratum.

    A group's stratum is its files' ``strata`` entry (class and source package in a corpus),
    else its label (the teacher's majority if unlabelled); stratifying by source package
    keeps, e.g., hold music from being mostly held out while game music is mostly trained.
    ``keep_test`` names files held out by an earlier split: a stratum holding any of them
    keeps exactly their groups as its test set, so a model trained on a grown corpus is
    tested on what the earlier one was, plus a share of the new kinds of source.
    """
    rng = np.random.default_rng(seed)
    groups = np.asarray(table.groups)
    row_group = groups[table.file]
    label = np.where(table.source >= 0, table.source, table.teacher)
    names, inverse = np.unique(row_group, return_inverse=True)
    sizes = np.bincount(inverse, minlength=names.size)
    first_row = np.array([np.flatnonzero(inverse == g)[0] for g in range(names.size)])
    group_label = np.array([np.bincount(label[inverse == g], minlength=len(LABELS)).argmax()
                            for g in range(names.size)])
    strata = np.asarray(table.strata) if table.strata else None
    group_stratum = np.array(
        [strata[table.file[r]] if strata is not None and strata[table.file[r]]
         else LABELS[group_label[g]] for g, r in enumerate(first_row)]
    )
    test_groups = np.zeros(names.size, bool)
    kept = set(keep_test)
    if kept:
        kept_file = np.array([i in kept for i in table.ids], bool)
        test_groups[np.unique(inverse[kept_file[table.file]])] = True
    for stratum in sorted(set(group_stratum)):
        members = np.flatnonzero(group_stratum == stratum)
        if test_groups[members].any():
            continue
        if members.size < 2:
            continue
        rng.shuffle(members)
        goal = test_fraction * sizes[members].sum()
        taken = 0
        for g in members[:-1]:
            if taken >= goal:
                break
            # Skip a group that would overshoot by half again (big sources, e.g. one long
            # hold-music track), unless nothing has been held out yet.
            if taken and taken + sizes[g] > 1.5 * goal:
                continue
            test_groups[g] = True
            taken += sizes[g]
    return test_groups[inverse]


def fit(x: np.ndarray, y: np.ndarray, *, layout: InputLayout | None = None,
        params: TrainParams | None = None) -> lgb.Booster:
    """Train a four-class LightGBM booster; with a ``layout``, the model file carries its
    feature names (which :class:`~agent.classify.model.StudentModel` reads back)."""
    params = params or TrainParams()
    data = lgb.Dataset(x, label=y, free_raw_data=True, params={"verbosity": -1},
                       feature_name=layout.names() if layout is not None else "auto")
    return lgb.train(params.lgb_params(), data, num_boost_round=params.num_rounds)


def confusion(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``(4, 4)`` counts, rows = reference, columns = prediction."""
    m = np.zeros((len(LABELS), len(LABELS)), np.int64)
    np.add.at(m, (truth, pred), 1)
    return m


def precision_recall(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1 of a confusion matrix (0 where undefined)."""
    tp = np.diag(m).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.nan_to_num(tp / m.sum(axis=0))
        recall = np.nan_to_num(tp / m.sum(axis=1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    return precision, recall, f1


def call_decisions(table: SecondsTable, labels: np.ndarray, probs: np.ndarray,
                   rule: StreamRule | None = None, *,
                   announcement_p: np.ndarray | None = None) -> dict[int, str | None]:
    """Replay the streaming rule on per-second labels: file index → decided label.

    ``announcement_p``: each row's announcement probability before the carry-over, which
    the live stream gives the rule (its announcement-odds path); without it only the
    labels count, as for a teacher.
    """
    out: dict[int, str | None] = {}
    order = np.lexsort((table.t, table.file))
    for f in np.unique(table.file):
        rows = order[table.file[order] == f]
        state = RuleState(rule)
        for r in rows:
            state.push(int(table.t[r]), LABELS[int(labels[r])], float(probs[r]),
                       None if announcement_p is None else float(announcement_p[r]))
        decision = state.finish(float(rows.size))
        out[int(f)] = decision.label if decision is not None else None
    return out


@dataclass
class Evaluation:
    """Held-out measurements of one model (or of the teacher itself)."""

    name: str
    agreement: float | None  # vs teacher, on agreed seconds
    vs_teacher: np.ndarray | None  # confusion, rows teacher, cols model
    vs_source: np.ndarray | None  # confusion, rows source, cols model
    macro_f1: float | None
    call_accuracy: float | None
    extra: dict[str, float] = field(default_factory=dict)


def evaluate(name: str, table: SecondsTable, pred: np.ndarray, top_p: np.ndarray,
             rule: StreamRule | None = None, *,
             announcement_p: np.ndarray | None = None) -> Evaluation:
    """Score predicted labels of held-out rows against the teacher and the source truth
    (``announcement_p``: as :func:`call_decisions`)."""
    agreed = table.agreed
    vs_teacher = confusion(table.teacher[agreed].astype(np.intp), pred[agreed])
    agreement = float(np.trace(vs_teacher) / max(1, vs_teacher.sum()))
    labelled = table.source >= 0
    vs_source = macro = calls = None
    if labelled.any():
        vs_source = confusion(table.source[labelled].astype(np.intp), pred[labelled])
        macro = float(precision_recall(vs_source)[2].mean())
        decided = call_decisions(table, pred, top_p, rule, announcement_p=announcement_p)
        truth = {int(f): LABELS[int(table.source[table.file == f][0])] for f in decided}
        calls = float(np.mean([decided[f] == truth[f] for f in decided]))
    return Evaluation(name=name, agreement=agreement, vs_teacher=vs_teacher,
                      vs_source=vs_source, macro_f1=macro, call_accuracy=calls)


def corpus_recordings(corpus: Path) -> Iterator[Recording]:
    """The labelled recordings of a corpus directory, read one at a time.

    A missing or empty corpus is reported at once, not when iteration starts (which is
    inside the teacher's progress bar).
    """
    from agent.audio.io import load_audio
    from agent.corpus.manifest import MANIFEST, load_manifest

    if not (corpus / MANIFEST).is_file():
        raise UserError(f"{corpus}: no corpus here (build it: early-media-agent corpus build)")
    items = load_manifest(corpus)
    if not items:
        raise UserError(f"{corpus / MANIFEST}: the corpus is empty "
                        "(build it: early-media-agent corpus build)")
    return (
        Recording(id=i.id, group=i.group, label=i.label,
                  stratum=f"{i.label}/{i.sources[0].package if i.sources else ''}",
                  samples=load_audio(corpus / i.path))
        for i in items
    )


def folder_recordings(folder: Path) -> Iterator[Recording]:
    """Every audio file under ``folder`` as an unlabelled recording (its own group)."""
    from agent.audio.io import load_audio

    suffixes = {".wav", ".ogg", ".flac", ".mp3", ".au", ".ul", ".al", ".amr", ".opus"}
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
    if not files:
        raise UserError(f"{folder}: no audio files (.wav, .ogg, .flac, .mp3, ...) found")
    return (
        Recording(id=str(p.relative_to(folder)), group=str(p.relative_to(folder)),
                  samples=load_audio(p))
        for p in files
    )
