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
    FEATURE_SETS,
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
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and top probabilities of ``table``'s rows (``x``), carried over from second
    to second as the live stream does, and each row's own announcement probability (what
    the live stream gives its rule)."""
    raw = np.asarray(booster.predict(x, num_threads=1)).reshape(-1, len(LABELS))
    probs = carried_over(table, raw)
    return probs.argmax(axis=1), probs.max(axis=1), raw[:, LABELS.index("announcement")]


def train_student(table: SecondsTable, *, out_dir: Path, labels: str, info: dict[str, Any],
                  compare: bool = True, params: TrainParams | None = None,
                  keep_test: Collection[str] = ()) -> Evaluation:
    """Split, train the variants, evaluate them on held-out files for the report, then
    train the shipped model on every file and write it.

    The shipped recipe is fixed, :data:`~agent.distill.train.STUDENT_FEATURES` with
    ``labels``: it was chosen on voices and sources held out one at a time
    (bench/classifier.py), and choosing again on this split would reward memory of the
    training voices. With ``compare``, other layouts, label modes and MFCC inputs are
    trained and measured on the split too, for the report. ``keep_test``: file ids an
    earlier split held out, kept out (see :func:`grouped_split`). The returned evaluation
    is the shipped recipe's on the split (its model trained without the held-out files).
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

    variants = [(labels, STUDENT_FEATURES)]
    if compare:
        variants += [(labels, fs) for fs in FEATURE_SETS if fs != STUDENT_FEATURES]
        if (table.source >= 0).all():
            variants += [(m, STUDENT_FEATURES) for m in LABEL_MODES if m != labels]
    evaluations: list[Evaluation] = []
    for mode, feature_set in variants:
        k, yy = targets(train_t, mode)
        booster = fit(inputs(train_t, feature_set)[k], yy[k], layout=layout_of(feature_set),
                      params=params)
        pred, top, speech = _predict(booster, inputs(test_t, feature_set), test_t)
        name = f"{feature_set}, labels={mode}"
        evaluations.append(evaluate(name, test_t, pred, top, announcement_p=speech))

    teacher_eval = evaluate("teacher", test_t, test_t.teacher.astype(np.intp),
                            test_t.soft.max(axis=1))
    evaluations.append(teacher_eval)
    labelled = bool((table.source >= 0).all())

    shipped = next(ev for ev in evaluations if ev.name == f"{STUDENT_FEATURES}, labels={labels}")
    # The split served the report; the model ships trained on every file.
    keep_all, y_all = targets(table, labels)
    final = fit(inputs(table, STUDENT_FEATURES)[keep_all], y_all[keep_all],
                layout=layout_of(STUDENT_FEATURES), params=params)
    out_dir.mkdir(parents=True, exist_ok=True)
    final.save_model(str(out_dir / MODEL_FILE))

    info = dict(info)
    info.update(
        labels=labels,
        features=shipped.name.split(",")[0],
        n_train=int(keep.sum()),
        n_shipped=int(keep_all.sum()),
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
