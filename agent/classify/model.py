"""The distilled student: a LightGBM multiclass model over one second's features.

The model file is LightGBM's text format (``models/student.txt``). Its feature names say
which inputs it expects (:class:`InputLayout`): the 696 log-mel values of
:func:`agent.features.extract_batch` (``mel_*``), optionally followed by the summary
(``sum_*``), periodicity (``acf_*``) and previous-second (``ctx_*``) values of
:mod:`agent.features.context` and the modulation values (``mod_*``) of
:mod:`agent.features.modulation`. Probabilities come out in :data:`agent.labels.LABELS`
order.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _LIB

from agent.classify import compiled
from agent.errors import UserError
from agent.features import N_FEATURES
from agent.features.context import (
    N_ACF,
    N_CONTEXT,
    N_PERIODICITY,
    N_STEADINESS,
    N_SUMMARY,
    summary_batch,
)
from agent.features.modulation import N_MODULATION
from agent.labels import LABELS
from agent.paths import MODELS_DIR

MODEL_FILE = "student.txt"
_PREDICT_NORMAL = 0
_DTYPE_FLOAT32 = 0
_log = logging.getLogger(__name__)


def feature_names(*, context: bool, summary: bool = False, periodicity: bool = False,
                  modulation: bool = False) -> list[str]:
    """Names written into the model file: ``mel_FF_BB``, ``sum_II``, ``acf_II`` and
    ``stev_II`` (periodicity), ``ctx_K_BB``, ``mod_II``.

    The periodicity values were ``per_II`` before they came from the log-mel spectra, had
    no spectral steadiness before that was added, and had it from all 29 frames
    (``stdy_II``) before it came from the 15 even ones: such a model took other numbers
    and must be retrained."""
    names = [f"mel_{f:02d}_{b:02d}" for f in range(N_FEATURES // 24) for b in range(24)]
    if summary:
        names += [f"sum_{i:02d}" for i in range(N_SUMMARY)]
    if periodicity:
        names += [f"acf_{i:02d}" for i in range(N_ACF)]
        names += [f"stev_{i:02d}" for i in range(N_STEADINESS)]
    if context:
        names += [f"ctx_{k}_{b:02d}" for k in range(1, N_CONTEXT // 24 + 1) for b in range(24)]
    if modulation:
        names += [f"mod_{i:02d}" for i in range(N_MODULATION)]
    return names


@dataclass(frozen=True)
class InputLayout:
    """Which feature blocks a model takes, in order: log-mel, [summary], [periodicity],
    [context], [modulation] (the modulation block came last, after the others were
    shipped; LightGBM's column sampling goes by index, so the order is part of a model)."""

    summary: bool = False
    context: bool = False
    periodicity: bool = False
    modulation: bool = False

    @property
    def n_features(self) -> int:
        return (N_FEATURES + N_SUMMARY * self.summary + N_PERIODICITY * self.periodicity
                + N_CONTEXT * self.context + N_MODULATION * self.modulation)

    def names(self) -> list[str]:
        return feature_names(context=self.context, summary=self.summary,
                             periodicity=self.periodicity, modulation=self.modulation)

    @classmethod
    def from_names(cls, names: list[str], *, source: str = "model") -> InputLayout:
        """Recognise the layout from a model's feature names (UserError if unknown)."""
        stale = any(name.startswith(("per_", "stdy_")) for name in names) or (
            any(name.startswith("acf_") for name in names)
            and not any(name.startswith("stev_") for name in names))
        if stale:
            raise UserError(f"{source}: its periodicity features are those of an earlier "
                            "version; retrain it (early-media-agent train or distill)")
        for summary in (False, True):
            for periodicity in (False, True):
                for context in (False, True):
                    for modulation in (False, True):
                        layout = cls(summary=summary, context=context,
                                     periodicity=periodicity, modulation=modulation)
                        if names == layout.names():
                            return layout
        raise UserError(f"{source}: unknown feature layout ({len(names)} features, expected "
                        "log-mel [+ summary] [+ periodicity] [+ context] [+ modulation] "
                        "from agent.features)")

    def assemble(self, features: np.ndarray, context: np.ndarray | None,
                 periodicity: np.ndarray | None = None,
                 modulation: np.ndarray | None = None) -> np.ndarray:
        """Rows of ``(n, 696)`` log-mel, ``(n, 96)`` context, ``(n, 14)`` periodicity
        (:func:`agent.features.context.periodicity_batch` of the same seconds) and
        ``(n, 25)`` modulation (:func:`agent.features.modulation.modulation_batch`) →
        ``(n, n_features)`` model inputs; blocks the layout does not use may be None."""
        blocks = [features]
        if self.summary:
            blocks.append(summary_batch(features))
        if self.periodicity:
            if periodicity is None:
                raise ValueError("this model needs periodicity features")
            blocks.append(periodicity)
        if self.context:
            if context is None:
                raise ValueError("this model needs context features")
            blocks.append(context)
        if self.modulation:
            if modulation is None:
                raise ValueError("this model needs modulation features")
            blocks.append(modulation)
        return np.concatenate(blocks, axis=1) if len(blocks) > 1 else features


class StudentModel:
    """A loaded student with a batch path and a fast single-row path.

    ``predict_one`` runs the trees compiled to native code (:mod:`agent.classify.compiled`,
    built once per model and cached; 2-5x faster than LightGBM for one row, same
    probabilities). Where that is off (``EMA_COMPILED_TREES=0``, ``compile_trees=False``)
    or impossible (no C compiler, a model feature the generator does not cover) it goes
    through LightGBM's C API "fast single row" entry points
    (``LGBM_BoosterPredictForMatSingleRowFastInit`` once, then ``...Fast`` per call), which
    skip the per-call parameter parsing and array checks of ``Booster.predict``.

    Parameters
    ----------
    booster : lightgbm.Booster
        A four-class model whose feature names give its :class:`InputLayout`.
    source : str
        Where it came from, for messages.
    compile_trees : bool, optional
        Compile the trees (default: unless ``EMA_COMPILED_TREES`` is ``0``).
    """

    def __init__(self, booster: lgb.Booster, *, source: str = "<memory>",
                 compile_trees: bool | None = None) -> None:
        self.booster = booster
        self.source = source
        if booster.num_model_per_iteration() != len(LABELS):
            raise UserError(f"{source}: model has {booster.num_model_per_iteration()} classes, "
                            f"expected {len(LABELS)} {LABELS}")
        self.layout = InputLayout.from_names(booster.feature_name(), source=source)
        self.n_features = self.layout.n_features
        self.uses_context = self.layout.context
        self._lock = threading.Lock()
        self._out = np.zeros(len(LABELS), np.float64)
        self._out_len = ctypes.c_int64(0)
        self._fast = ctypes.c_void_p()
        rc = _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle, ctypes.c_int(_PREDICT_NORMAL), ctypes.c_int(0), ctypes.c_int(-1),
            ctypes.c_int(_DTYPE_FLOAT32), ctypes.c_int32(self.n_features),
            ctypes.c_char_p(b"num_threads=1"), ctypes.byref(self._fast),
        )
        if rc != 0:
            raise UserError(f"{source}: LightGBM fast predictor init failed")
        self.compiled: compiled.CompiledTrees | None = None
        if compile_trees if compile_trees is not None else compiled.enabled():
            self.compiled = self._compile()

    def _compile(self) -> compiled.CompiledTrees | None:
        """The compiled trees, or None (one log line) to stay on LightGBM's C API."""
        try:
            path = compiled.compile_trees(self.booster.model_to_string(num_iteration=-1))
            return compiled.CompiledTrees(path, n_features=self.n_features,
                                          n_classes=len(LABELS))
        except (compiled.TreeCompileError, OSError, AttributeError) as exc:
            _log.warning("%s: trees not compiled, using LightGBM's predictor (%s)",
                         self.source, exc)
            return None

    @classmethod
    def load(cls, path: str | Path | None = None, *, compile_trees: bool | None = None
             ) -> StudentModel:
        """Load ``path`` (default ``models/student.txt``); ``compile_trees`` as in the class.

        Raises
        ------
        UserError
            One line naming the file: missing, or not a four-class LightGBM model.
        """
        p = Path(path).expanduser() if path is not None else MODELS_DIR / MODEL_FILE
        if not p.is_file():
            raise UserError(f"{p}: no student model (build one: early-media-agent train)")
        try:
            booster = lgb.Booster(model_file=str(p))
        except (lgb.basic.LightGBMError, ValueError, UnicodeDecodeError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
            raise UserError(f"{p}: not a LightGBM model ({reason})") from None
        return cls(booster, source=str(p), compile_trees=compile_trees)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """``(n, F)`` features → ``(n, 4)`` class probabilities in LABELS order."""
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected (n, {self.n_features}) features, got {x.shape}")
        if x.shape[0] == 0:
            return np.zeros((0, len(LABELS)), np.float64)
        if self.compiled is not None and self.booster.best_iteration <= 0:
            # No early-stopping cut: Booster.predict would use every tree, as compiled.
            return self.compiled.predict_batch(np.ascontiguousarray(x))
        return np.asarray(self.booster.predict(x, num_threads=1)).reshape(-1, len(LABELS))

    def predict_one(self, features: np.ndarray) -> np.ndarray:
        """``(F,)`` features of one second → ``(4,)`` probabilities (fast path)."""
        x = np.ascontiguousarray(features, dtype=np.float32)
        if x.shape != (self.n_features,):
            raise ValueError(f"expected ({self.n_features},) features, got {x.shape}")
        with self._lock:
            if self.compiled is not None:
                return self.compiled.predict_into(x).copy()
            rc = _LIB.LGBM_BoosterPredictForMatSingleRowFast(
                self._fast, x.ctypes.data_as(ctypes.c_void_p), ctypes.byref(self._out_len),
                self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            )
            if rc != 0:
                raise RuntimeError("LightGBM single-row prediction failed")
            return self._out.copy()

    def row_predictor(self, row: np.ndarray) -> Callable[[], np.ndarray]:
        """A zero-argument :meth:`predict_one` of ``row``, a ``(F,)`` float32 C-contiguous
        buffer the caller refills in place before each call (the live stream's way).

        With compiled trees a call is a single native call on pointers resolved here; the
        returned ``(4,)`` array is overwritten by the next call. Each stream binds its own
        row, so streams on different threads do not share an output buffer.
        """
        if row.dtype != np.float32 or row.shape != (self.n_features,) or \
                not row.flags.c_contiguous:
            raise ValueError(f"expected a C-contiguous ({self.n_features},) float32 row")
        if self.compiled is not None:
            return self.compiled.bind(row)
        return partial(self.predict_one, row)

    def __del__(self) -> None:
        fast = getattr(self, "_fast", None)
        if fast is not None and fast.value:
            _LIB.LGBM_FastConfigFree(fast)
            self._fast = ctypes.c_void_p()
