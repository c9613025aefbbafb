"""Would a prior offset on announcement close the student's gap to the teacher?

Nested, so that the answer is a generalisation figure: for every leave-one-voice-out fold
(:mod:`agent.distill.folds`), the fold's training files are themselves split by voice
family into ``--inner`` groups (the other folds' names dealt round-robin), a student is
trained on all groups but one and predicts that one, and the offset that gives the best
pooled inner per-second macro-F1 is chosen from a grid. Only then is the outer fold's
student (trained on every file outside it, as ``bench/classifier.py --lovo-only`` trains
it) scored with that offset. The outer fold's own scores are never looked at to choose.

The offset multiplies the model's announcement probability by ``exp(delta)`` before the
carry-over and the streaming rule, as a log-prior shift in the decision path would.

    nice -n 10 python bench/prior_offset.py --corpus /work/cache/corpus-voices

About 40 outer folds × (1 + ``--inner``) students: ~20 min on a loaded 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from agent.distill.folds import FoldRun, fold_names, run_folds
from agent.distill.lovo import lovo_data, score, summary_header, summary_row, teacher_row
from agent.distill.train import STUDENT_FEATURES, carried_over, confusion, precision_recall
from agent.labels import LABEL_INDEX

ANNOUNCEMENT = LABEL_INDEX["announcement"]
GRID = (-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)


def shifted(raw: np.ndarray, delta: float) -> np.ndarray:
    """Probabilities with announcement's multiplied by ``exp(delta)``, renormalised."""
    out = raw.copy()
    out[:, ANNOUNCEMENT] *= np.exp(delta)
    return out / out.sum(axis=1, keepdims=True)


def macro_f1(table, raw: np.ndarray, delta: float) -> float:
    """Per-second macro-F1 vs the source class after the offset and the carry-over."""
    pred = carried_over(table, shifted(raw, delta)).argmax(axis=1)
    return float(precision_recall(confusion(table.source.astype(np.intp), pred))[2].mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--features", default=STUDENT_FEATURES)
    ap.add_argument("--inner", type=int, default=4, help="inner voice-grouped folds")
    args = ap.parse_args(argv)
    data = lovo_data(args.corpus)
    table = data.table
    folds = fold_names(data.voices)
    t0 = time.perf_counter()
    outer = run_folds(table, folds, features=args.features)
    raw = outer.raw.copy()
    print("| outer fold | offset chosen inside its training set | inner macro-F1 "
          "(offset 0) |\n|---|---|---|")
    for k, name in enumerate(outer.folds):
        others = [n for n in outer.folds if n != name]
        group = {n: f"inner {i % args.inner + 1}" for i, n in enumerate(others)}
        group[name] = "inner 1"  # no rows of it below
        inner_table = table.subset(outer.row_fold != k)
        inner = run_folds(inner_table, [group[f] for f in folds], features=args.features)
        scores = [macro_f1(inner_table, inner.raw, d) for d in GRID]
        best = GRID[int(np.argmax(scores))]
        held = outer.row_fold == k
        raw[held] = shifted(outer.raw[held], best)
        print(f"| {name} | {best:+.2f} | {max(scores):.4f} ({scores[GRID.index(0.0)]:.4f}) |",
              flush=True)
    nested = FoldRun(strategy=outer.strategy, features=args.features, folds=outer.folds,
                     row_fold=outer.row_fold, raw=raw, probs=carried_over(table, raw))
    print()
    print(*summary_header(), sep="\n")
    base = score(table, outer, data.voices, second_truth=data.second_truth,
                 name=f"{args.features}, no offset")
    print(summary_row(base))
    print(summary_row(score(table, nested, data.voices, second_truth=data.second_truth,
                            name=f"{args.features}, nested announcement offset")))
    print(teacher_row(base))
    print(f"\n{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
