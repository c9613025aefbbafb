"""Recordings → teacher-labelled table (cached) → student model, report and card."""

from __future__ import annotations

import datetime as _dt
import sys
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from agent.classify.model import MODEL_FILE
from agent.distill import LABEL_MODES
from agent.distill.dataset import Recording, SecondsTable, build_table
from agent.distill.report import write_report
from agent.distill.teachers import Teacher
from agent.distill.train import (
    STUDENT_FEATURES,
    Evaluation,
    TrainParams,
    carried_over,
    evaluate,
    fit,
    grouped_split,
    inputs,
    layout_of,
    targets,
)
from agent.errors import UserError
from agent.labels import LABELS
from agent.paths import cache_dir

# Bump when teacher labelling or features change, so cached tables are rebuilt.
TABLE_VERSION = "1"


def teacher_cache(teacher_name: str) -> Path:
    """Directory of cached per-recording teacher labels for one teacher."""
    safe = "".join(ch if ch.isalnum() or ch in "+-_." else "_" for ch in teacher_name)
    return cache_dir() / "distill" / f"{safe}-v{TABLE_VERSION}"


def labelled_table(recordings: Iterable[Recording], teacher: Teacher, *,
                   cache: Path | None = None, progress: bool = False) -> SecondsTable:
    """The table of seconds for ``recordings`` (teacher labels cached under ``cache``)."""
    recs: Iterable[Recording] = recordings
    if progress:
        from tqdm import tqdm

        recs = tqdm(recordings, desc="teacher", unit="file", file=sys.stderr)
    return build_table(recs, teacher, cache=cache)


def _predict(booster: lgb.Booster, x: np.ndarray, table: SecondsTable
             ) -> tuple[np.ndarray, np.ndarray]:
    """Labels and top probabilities of ``table``'s rows (``x``), carried over from second
    to second as the live stream does."""
    probs = np.asarray(booster.predict(x, num_threads=1)).reshape(-1, len(LABELS))
    probs = carried_over(table, probs)
    return probs.argmax(axis=1), probs.max(axis=1)


def train_student(table: SecondsTable, *, out_dir: Path, labels: str, info: dict[str, Any],
                  compare: bool = True, params: TrainParams | None = None,
                  keep_test: Collection[str] = ()) -> Evaluation:
    """Split, train the variants, evaluate them on held-out files, write the best.

    The shipped model is the best (by macro-F1 vs source truth when the data is labelled,
    else by agreement with the teacher) of the layouts that fit the latency budget,
    trained with ``labels``. With ``compare``, the other label
    modes and MFCC inputs are trained and measured too, for the report. ``keep_test``:
    file ids an earlier split held out, kept out (see :func:`grouped_split`).
    """
    if labels not in LABEL_MODES:
        raise UserError(f"--labels {labels!r}: expected one of {', '.join(LABEL_MODES)}")
    test = grouped_split(table, keep_test=keep_test)
    if not test.any() or test.all():
        raise UserError("too few source groups to hold any out: add recordings")
    train_t, test_t = table.subset(~test), table.subset(test)
    keep, y = targets(train_t, labels)
    if np.unique(y[keep]).size < 2:
        raise UserError("too little audio to train on: need seconds of at least two classes")

    # Layouts that fit the per-second latency budget; the others are measured for the report.
    shippable = (STUDENT_FEATURES, "logmel+summary+context", "logmel+context")
    variants = [(labels, fs) for fs in shippable]
    if compare:
        variants += [(labels, fs) for fs in ("logmel+summary+periodicity+context", "logmel",
                                              "mfcc")]
        if (table.source >= 0).all():
            variants += [(m, shippable[0]) for m in LABEL_MODES if m != labels]
    evaluations: list[Evaluation] = []
    boosters: dict[str, lgb.Booster] = {}
    for mode, feature_set in variants:
        k, yy = targets(train_t, mode)
        booster = fit(inputs(train_t, feature_set)[k], yy[k], layout=layout_of(feature_set),
                      params=params)
        pred, top = _predict(booster, inputs(test_t, feature_set), test_t)
        name = f"{feature_set}, labels={mode}"
        evaluations.append(evaluate(name, test_t, pred, top))
        boosters[name] = booster

    teacher_eval = evaluate("teacher", test_t, test_t.teacher.astype(np.intp),
                            test_t.soft.max(axis=1))
    evaluations.append(teacher_eval)
    labelled = bool((table.source >= 0).all())

    def score(ev: Evaluation) -> float:
        return (ev.macro_f1 or 0.0) if labelled else (ev.agreement or 0.0)

    candidates = [ev for ev in evaluations
                  if ev.name in {f"{fs}, labels={labels}" for fs in shippable}]
    shipped = max(candidates, key=score)
    out_dir.mkdir(parents=True, exist_ok=True)
    boosters[shipped.name].save_model(str(out_dir / MODEL_FILE))

    info = dict(info)
    info.update(
        labels=labels,
        features=shipped.name.split(",")[0],
        n_train=int(keep.sum()),
        n_test=len(test_t),
        n_test_files=int(np.unique(test_t.file).size),
        test_files=sorted({table.ids[int(f)] for f in np.unique(test_t.file)}),
        agreed_fraction=float(table.agreed.mean()),
        lightgbm=lgb.__version__,
        params=(params or TrainParams()).lgb_params() | {"num_rounds": (params or
                                                                        TrainParams()).num_rounds},
        date=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    write_report(out_dir, shipped=shipped, evaluations=evaluations,
                 teacher=teacher_eval if labelled else None, info=info)
    return shipped
