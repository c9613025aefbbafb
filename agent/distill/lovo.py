"""Scores of pooled leave-one-voice-out predictions (:mod:`agent.distill.folds`), the
teacher's on the same seconds beside them, and their Markdown tables.

The targets (design README): per-second macro-F1 ≥ 0.97 against the source class, call
accuracy ≥ 0.98 (the streaming rule's decision on each file = the file's class),
announcement recall ≥ 0.97, and every class's recall at least the teacher's on the same
seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agent.classify.rule import StreamRule
from agent.distill.dataset import SecondsTable
from agent.distill.folds import FileVoice, FoldRun
from agent.distill.train import call_decisions, confusion, precision_recall
from agent.labels import LABEL_INDEX, LABELS

TARGET_MACRO_F1 = 0.97
TARGET_CALLS = 0.98
TARGET_ANNOUNCEMENT_RECALL = 0.97


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
    on the same seconds (confusions: rows source, columns prediction)."""

    name: str
    vs_source: np.ndarray
    teacher_vs_source: np.ndarray
    macro_f1: float
    teacher_macro_f1: float
    call_accuracy: float
    teacher_call_accuracy: float
    folds: list[FoldRow]
    vocals: dict[str, tuple[int, float, float]]
    wall_seconds: float
    second_macro_f1: float | None = None

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
        Per file of ``table`` (for the vocals rows).
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
    decided = call_decisions(table, pred, top, rule)
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
    vocals: dict[str, tuple[int, float, float]] = {}
    music = truth == LABEL_INDEX["music"]
    file_vocals = np.array([v.vocals for v in voices], dtype=object)[table.file]
    for key, want in (("music with vocals", True), ("music without vocals", False)):
        mask = music & (file_vocals == want)
        if mask.any():
            vocals[key] = (int(mask.sum()), _recall(truth[mask], pred[mask]),
                           _recall(truth[mask], teacher[mask]))
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
        folds=rows, vocals=vocals, wall_seconds=run.wall_seconds, second_macro_f1=second_f1)


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
    for key, (n, student, teacher) in s.vocals.items():
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


def summary_row(s: LovoScores) -> str:
    """One Markdown row of a comparison of recipes: macro-F1, calls, per-class recall."""
    recall = " | ".join(_pct(v) for v in s.recall)
    return (f"| {s.name} | {s.macro_f1:.4f} | {_pct(s.call_accuracy)} | {recall} | "
            f"{s.wall_seconds:.0f} s |")


def summary_header() -> list[str]:
    """Header of :func:`summary_row` rows."""
    return ["| recipe | macro-F1 | calls | " + " | ".join(f"{lb} recall" for lb in LABELS)
            + " | fold training |", "|---" * (len(LABELS) + 4) + "|"]
