"""Scores of pooled leave-one-voice-out predictions (:mod:`agent.distill.folds`), the
teacher's on the same seconds beside them, and their Markdown tables.

The targets (design README): per-second macro-F1 ≥ 0.97 against the source class, call
accuracy ≥ 0.98 (the streaming rule's decision on each file = the file's class),
announcement recall ≥ 0.97, every class's recall at least the teacher's on the same
seconds, and ≥ 99.3% agreement with the teacher where the teacher is right.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.classify.rule import StreamRule
from agent.distill.dataset import SecondsTable
from agent.distill.folds import FileVoice, FoldRun, fold_names, manifest_voices, run_folds
from agent.distill.train import call_decisions, confusion, precision_recall
from agent.labels import LABEL_INDEX, LABELS

TARGET_MACRO_F1 = 0.97
TARGET_CALLS = 0.98
TARGET_ANNOUNCEMENT_RECALL = 0.97
TARGET_AGREEMENT = 0.993


@dataclass(frozen=True)
class FoldRow:
    """One fold's seconds: the student's and the teacher's recall of the fold's class,
    and the share of its files whose call each decides right."""

    name: str
    label: str
    files: int
    seconds: int
    student_recall: float
    teacher_recall: float
    student_calls: float
    teacher_calls: float


@dataclass(frozen=True)
class LovoScores:
    """Measurements of one :class:`FoldRun` against the source classes, with the teacher's
    on the same seconds (confusions: rows source, columns prediction); ``subsets``: name →
    (seconds, student recall, teacher recall) of music with and without vocals and of
    announcements by voice engine (human, festival); ``agreement``: (share, seconds) of the
    teacher-sure seconds where the student says what the teacher says, and
    ``agreement_teacher_right`` the same on those where the teacher names the source."""

    name: str
    vs_source: np.ndarray
    teacher_vs_source: np.ndarray
    macro_f1: float
    teacher_macro_f1: float
    call_accuracy: float
    teacher_call_accuracy: float
    folds: list[FoldRow]
    subsets: dict[str, tuple[int, float, float]]
    wall_seconds: float
    second_macro_f1: float | None = None
    agreement: tuple[float, int] = (float("nan"), 0)
    agreement_teacher_right: tuple[float, int] = (float("nan"), 0)

    @property
    def recall(self) -> np.ndarray:
        return precision_recall(self.vs_source)[1]

    @property
    def teacher_recall(self) -> np.ndarray:
        return precision_recall(self.teacher_vs_source)[1]

    @property
    def announcement_recall(self) -> float:
        return float(self.recall[LABEL_INDEX["announcement"]])

    def classes_below_teacher(self) -> list[str]:
        """Classes whose student recall is under the teacher's on the same seconds."""
        return [label for i, label in enumerate(LABELS)
                if self.recall[i] < self.teacher_recall[i]]


def _recall(truth: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(pred == truth)) if truth.size else float("nan")


