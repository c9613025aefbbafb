"""Leave-one-voice-out folds: the student trained without a voice, scored on that voice.

A split by file (:func:`agent.distill.train.grouped_split`) tests on the speakers and
music sources the model trained on, so it measures memory, not generalisation. Here each
speech voice family and each music source family is a fold, and the ringback and
line-silence files are held out by corpus group (a ringback group is one country's plan,
a silence group one file), dealt into a few folds. The student is trained exactly as
``train`` trains it (:func:`~agent.distill.train.targets` labels,
:func:`~agent.distill.train.fit` parameters) on every file outside the fold and predicts
the fold's files. Pooled over the folds, every second is predicted by a model that never
heard its voice or source.

A speech or music file's family is :func:`~agent.corpus.manifest.voice_family` of its
manifest ``voice``: the Debian package of the speaker or the music.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np

from agent.classify.model import InputLayout
from agent.classify.rule import StreamRule
from agent.corpus.manifest import voice_family
from agent.distill import LABEL_MODES
from agent.distill.candidates import CANDIDATES, candidate_block
from agent.distill.dataset import SecondsTable
from agent.distill.train import STUDENT_FEATURES, TrainParams, carried_over, fit, targets
from agent.errors import UserError
from agent.features.context import N_ACF, N_PERIODICITY, summary_batch
from agent.features.modulation import modulation_of_runs
from agent.labels import LABEL_INDEX, LABELS

# Blocks in the order InputLayout.assemble lays them out, so a spec naming a layout's
# blocks gives its columns in its order (feature_fraction samples by column index: another
# order would train another model). The periodicity block's columns are named apart:
# ``voicing`` (seven voicing statistics), ``pitch`` (the pitch level among them) and
# ``steadiness`` (six), kept in their order within the block.
BLOCKS = ("logmel", "summary", "voicing", "pitch", "steadiness", "context", "modulation",
          *CANDIDATES)
_ALIASES = {"acf": ("voicing", "pitch"), "periodicity": ("voicing", "pitch", "steadiness"),
            "periodicity-level": ("voicing", "steadiness")}
# Column of the voiced frames' mean log2 pitch lag among the voicing statistics of
# agent.features.context.periodicity_batch: the speaker's pitch, measured apart because
# with few voices a student could learn voices by their pitch.
PITCH_LEVEL = 6
_PERIODICITY_COLUMNS = {
    "voicing": [i for i in range(N_ACF) if i != PITCH_LEVEL],
    "pitch": [PITCH_LEVEL],
    "steadiness": list(range(N_ACF, N_PERIODICITY)),
}

GROUP_FOLDS = 5
"""Ringback and silence groups are dealt round-robin (sorted) into this many folds per
class: one fold per ringback country would train ~170 models for a class whose tones
repeat across borders, and a silence group is a single file."""

TEACHER_UNSEEN = "combined+teacher-unseen"
"""Label strategy of the paper's workflow on top of ``combined``: the held-out voice's
audio is unlabelled production traffic, labelled by the teacher alone (agreed seconds),
and the student learns from half of its files and is scored on the other half."""

TEACHER_SPEECH = "combined+teacher-speech"
"""As :data:`TEACHER_UNSEEN`, but of the unseen files only the seconds the teacher calls
announcement are learnt from: the teacher is reliable on speech (its announcement recall
is near 100% on every voice) and not on music it has not heard or on cadence gaps."""

STRATEGIES = (*LABEL_MODES, TEACHER_UNSEEN, TEACHER_SPEECH)


@dataclass(frozen=True)
class FileVoice:
    """What the folds need to know of one file beyond its class: its voice
    (:attr:`agent.corpus.manifest.CorpusItem.voice`: ``<package>/<speaker>`` for speech,
    the package for music), whether music has vocals, its engine (human, festival, music)
    and its corpus group (files cut from the same audio share one)."""

    label: str
    voice: str
    vocals: bool | None = None
    engine: str | None = None
    group: str | None = None


def manifest_voices(corpus: Path) -> dict[str, FileVoice]:
    """Every manifest item's :class:`FileVoice`, by file id (older manifests get the voice
    :func:`~agent.corpus.manifest.load_manifest` derives from their sources)."""
    from agent.corpus.manifest import MANIFEST, load_manifest

    if not (corpus / MANIFEST).is_file():
        raise UserError(f"{corpus / MANIFEST}: no corpus manifest (run: early-media-agent "
                        "corpus build)")
    return {it.id: FileVoice(label=it.label, voice=it.voice,
                             vocals=it.vocals if it.label == "music" else None,
                             engine=it.engine or None, group=it.group)
            for it in load_manifest(corpus)}


def fold_names(files: Sequence[FileVoice], *, group_folds: int = GROUP_FOLDS,
               speech_by: str = "voice") -> list[str]:
    """The fold of each file: ``<class> <voice family>`` for speech and music, ``<class>
    groups k/K`` for ringback and silence.

    Ringback and silence groups (the file's ``group``, else its voice) are sorted and dealt
    round-robin into ``group_folds`` folds per class, so every file of a group (a
    country's ringback plan) lands in one fold. With ``speech_by="engine"`` the
    announcement folds are whole engines instead (``announcement engine festival``: every
    synthetic voice held out at once, learnt from human voices alone), the harder question
    of a kind of voice never heard; files without an engine keep their voice.

    Examples
    --------
    >>> fold_names([FileVoice("music", "wesnoth-music"), FileVoice("silence", "s/hum", group="a"),
    ...             FileVoice("silence", "s/pink", group="b")], group_folds=2)
    ['music wesnoth-music', 'silence groups 1/2', 'silence groups 2/2']
    """
    if speech_by not in ("voice", "engine"):
        raise ValueError(f"speech_by={speech_by!r}: expected 'voice' or 'engine'")
    bucket: dict[tuple[str, str], str] = {}
    for label in ("ringback", "silence"):
        groups = sorted({f.group or f.voice for f in files if f.label == label})
        k = max(1, min(group_folds, len(groups)))
        bucket.update({(label, g): f"{label} groups {i % k + 1}/{k}"
                       for i, g in enumerate(groups)})

    def name(f: FileVoice) -> str:
        if f.label in ("ringback", "silence"):
            return bucket[(f.label, f.group or f.voice)]
        if f.label == "announcement" and speech_by == "engine" and f.engine:
            return f"announcement engine {f.engine}"
        return f"{f.label} {voice_family(f.voice)}"

    return [name(f) for f in files]


def _blocks(spec: str) -> list[str]:
    """The canonical blocks a ``+``-joined feature spec names (ValueError if unknown)."""
    named: set[str] = set()
    for part in spec.split("+"):
        part = part.strip()
        if part in _ALIASES:
            named.update(_ALIASES[part])
        elif part in BLOCKS:
            named.add(part)
        else:
            raise ValueError(f"unknown feature block {part!r} in {spec!r}: expected "
                             f"{', '.join((*BLOCKS, *_ALIASES))}")
    if "logmel" not in named:
        raise ValueError(f"{spec!r}: every student starts from the log-mel block")
    return [b for b in BLOCKS if b in named]


def feature_layout(spec: str) -> InputLayout | None:
    """The :class:`InputLayout` of a spec a model file can carry, else None (an ablation
    that drops part of the periodicity block, or a candidate block of
    :mod:`agent.distill.candidates`, is measured, never shipped)."""
    blocks = set(_blocks(spec))
    if blocks & set(CANDIDATES):
        return None
    per = {"voicing", "pitch", "steadiness"} & blocks
    if per and len(per) < 3:
        return None
    return InputLayout(summary="summary" in blocks, periodicity=bool(per),
                       context="context" in blocks, modulation="modulation" in blocks)


def feature_matrix(table: SecondsTable, spec: str) -> np.ndarray:
    """The student inputs of every row of ``table`` for a feature spec such as
    ``logmel+periodicity+context`` (what ``train`` fits) or ``logmel+acf+context``.

    Parameters
    ----------
    table : SecondsTable
        Rows with log-mel, periodicity and context columns.
    spec : str
        ``+``-joined blocks of :data:`BLOCKS` or their aliases (``periodicity`` =
        ``voicing+pitch+steadiness``, ``periodicity-level`` = ``voicing+steadiness``,
        ``acf`` = ``voicing+pitch``); the candidate blocks of
        :mod:`agent.distill.candidates` (``modulation``, ``voicing-history``) come last.

    Returns
    -------
    numpy.ndarray
        ``(n, F)`` float32, blocks in :data:`BLOCKS` order whatever the spec's order.
    """
    blocks = _blocks(spec)
    per = sorted(c for b in blocks for c in _PERIODICITY_COLUMNS.get(b, ()))
    cols = [table.features]
    if "summary" in blocks:
        cols.append(summary_batch(table.features))
    if per:
        cols.append(table.periodicity[:, per])
    if "context" in blocks:
        cols.append(table.context)
    if "modulation" in blocks:
        cols.append(modulation_of_runs(table.features, table.file, table.t))
    cols += [candidate_block(table, b) for b in blocks if b in CANDIDATES]
    return np.ascontiguousarray(np.concatenate(cols, axis=1), dtype=np.float32)


@dataclass
class FoldRun:
    """Pooled out-of-fold predictions of one recipe (label strategy × features).

    ``raw`` are each row's probabilities as the model gives them, ``probs`` the same
    carried over from second to second as the live stream does; ``row_fold`` indexes
    ``folds``; ``fit_seconds`` is the wall time of each fold's training and prediction.
    """

    strategy: str
    features: str
    folds: list[str]
    row_fold: np.ndarray
    raw: np.ndarray
    probs: np.ndarray
    fit_seconds: list[float] = field(default_factory=list)

    @property
    def pred(self) -> np.ndarray:
        """Each row's predicted class index."""
        return self.probs.argmax(axis=1)

    @property
    def wall_seconds(self) -> float:
        """Training and prediction time of all folds."""
        return float(sum(self.fit_seconds))


def _halves(table: SecondsTable, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two row masks splitting ``rows`` by file group, alternately in sorted group order
    (files cut from the same source audio stay on one side)."""
    groups = np.asarray(table.groups)[table.file]
    names = sorted(set(groups[rows]))
    first = {g for i, g in enumerate(names) if i % 2 == 0}
    in_first = np.array([g in first for g in groups]) & rows
    return in_first, rows & ~in_first


def run_folds(table: SecondsTable, file_folds: Sequence[str], *, strategy: str = "combined",
              features: str = STUDENT_FEATURES, params: TrainParams | None = None,
              rule: StreamRule | None = None,
              progress: Callable[[str], None] | None = None) -> FoldRun:
    """Train one student per fold on the files outside it and predict the fold's files.

    Parameters
    ----------
    table : SecondsTable
        Every second of a labelled corpus.
    file_folds : sequence of str
        The fold of each of ``table``'s files (:func:`fold_names`).
    strategy : str
        A label mode of :data:`~agent.distill.LABEL_MODES` (the training rows and labels of
        :func:`~agent.distill.train.targets`), :data:`TEACHER_UNSEEN` or
        :data:`TEACHER_SPEECH`.
    features : str
        A spec of :func:`feature_matrix`.
    params, rule
        LightGBM settings (default: the shipped ones) and the streaming rule whose
        persistence carries probabilities over.
    progress
        Called with each fold's name and time, for a long run's log.

    Returns
    -------
    FoldRun
        Out-of-fold probabilities of every row.
    """
    if strategy not in STRATEGIES:
        raise UserError(f"label strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    if len(file_folds) != len(table.ids):
        raise ValueError(f"{len(file_folds)} fold names for {len(table.ids)} files")
    x = feature_matrix(table, features)
    layout = feature_layout(features)
    if layout is not None and layout.n_features != x.shape[1]:
        layout = None  # a table narrower than the extractor's (tests): no names to write
    names = sorted(set(file_folds))
    index = {name: i for i, name in enumerate(names)}
    row_fold = np.array([index[f] for f in file_folds], np.intp)[table.file]
    unseen = strategy in (TEACHER_UNSEEN, TEACHER_SPEECH)
    base = "combined" if unseen else strategy
    probs = np.zeros((len(table), len(LABELS)), np.float64)
    seconds: list[float] = []
    for k, name in enumerate(names):
        t0 = time.perf_counter()
        held = row_fold == k
        train = ~held
        keep, y = targets(table.subset(train), base)
        # (rows scored, extra rows learnt from with the teacher's labels) per model.
        if unseen:
            a, b = _halves(table, held)
            runs = [(b, a), (a, b)] if a.any() and b.any() else [(held, None)]
        else:
            runs = [(held, None)]
        for scored, extra in runs:
            xs, ys = x[train][keep], y[keep]
            if extra is not None:
                k2, y2 = targets(table.subset(extra), "teacher")
                if strategy == TEACHER_SPEECH:
                    k2 &= y2 == LABEL_INDEX["announcement"]
                xs = np.concatenate([xs, x[extra][k2]])
                ys = np.concatenate([ys, y2[k2]])
            booster = fit(xs, ys, layout=layout, params=params)
            probs[scored] = _predict_rows(booster, x[scored])
        seconds.append(time.perf_counter() - t0)
        if progress is not None:
            progress(f"{name}: {int(held.sum())} s in {seconds[-1]:.1f} s")
    return FoldRun(strategy=strategy, features=features, folds=names, row_fold=row_fold,
                   raw=probs, probs=carried_over(table, probs, rule), fit_seconds=seconds)


def _predict_rows(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    """``(n, 4)`` probabilities of rows (empty-safe)."""
    if x.shape[0] == 0:
        return np.zeros((0, len(LABELS)))
    return np.asarray(booster.predict(x, num_threads=1)).reshape(-1, len(LABELS))
