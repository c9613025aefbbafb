"""From recordings to a table of seconds: features, teacher labels, source labels.

Every whole second of every recording becomes one row: its 696 log-mel features, its 96
context features, the teacher's smoothed label with whether the second's frames agree,
the teacher's mean soft scores, and the recording's source label when it has one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agent.distill.smoothing import hann_smooth, per_second, window_frames
from agent.distill.teachers import Teacher
from agent.errors import UserError
from agent.features import seconds_of
from agent.features.context import context_batch, log_mel_and_periodicity
from agent.labels import LABELS


@dataclass(frozen=True)
class Recording:
    """One recording to learn from; ``label`` is its source truth, or None if unlabeled.

    ``stratum`` names the kind of source (e.g. ``music/asterisk-moh-opsound-wav``) so the
    held-out set samples every kind; default: the label.
    """

    id: str
    group: str
    samples: np.ndarray
    label: str | None = None
    stratum: str | None = None


@dataclass(frozen=True)
class TeacherSeconds:
    """The teacher's view of each whole second of one recording."""

    label: np.ndarray  # (n,) smoothed label index
    agreed: np.ndarray  # (n,) bool: all smoothed frames of the second agree
    soft: np.ndarray  # (n, 4) mean frame scores


def teach(teacher: Teacher, samples: np.ndarray) -> TeacherSeconds:
    """Label each whole second of ``samples`` with ``teacher`` (eqs. 1–2 of the paper).

    Frame labels are the argmax of the four class scores, smoothed with a Hann-weighted
    vote over ±1.5 s; a second is kept (``agreed``) only if its smoothed frames agree.
    """
    n = samples.size // 8000
    fs = teacher.frame_scores(samples)
    if fs.classes != LABELS:
        raise ValueError(f"teacher must score {LABELS}, got {fs.classes[:4]}")
    frame_labels = np.argmax(fs.scores, axis=1)
    smoothed = hann_smooth(frame_labels, n_classes=len(LABELS),
                           window=window_frames(fs.frame_rate))
    labels, agreed = per_second(smoothed, frame_rate=fs.frame_rate, n_seconds=n)
    second_of = np.floor((np.arange(fs.scores.shape[0]) + 0.5) / fs.frame_rate).astype(np.intp)
    soft = np.zeros((n, len(LABELS)), np.float32)
    for s in range(n):
        rows = fs.scores[second_of == s]
        if rows.size:
            soft[s] = rows.mean(axis=0)
    return TeacherSeconds(label=labels, agreed=agreed, soft=soft)


@dataclass
class SecondsTable:
    """Rows are seconds; ``file`` indexes ``ids``/``groups``/``strata``; ``source`` is -1 if
    unknown."""

    features: np.ndarray
    context: np.ndarray
    periodicity: np.ndarray
    source: np.ndarray
    teacher: np.ndarray
    agreed: np.ndarray
    soft: np.ndarray
    file: np.ndarray
    t: np.ndarray
    ids: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    strata: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.source.size)

    def subset(self, mask: np.ndarray) -> SecondsTable:
        """Rows where ``mask`` is True (file tables are shared)."""
        return SecondsTable(
            features=self.features[mask], context=self.context[mask],
            periodicity=self.periodicity[mask], source=self.source[mask],
            teacher=self.teacher[mask], agreed=self.agreed[mask], soft=self.soft[mask],
            file=self.file[mask], t=self.t[mask], ids=self.ids, groups=self.groups,
            strata=self.strata,
        )


def teach_cached(teacher: Teacher, samples: np.ndarray, cache: Path | None) -> TeacherSeconds:
    """:func:`teach`, reusing a result stored under ``cache`` for the same samples."""
    if cache is None:
        return teach(teacher, samples)
    digest = hashlib.sha1(np.ascontiguousarray(samples, np.float32).tobytes()).hexdigest()[:24]
    path = cache / f"{digest}.npz"
    if path.is_file():
        with np.load(path) as z:
            return TeacherSeconds(label=z["label"], agreed=z["agreed"], soft=z["soft"])
    taught = teach(teacher, samples)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f"{digest}.tmp.npz"
    np.savez(tmp, label=taught.label, agreed=taught.agreed, soft=taught.soft)
    tmp.replace(path)
    return taught


def build_table(recordings: Iterable[Recording], teacher: Teacher, *,
                cache: Path | None = None) -> SecondsTable:
    """Features and teacher labels of every whole second of every recording.

    With ``cache`` (a directory specific to the teacher), each recording's teacher labels
    are stored by content hash, so a grown corpus only pays for its new files.
    """
    parts: dict[str, list[np.ndarray]] = {k: [] for k in
                                          ("features", "context", "periodicity", "source",
                                           "teacher",
                                           "agreed", "soft", "file", "t")}
    ids: list[str] = []
    groups: list[str] = []
    strata: list[str] = []
    for rec in recordings:
        windows = seconds_of(rec.samples)
        n = windows.shape[0]
        if n == 0:
            continue
        feats, periodicity = log_mel_and_periodicity(windows)
        taught = teach_cached(teacher, rec.samples[: n * 8000], cache)
        index = len(ids)
        ids.append(rec.id)
        groups.append(rec.group)
        strata.append(rec.stratum or rec.label or "")
        source = LABELS.index(rec.label) if rec.label is not None else -1
        parts["features"].append(feats)
        parts["context"].append(context_batch(feats))
        parts["periodicity"].append(periodicity)
        parts["source"].append(np.full(n, source, np.int8))
        parts["teacher"].append(taught.label.astype(np.int8))
        parts["agreed"].append(taught.agreed)
        parts["soft"].append(taught.soft)
        parts["file"].append(np.full(n, index, np.int32))
        parts["t"].append(np.arange(n, dtype=np.int32))
    if not ids:
        raise UserError("no recording holds a whole second of audio")
    return SecondsTable(
        features=np.concatenate(parts["features"]).astype(np.float32),
        context=np.concatenate(parts["context"]).astype(np.float32),
        periodicity=np.concatenate(parts["periodicity"]).astype(np.float32),
        source=np.concatenate(parts["source"]),
        teacher=np.concatenate(parts["teacher"]),
        agreed=np.concatenate(parts["agreed"]),
        soft=np.concatenate(parts["soft"]),
        file=np.concatenate(parts["file"]),
        t=np.concatenate(parts["t"]),
        ids=ids,
        groups=groups,
        strata=strata,
    )