def score(table: SecondsTable, run: FoldRun, voices: Sequence[FileVoice], *,
          rule: StreamRule | None = None, second_truth: np.ndarray | None = None,
          name: str | None = None) -> LovoScores:
    """Score a run's pooled predictions and the teacher's labels of the same rows.

    Parameters
    ----------
    table : SecondsTable
        The table the run predicted (all files labelled).
    run : FoldRun
        Out-of-fold probabilities.
    voices : sequence of FileVoice
        Per file of ``table`` (for the vocals and voice-engine rows).
    rule : StreamRule, optional
        The streaming rule replayed per file for the call decisions.
    second_truth : numpy.ndarray, optional
        Per-row truth where it differs from the file's class (a ringback file's seconds
        before its first burst are silence), for a second macro-F1.
    name : str, optional
        Default: ``"<features>, labels=<strategy>"``.
    """
    truth = table.source.astype(np.intp)
    pred = run.pred
    top = run.probs.max(axis=1)
    teacher = table.teacher.astype(np.intp)
    vs_source = confusion(truth, pred)
    teacher_vs_source = confusion(truth, teacher)
    decided = call_decisions(table, pred, top, rule,
                             announcement_p=run.raw[:, LABEL_INDEX["announcement"]])
    teacher_decided = call_decisions(table, teacher, table.soft.max(axis=1), rule)
    file_label = {int(f): LABELS[int(table.source[table.file == f][0])] for f in decided}
    right = {f: decided[f] == file_label[f] for f in decided}
    teacher_right = {f: teacher_decided[f] == file_label[f] for f in decided}
    rows = []
    for k, fold in enumerate(run.folds):
        mask = run.row_fold == k
        files = np.unique(table.file[mask]).tolist()
        rows.append(FoldRow(
            name=fold, label=LABELS[int(np.bincount(truth[mask]).argmax())], files=len(files),
            seconds=int(mask.sum()), student_recall=_recall(truth[mask], pred[mask]),
            teacher_recall=_recall(truth[mask], teacher[mask]),
            student_calls=float(np.mean([right[f] for f in files])),
            teacher_calls=float(np.mean([teacher_right[f] for f in files]))))
    subsets: dict[str, tuple[int, float, float]] = {}
    vocal = np.array([v.vocals is True for v in voices])[table.file]
    plain = np.array([v.vocals is False for v in voices])[table.file]
    file_engine = np.array([str(v.engine) for v in voices])[table.file]
    music = truth == LABEL_INDEX["music"]
    speech = truth == LABEL_INDEX["announcement"]
    masks = [("music with vocals", music & vocal), ("music without vocals", music & plain)]
    masks += [(f"announcement, {engine} voices", speech & (file_engine == engine))
              for engine in sorted({str(v.engine) for v in voices
                                    if v.label == "announcement" and v.engine})]
    for key, mask in masks:
        if mask.any():
            subsets[key] = (int(mask.sum()), _recall(truth[mask], pred[mask]),
                            _recall(truth[mask], teacher[mask]))
    sure = table.agreed
    right_sure = sure & (teacher == truth)
    second_f1 = None
    if second_truth is not None:
        second_f1 = float(precision_recall(confusion(second_truth, pred))[2].mean())
    return LovoScores(
        name=name or f"{run.features}, labels={run.strategy}", vs_source=vs_source,
        teacher_vs_source=teacher_vs_source,
        macro_f1=float(precision_recall(vs_source)[2].mean()),
        teacher_macro_f1=float(precision_recall(teacher_vs_source)[2].mean()),
        call_accuracy=float(np.mean(list(right.values()))),
        teacher_call_accuracy=float(np.mean(list(teacher_right.values()))),
        folds=rows, subsets=subsets, wall_seconds=run.wall_seconds, second_macro_f1=second_f1,
        agreement=(_recall(teacher[sure], pred[sure]), int(sure.sum())),
        agreement_teacher_right=(_recall(teacher[right_sure], pred[right_sure]),
                                 int(right_sure.sum())))


def _pct(x: float) -> str:
    return "–" if np.isnan(x) else f"{100 * x:.2f}%"


def _verdict(ok: bool, miss: str) -> str:
    return "met" if ok else f"MISSED by {miss}"


def headline(s: LovoScores) -> list[str]:
    """Markdown rows ``| measure | value | target | verdict |`` of the targets."""
    below = s.classes_below_teacher()
    lines = [
        f"| per-second macro-F1 vs source class | {s.macro_f1:.4f} (teacher "
        f"{s.teacher_macro_f1:.4f}) | ≥ {TARGET_MACRO_F1} | "
        f"{_verdict(s.macro_f1 >= TARGET_MACRO_F1, f'{TARGET_MACRO_F1 - s.macro_f1:.4f}')} |",
        f"| call accuracy (streaming decision per file) | {_pct(s.call_accuracy)} (teacher "
        f"{_pct(s.teacher_call_accuracy)}) | ≥ {100 * TARGET_CALLS:.0f}% | "
        + _verdict(s.call_accuracy >= TARGET_CALLS,
                   f"{100 * (TARGET_CALLS - s.call_accuracy):.2f} points") + " |",
        f"| announcement recall | {_pct(s.announcement_recall)} | "
        f"≥ {100 * TARGET_ANNOUNCEMENT_RECALL:.0f}% | "
        + _verdict(s.announcement_recall >= TARGET_ANNOUNCEMENT_RECALL,
                   f"{100 * (TARGET_ANNOUNCEMENT_RECALL - s.announcement_recall):.2f} points")
        + " |",
        "| every class's recall ≥ the teacher's on the same seconds | "
        f"{'yes' if not below else 'below on ' + ', '.join(below)} | all four | "
        f"{'met' if not below else 'MISSED'} |",
    ]
    share, n = s.agreement_teacher_right
    lines.append(f"| agreement with the teacher where it names the source ({n} s) | "
                 f"{_pct(share)} | ≥ {100 * TARGET_AGREEMENT:.1f}% | "
                 + _verdict(share >= TARGET_AGREEMENT,
                            f"{100 * (TARGET_AGREEMENT - share):.2f} points") + " |")
    share, n = s.agreement
    lines.append(f"| agreement with the teacher on all its sure seconds ({n} s; it is wrong "
                 f"on some) | {_pct(share)} | | |")
    if s.second_macro_f1 is not None:
        lines.append("| per-second macro-F1 vs per-second truth (ringback before its first "
                     f"burst = silence) | {s.second_macro_f1:.4f} | | |")
    return lines


