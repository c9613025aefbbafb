"""The student's trees compiled to native code, for the one-row-per-second live path.

LightGBM walks its trees as arrays (load node, compare, load child); as nested ``if``s
with every threshold a constant, one row of the shipped 800-tree model costs 5-15 µs
instead of 30-45. :func:`compile_trees` writes the model's trees as C, builds a shared
object with the system C compiler once per model (cached under the XDG cache dir, keyed
by the model text and this generator), and :class:`CompiledTrees` calls it.

The C reproduces LightGBM's prediction: a row goes left where LightGBM's
``(double) value <= threshold`` holds (compared in float32 against the equivalent float
threshold), NaN and zero follow each node's missing-value type and default direction,
leaf values are summed per class in tree order, and the probabilities are LightGBM's
softmax. Anything this does not cover (categorical splits, linear trees, averaged
outputs, other objectives) is refused with :class:`TreeCompileError`, and the caller
stays on LightGBM's C API.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from agent.paths import cache_dir

_log = logging.getLogger(__name__)

ENV_SWITCH = "EMA_COMPILED_TREES"
_K_ZERO = "1e-35f"  # LightGBM's kZeroThreshold, compared as float as LightGBM does
_MISSING_NONE, _MISSING_ZERO, _MISSING_NAN = 0, 1, 2
_CATEGORICAL_MASK, _DEFAULT_LEFT_MASK = 1, 2
_ENTRY = "ema_predict"


class TreeCompileError(Exception):
    """The model cannot be compiled here (unsupported model, or no working C compiler)."""


def enabled() -> bool:
    """False when ``EMA_COMPILED_TREES`` is ``0``, ``false``, ``no`` or ``off``."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in {"0", "false", "no", "off"}


@dataclass(frozen=True)
class _Tree:
    split_feature: list[int]
    threshold: list[float]
    decision_type: list[int]
    left_child: list[int]
    right_child: list[int]
    leaf_value: list[float]


def _parse(model_text: str) -> tuple[int, int, list[_Tree]]:
    """LightGBM model text → (number of classes, number of features, trees in order)."""
    header, _, rest = model_text.partition("\nTree=")
    fields = dict(line.split("=", 1) for line in header.splitlines() if "=" in line)
    objective = fields.get("objective", "").split()
    if not objective or objective[0] not in {"multiclass", "softmax"}:
        raise TreeCompileError(f"objective {fields.get('objective')!r} is not softmax multiclass")
    if "average_output" in header.split():
        raise TreeCompileError("averaged (random forest) output is not supported")
    n_class = int(fields["num_tree_per_iteration"])
    n_features = int(fields["max_feature_idx"]) + 1
    trees = []
    body = rest.split("\nend of trees", 1)[0]
    for block in ("Tree=" + body).split("\nTree=") if body else []:
        kv = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if int(kv.get("num_cat", "0")) or int(kv.get("is_linear", "0")):
            raise TreeCompileError("categorical splits and linear trees are not supported")
        leaves = [float(v) for v in kv["leaf_value"].split()]
        if int(kv["num_leaves"]) == 1:
            trees.append(_Tree([], [], [], [], [], leaves))
            continue
        trees.append(_Tree(
            split_feature=[int(v) for v in kv["split_feature"].split()],
            threshold=[float(v) for v in kv["threshold"].split()],
            decision_type=[int(v) for v in kv["decision_type"].split()],
            left_child=[int(v) for v in kv["left_child"].split()],
            right_child=[int(v) for v in kv["right_child"].split()],
            leaf_value=leaves,
        ))
    if not trees or len(trees) % n_class:
        raise TreeCompileError(f"{len(trees)} trees do not make whole iterations of {n_class}")
    return n_class, n_features, trees


def _c_double(value: float) -> str:
    """Exact C literal of a double (hex float; LightGBM writes infinite thresholds)."""
    if np.isnan(value):
        return "NAN"
    if np.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    return value.hex()


