"""Candidate feature blocks measured on the leave-one-voice-out folds, not shipped.

Each is computed from a :class:`~agent.distill.dataset.SecondsTable`'s own columns (the
periodicity statistics of every second, in file and time order), so a recipe can be
scored without re-reading the corpus. None of them has a live-stream counterpart in
:mod:`agent.features`: a model using one cannot be shipped
(:func:`agent.distill.folds.feature_layout` gives None). Their scores are in
``docs/benchmarks.md`` ("What was tried on the folds").

* ``voicing-history`` — the voicing and steadiness statistics of
  :func:`agent.features.context.periodicity_batch` (pitch level left out) averaged over
  this second and the :data:`VOICING_SECONDS` before it.

The ``modulation`` block was measured here first and now ships
(:mod:`agent.features.modulation`).
"""

from __future__ import annotations

import numpy as np

from agent.distill.dataset import SecondsTable

CANDIDATES = ("voicing-history",)
VOICING_SECONDS = 2
# Voicing statistics of periodicity_batch without the pitch level (column 6).
_VOICING_COLUMNS = [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13]


def _previous(table: SecondsTable, values: np.ndarray, k: int, fill: float) -> np.ndarray:
    """``values`` of each row's second ``k`` seconds back in the same file, else ``fill``
    (rows of a file are consecutive and in time order in a table)."""
    out = np.full_like(values, fill)
    if k == 0:
        return values.copy()
    same = np.zeros(len(table), bool)
    same[k:] = (table.file[k:] == table.file[:-k]) & (table.t[k:] == table.t[:-k] + k)
    out[same] = values[np.flatnonzero(same) - k]
    return out


def voicing_history_block(table: SecondsTable, seconds: int = VOICING_SECONDS) -> np.ndarray:
    """``(n, 13)`` float32 voicing and steadiness statistics averaged over the row's
    second and the ``seconds`` before it (zeros before the stream started)."""
    per = table.periodicity[:, _VOICING_COLUMNS]
    parts = [_previous(table, per, k, 0.0) for k in range(seconds + 1)]
    return np.ascontiguousarray(np.mean(parts, axis=0), dtype=np.float32)


def candidate_block(table: SecondsTable, name: str) -> np.ndarray:
    """One of :data:`CANDIDATES` for every row of ``table``."""
    if name == "voicing-history":
        return voicing_history_block(table)
    raise ValueError(f"unknown candidate block {name!r}: expected {', '.join(CANDIDATES)}")