def class_table(s: LovoScores) -> list[str]:
    """Markdown table: per class, student precision / recall beside the teacher's."""
    p, r, _ = precision_recall(s.vs_source)
    tp, tr, _ = precision_recall(s.teacher_vs_source)
    lines = ["| class | seconds | student precision | student recall | teacher precision "
             "| teacher recall | student − teacher recall |", "|---|---|---|---|---|---|---|"]
    for i, label in enumerate(LABELS):
        lines.append(f"| {label} | {int(s.vs_source[i].sum())} | {_pct(p[i])} | {_pct(r[i])} | "
                     f"{_pct(tp[i])} | {_pct(tr[i])} | {100 * (r[i] - tr[i]):+.2f} |")
    for key, (n, student, teacher) in s.subsets.items():
        lines.append(f"| {key} | {n} | | {_pct(student)} | | {_pct(teacher)} | "
                     f"{100 * (student - teacher):+.2f} |")
    return lines


def fold_table(s: LovoScores) -> list[str]:
    """Markdown table: one row per fold (voice, seconds, student and teacher recall)."""
    lines = ["| fold (held-out voice / source) | files | seconds | student recall | "
             "teacher recall | student calls right | teacher calls right |",
             "|---|---|---|---|---|---|---|"]
    for row in s.folds:
        flag = " **<**" if row.student_recall < row.teacher_recall else ""
        lines.append(f"| {row.name} | {row.files} | {row.seconds} | "
                     f"{_pct(row.student_recall)}{flag} | {_pct(row.teacher_recall)} | "
                     f"{_pct(row.student_calls)} | {_pct(row.teacher_calls)} |")
    return lines


_SUBSET_COLUMNS = ("announcement, human voices", "announcement, festival voices",
                   "music with vocals")


def summary_row(s: LovoScores) -> str:
    """One Markdown row of a comparison of recipes (:func:`summary_header`)."""
    recall = " | ".join(_pct(v) for v in s.recall)
    subsets = " | ".join(_pct(s.subsets[k][1]) if k in s.subsets else "–"
                         for k in _SUBSET_COLUMNS)
    second = "–" if s.second_macro_f1 is None else f"{s.second_macro_f1:.4f}"
    return (f"| {s.name} | {s.macro_f1:.4f} | {second} | {_pct(s.call_accuracy)} | {recall} "
            f"| {subsets} | {s.wall_seconds:.0f} s |")


def teacher_row(s: LovoScores) -> str:
    """The teacher's :func:`summary_row` on the same seconds."""
    recall = " | ".join(_pct(v) for v in s.teacher_recall)
    subsets = " | ".join(_pct(s.subsets[k][2]) if k in s.subsets else "–"
                         for k in _SUBSET_COLUMNS)
    return (f"| teacher (same seconds) | {s.teacher_macro_f1:.4f} | | "
            f"{_pct(s.teacher_call_accuracy)} | {recall} | {subsets} | |")


def summary_header() -> list[str]:
    """Header of :func:`summary_row` rows."""
    columns = ["recipe", "macro-F1 vs source", "vs per-second truth", "calls",
               *(f"{lb} recall" for lb in LABELS), "human-voice ann.", "festival-voice ann.",
               "vocal music", "fold training"]
    return ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]


@dataclass
class LovoData:
    """What every recipe's folds train and score on, built once: the labelled seconds of
    a corpus, each file's :class:`~agent.distill.folds.FileVoice`, and each row's
    per-second truth (:func:`second_truth`)."""

    table: SecondsTable
    voices: list[FileVoice]
    second_truth: np.ndarray


def second_truth(table: SecondsTable, corpus: Path) -> np.ndarray:
    """Each row's class as heard (:func:`agent.corpus.truth.second_labels`): the source
    class, except a ringback file's whole seconds before its first burst, which are
    silence."""
    from agent.corpus.manifest import load_manifest
    from agent.corpus.truth import second_labels
    from agent.tones.plan import load_tone_plans

    by_id = {i.id: i for i in load_manifest(corpus)}
    plans = load_tone_plans()
    counts = np.bincount(table.file, minlength=len(table.ids))
    out = np.empty(len(table), np.intp)
    for f, file_id in enumerate(table.ids):
        labels = np.array([LABEL_INDEX[lb] for lb in second_labels(
            by_id[file_id], int(counts[f]), plans=plans)], np.intp)
        rows = table.file == f
        out[rows] = labels[table.t[rows]]
    return out