def _c_float_threshold(threshold: float) -> str:
    """C float literal of the largest float32 at or below a double threshold.

    For a float32 feature value ``v``, ``(double) v <= t`` exactly when ``v <= F`` with
    ``F`` this float (every float up to ``t`` is at most ``F``), so the trees compare in
    single precision, with smaller code and constants, and still split like LightGBM.
    """
    f = np.float32(threshold)
    if np.isnan(f):
        return "NAN"
    if float(f) > threshold:
        f = np.nextafter(f, np.float32(-np.inf))
    if np.isinf(f):
        return "INFINITY" if f > 0 else "-INFINITY"
    return float(f).hex() + "f"


def _condition(tree: _Tree, node: int) -> str:
    """C expression that is true when ``node`` sends the row to its left child."""
    dt = tree.decision_type[node]
    if dt & _CATEGORICAL_MASK:
        raise TreeCompileError("categorical splits are not supported")
    f = tree.split_feature[node]
    thr = _c_float_threshold(tree.threshold[node])
    default = "1" if dt & _DEFAULT_LEFT_MASK else "0"
    missing = (dt >> 2) & 3
    if missing == _MISSING_NAN:
        return f"(isnan(x[{f}]) ? {default} : x[{f}] <= {thr})"
    # Without a NaN branch, NaN reads as 0.0. Against a constant that is one comparison:
    # for a threshold >= 0 NaN must go left, as !(NaN > t) does; below 0 it must go right,
    # as (NaN <= t) does. No NaN-free copy of the row is needed.
    if missing == _MISSING_ZERO:
        return f"((isnan(x[{f}]) || is0(x[{f}])) ? {default} : x[{f}] <= {thr})"
    if thr != "NAN" and np.float32(tree.threshold[node]) >= 0:
        return f"(!(x[{f}] > {thr}))"
    return f"(x[{f}] <= {thr})"


def _tree_c(tree: _Tree, index: int) -> str:
    """One tree as ``static double t<index>(x)``, ``x`` the row."""
    head = f"static double t{index}(const float *x) {{"
    if not tree.split_feature:
        return f"{head} (void)x; return {_c_double(tree.leaf_value[0])}; }}\n"
    lines = [head]

    def emit(child: int, depth: int) -> None:
        pad = " " * depth
        if child < 0:
            lines.append(f"{pad}return {_c_double(tree.leaf_value[~child])};")
            return
        lines.append(f"{pad}if {_condition(tree, child)} {{")
        emit(tree.left_child[child], depth + 1)
        lines.append(f"{pad}}} else {{")
        emit(tree.right_child[child], depth + 1)
        lines.append(f"{pad}}}")

    emit(0, 1)
    lines.append("}")
    return "\n".join(lines) + "\n"


def generate_c(model_text: str) -> tuple[str, int, int]:
    """C source of ``void ema_predict(const float *row, double *probabilities)``.

    Returns
    -------
    tuple
        ``(source, n_classes, n_features)``.

    Raises
    ------
    TreeCompileError
        The model uses something the generator does not reproduce exactly.
    """
    n_class, n_features, trees = _parse(model_text)
    parts = [
        "#include <math.h>\n",
        f"#define is0(v) ((v) >= -{_K_ZERO} && (v) <= {_K_ZERO})\n",
    ]
    parts += [_tree_c(tree, i) for i, tree in enumerate(trees)]
    sums = "\n".join(f"  s[{i % n_class}] += t{i}(x);" for i in range(len(trees)))
    parts.append(
        f"void {_ENTRY}(const float *row, double *out) {{\n"
        f"  const float *x = row;\n"
        f"  double s[{n_class}] = {{0}};\n"
        f"{sums}\n"
        f"  double m = s[0], sum = 0.0;\n"
        f"  for (int k = 1; k < {n_class}; ++k) m = s[k] > m ? s[k] : m;\n"
        f"  for (int k = 0; k < {n_class}; ++k) {{ s[k] = exp(s[k] - m); sum += s[k]; }}\n"
        f"  for (int k = 0; k < {n_class}; ++k) out[k] = s[k] / sum;\n"
        "}\n"
        f"void {_ENTRY}_batch(const float *rows, long n, double *out) {{\n"
        f"  for (long i = 0; i < n; ++i) {_ENTRY}(rows + i * {n_features}, out + i * {n_class});\n"
        "}\n"
    )
    return "".join(parts), n_class, n_features


def _compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise TreeCompileError("no C compiler (cc) on PATH")
    return cc


def compile_trees(model_text: str, *, cache: Path | None = None) -> Path:
    """The shared object for ``model_text``, built on first use and cached.

    Parameters
    ----------
    model_text : str
        The model in LightGBM's text format (``Booster.model_to_string()``).
    cache : pathlib.Path, optional
        Directory of built objects; default ``<XDG cache>/early-media-agent/trees``.

    Raises
    ------
    TreeCompileError
        Unsupported model, no compiler, or the compiler failed.
    """
    # Keyed by the model and by this generator's own source, so a new model or a change to
    # the emitted C builds afresh while a cached model loads without generating anything.
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(model_text.encode())
    folder = cache if cache is not None else cache_dir() / "trees"
    target = folder / f"student-{digest.hexdigest()[:24]}.so"
    if target.is_file():
        return target
    source, _, _ = generate_c(model_text)
    folder.mkdir(parents=True, exist_ok=True)
    _log.info("compiling the student's trees to %s (once per model)", target)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        c_file = Path(tmp) / "trees.c"
        c_file.write_text(source)
        built = Path(tmp) / "trees.so"
        try:
            proc = subprocess.run(
                [_compiler(), "-O1", "-shared", "-fPIC", "-o", str(built), str(c_file), "-lm"],
                capture_output=True, text=True, check=False,
            )
        except OSError as exc:
            raise TreeCompileError(f"C compiler failed to start: {exc}") from None
        if proc.returncode != 0:
            errors = [ln for ln in proc.stderr.splitlines() if "error" in ln]
            first = (errors or proc.stderr.strip().splitlines() or ["no message"])[0]
            raise TreeCompileError(f"C compiler failed: {first}")
        # Rename into place so a concurrent process never loads a half-written object.
        os.replace(built, target)
    return target


class CompiledTrees:
    """A loaded shared object from :func:`compile_trees`: one row in, probabilities out."""

    def __init__(self, path: Path, *, n_features: int, n_classes: int) -> None:
        self.path = path
        self.n_features = n_features
        self._lib = ctypes.CDLL(str(path))
        self._fn = getattr(self._lib, _ENTRY)
        self._fn.restype = None
        self._fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self._batch = getattr(self._lib, f"{_ENTRY}_batch")
        self._batch.restype = None
        self._batch.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p]
        self.out = np.zeros(n_classes, np.float64)
        self._out_ptr = self.out.ctypes.data

    def predict_into(self, row: np.ndarray) -> np.ndarray:
        """Probabilities of one contiguous float32 row, written into (and returning)
        :attr:`out`; the caller copies them if it keeps them past the next call."""
        self._fn(row.ctypes.data, self._out_ptr)
        return self.out

    def bind(self, row: np.ndarray) -> Callable[[], np.ndarray]:
        """A zero-argument predictor of ``row`` (C-contiguous float32, refilled in place
        by the caller) with its own output array, which each call overwrites and returns.

        The pointers are resolved once here, so a call is one foreign-function call; the
        predictor holds ``row`` so the buffer outlives it.
        """
        out = np.zeros_like(self.out)
        # A function object of its own, without argtypes, given ready-made pointers:
        # converting two ints through argtypes cost 0.25 µs of every call.
        raw = self._lib[_ENTRY]
        raw.restype = None
        call = partial(raw, ctypes.c_void_p(row.ctypes.data), ctypes.c_void_p(out.ctypes.data))

        def predict(_row: np.ndarray = row) -> np.ndarray:
            call()
            return out

        return predict

    def predict_batch(self, rows: np.ndarray) -> np.ndarray:
        """``(n, F)`` C-contiguous float32 rows → ``(n, classes)`` probabilities."""
        out = np.empty((rows.shape[0], self.out.size), np.float64)
        self._batch(rows.ctypes.data, rows.shape[0], out.ctypes.data)
        return out