def lovo_data(corpus: Path, *, teacher: str = "yamnet+vad", progress: bool = False
              ) -> LovoData:
    """Features, cached teacher labels and fold keys of every file of a corpus.

    Parameters
    ----------
    corpus : Path
        A built corpus (manifest with ``voice``/``engine``/``vocals`` where known).
    teacher : str
        Teacher name (:func:`agent.distill.teachers.make_teacher`); its labels come from
        the cache ``train`` fills, so a second run costs the features alone.
    progress : bool
        Show a progress bar on stderr.
    """
    from agent.distill.pipeline import labelled_table, teacher_cache
    from agent.distill.teachers import make_teacher
    from agent.distill.train import corpus_recordings

    t = make_teacher(teacher)
    table = labelled_table(corpus_recordings(corpus), t, cache=teacher_cache(t.name),
                           progress=progress)
    known = manifest_voices(corpus)
    return LovoData(table=table, voices=[known[i] for i in table.ids],
                    second_truth=second_truth(table, corpus))


def lovo_report(data: LovoData, recipes: Sequence[tuple[str, str]], *,
                folds: Sequence[str] | None = None, rule: StreamRule | None = None,
                progress: Callable[[str], None] | None = None) -> Iterator[str]:
    """Markdown of leave-one-voice-out runs, line by line as each recipe finishes.

    The first recipe ``(label strategy, feature spec)`` is the headline: the targets,
    per-class precision and recall beside the teacher's on the same seconds, one row per
    fold. Every recipe then gets a row of :func:`summary_row` on the same folds, and the
    teacher a last one.

    Parameters
    ----------
    data : LovoData
        From :func:`lovo_data`.
    recipes : sequence of (str, str)
        Label strategies of :data:`~agent.distill.folds.STRATEGIES` and feature specs of
        :func:`~agent.distill.folds.feature_matrix`.
    folds : sequence of str, optional
        The fold of each file (default :func:`~agent.distill.folds.fold_names`).
    rule : StreamRule, optional
        The streaming rule (carry-over and call decisions).
    progress : callable, optional
        Called with each fold's name and time.
    """
    folds = list(folds) if folds is not None else fold_names(data.voices)
    first: LovoScores | None = None
    for k, recipe in enumerate(recipes):
        s, lines = lovo_section(data, recipe, folds=folds, rule=rule, progress=progress)
        if k == 0:
            first = s
            yield from lines
            yield ""
            yield "Recipes on the same folds:"
            yield ""
            yield from summary_header()
        yield summary_row(s)
    if first is not None:
        yield teacher_row(first)


def lovo_section(data: LovoData, recipe: tuple[str, str], *,
                 folds: Sequence[str] | None = None, rule: StreamRule | None = None,
                 progress: Callable[[str], None] | None = None
                 ) -> tuple[LovoScores, list[str]]:
    """One recipe on the folds: its scores and their Markdown (targets, per-class table
    beside the teacher, one row per fold). Arguments as :func:`lovo_report`."""
    folds = list(folds) if folds is not None else fold_names(data.voices)
    strategy, features = recipe
    run = run_folds(data.table, folds, strategy=strategy, features=features, rule=rule,
                    progress=progress)
    s = score(data.table, run, data.voices, rule=rule, second_truth=data.second_truth)
    lines = [f"{len(run.folds)} folds; {run.wall_seconds:.0f} s to train and predict them "
             f"all (labels={strategy}, features={features})", "",
             "| measure | value | target | verdict |", "|---|---|---|---|", *headline(s), "",
             *class_table(s), "", *fold_table(s)]
    return s, lines


def split_report(data: LovoData, test_ids: Collection[str], recipe: tuple[str, str], *,
                 rule: StreamRule | None = None) -> list[str]:
    """Markdown of the old file split: one student trained on every file but
    ``test_ids`` scores them, the way ``train`` measures its variants.

    Secondary: the held-out files share their voices and music sources with the training
    files, so this measures memory more than generalisation.
    """
    table, voices = data.table, data.voices
    held = set(test_ids)
    folds = ["held-out files" if i in held else "training files" for i in table.ids]
    run = run_folds(table, folds, strategy=recipe[0], features=recipe[1], rule=rule)
    k = run.folds.index("held-out files")
    rows = run.row_fold == k
    sub = FoldRun(strategy=run.strategy, features=run.features, folds=[run.folds[k]],
                  row_fold=np.zeros(int(rows.sum()), np.intp), raw=run.raw[rows],
                  probs=run.probs[rows], fit_seconds=[run.fit_seconds[k]])
    s = score(table.subset(rows), sub, voices, rule=rule, second_truth=data.second_truth[rows])
    n_files = len(set(table.file[rows].tolist()))
    return [f"{n_files} held-out files, {int(rows.sum())} s (labels={recipe[0]}, "
            f"features={recipe[1]})", "", "| measure | value | target | verdict |",
            "|---|---|---|---|", *headline(s), "", *class_table(s)]
