"""``early-media-agent train`` and ``early-media-agent distill``.

``train`` learns the student from the labelled corpus (``corpus build``), with teacher
labels, source labels or both; ``distill`` is the paper's own workflow: a folder of
unlabelled early-media recordings, labelled by the teachers alone, becomes a new student.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from agent.distill import LABEL_MODES
from agent.errors import UserError
from agent.labels import LABELS
from agent.paths import cache_dir, data_dir

TEACHER_HELP = (
    "teacher: yamnet+vad (default: YAMNet + Silero VAD), yamnet, or onnx:PATH[+vad] for an "
    "AudioSet tagger exported to ONNX with a 32 kHz waveform input, e.g. PANNs CNN14 "
    "(class names from --teacher-labels)"
)


def _common(p: argparse.ArgumentParser, *, out: Path) -> None:
    p.add_argument("--out", type=Path, default=out,
                   help="where to write student.txt, REPORT.md, MODEL_CARD.md "
                        f"(default {out})")
    p.add_argument("--teacher", default="yamnet+vad", help=TEACHER_HELP)
    p.add_argument("--teacher-labels", type=Path, default=None,
                   help="AudioSet class CSV (index,mid,display_name) of an onnx: teacher")
    p.add_argument("--quick", action="store_true",
                   help="train only the shipped variants (skip the MFCC / label comparisons)")
    p.add_argument("--no-cache", action="store_true",
                   help="recompute teacher labels instead of reusing cached ones")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "train", help="train the student classifier on the corpus",
        description="Train the LightGBM student on the labelled corpus (corpus build) with "
        "teacher labels, source labels or both; write the model, its report and model "
        "card.")
    p.add_argument("--corpus", type=Path, default=None,
                   help="corpus directory (default: <cache>/corpus, from `corpus build`)")
    p.add_argument("--labels", choices=LABEL_MODES, default="combined",
                   help="teacher labels, source labels, or source labels the teacher "
                        "confirms (default combined)")
    p.add_argument("--held-out", type=Path, default=None, metavar="SPLIT_JSON",
                   help="keep the files an earlier split.json held out in the test set (new "
                        "kinds of source are split as usual), to compare with that model")
    p.add_argument("--lovo", action="store_true",
                   help="also hold each voice and music source out in turn and put the "
                        "scores on voices never heard in the report and card (minutes)")
    # Never the checkout's models/ by default: a retrain must not overwrite the shipped
    # model by accident (write there on purpose with --out models).
    _common(p, out=data_dir() / "models")
    p.set_defaults(func=run_train)

    d = subparsers.add_parser("distill", help="label a folder of recordings with the teachers "
                                               "and train a student on them",
                              description="Distil a new student from a folder of your own "
                              "unlabelled early-media recordings: the teachers alone label "
                              "them (the paper's workflow), then the student is trained on "
                              "those labels.")
    d.add_argument("folder", type=Path, help="folder of unlabelled early-media recordings")
    # Your own student goes beside your data, not over the shipped model; point
    # classifier.model in config/agent.yaml at it.
    _common(d, out=data_dir() / "models")
    d.set_defaults(func=run_distill)


def _command() -> str:
    return "early-media-agent " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def run_train(args: argparse.Namespace) -> int:
    """Handler of ``train``."""
    from agent.corpus.manifest import load_manifest
    from agent.distill.pipeline import labelled_table, teacher_cache, train_student
    from agent.distill.report import source_rows
    from agent.distill.teachers import make_teacher
    from agent.distill.train import corpus_recordings

    corpus = args.corpus or cache_dir() / "corpus"
    keep_test = _held_out(args.held_out) if args.held_out else []
    recordings = corpus_recordings(corpus)
    teacher = make_teacher(args.teacher, labels_csv=args.teacher_labels)
    cache = None if args.no_cache else teacher_cache(teacher.name)
    table = labelled_table(recordings, teacher, cache=cache, progress=True)
    packages = sorted({s.split("/", 1)[1] for s in table.strata if "/" in s} - {""})
    notes = held_out_notes(keep_test, table.ids, split=args.held_out) if keep_test else []
    info = {"command": _command(),
            "data": f"corpus {corpus} ({len(table.ids)} files, {len(table)} seconds; "
                    f"sources: {', '.join(packages)})",
            "teacher": teacher.name, "notes": notes,
            "sources": source_rows(load_manifest(corpus)),
            "holdout_voices": _holdout_voices(corpus)}
    if args.lovo:
        info.update(_lovo(corpus, table, args.labels))
    shipped = train_student(
        table, out_dir=args.out, labels=args.labels, compare=not args.quick,
        keep_test=keep_test, info=info,
    )
    _summary(args.out, shipped.name, shipped.agreement, shipped.macro_f1)
    return 0


def _holdout_voices(corpus: Path) -> list[str]:
    """The voices the corpus build held out (its ``build.json``), for the model card."""
    import json

    path = corpus / "build.json"
    if not path.is_file():
        return []
    return list(json.loads(path.read_text(encoding="utf-8")).get("holdout_voices", []))


def _lovo(corpus: Path, table: Any, labels: str) -> dict[str, Any]:
    """Leave-one-voice-out scores of the shipped recipe, for the report and card."""
    from agent.classify.rule import load_classifier_config
    from agent.distill.folds import manifest_voices
    from agent.distill.lovo import LovoData, lovo_section, second_truth
    from agent.distill.train import STUDENT_FEATURES

    known = manifest_voices(corpus)
    data = LovoData(table=table, voices=[known[i] for i in table.ids],
                    second_truth=second_truth(table, corpus))
    s, lines = lovo_section(data, (labels, STUDENT_FEATURES),
                            rule=load_classifier_config().rule)
    recall = ", ".join(f"{lb} {100 * r:.2f}% (teacher {100 * t:.2f}%)" for lb, r, t in
                       zip(LABELS, s.recall, s.teacher_recall, strict=True))
    return {"lovo_lines": lines,
            "lovo": f"per-second macro-F1 vs source {s.macro_f1:.4f} (vs per-second truth "
                    f"{s.second_macro_f1:.4f}), call accuracy {100 * s.call_accuracy:.2f}%; "
                    f"recall {recall}. Details: REPORT.md."}


def held_out_notes(keep_test: list[str], ids: list[str], *, split: Path) -> list[str]:
    """The report's note on a kept held-out set, naming the files the corpus no longer has
    (a rebuilt class can come out a few files shorter)."""
    notes = [f"Held out: the {len(keep_test)} files {split} held out before (their source "
             "groups), plus a share of each kind of source they do not cover (`train "
             "--held-out`), so the two models are measured on files neither trained on."]
    gone = sorted(set(keep_test) - set(ids))
    if gone:
        notes.append(f"{len(gone)} of them are no longer in the corpus: {', '.join(gone)}.")
    return notes


def _held_out(path: Path) -> list[str]:
    """The ``test_files`` of a split.json written by ``train``."""
    import json

    try:
        files = json.loads(path.read_text(encoding="utf-8"))["test_files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a split.json with test_files ({exc})") from None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise UserError(f"{path}: test_files must be a list of file ids")
    return files


def run_distill(args: argparse.Namespace) -> int:
    """Handler of ``distill``."""
    from agent.distill.pipeline import labelled_table, teacher_cache, train_student
    from agent.distill.teachers import make_teacher
    from agent.distill.train import folder_recordings

    if not args.folder.is_dir():
        raise UserError(f"{args.folder}: not a directory of recordings")
    teacher = make_teacher(args.teacher, labels_csv=args.teacher_labels)
    cache = None if args.no_cache else teacher_cache(teacher.name)
    table = labelled_table(folder_recordings(args.folder), teacher, cache=cache, progress=True)
    shipped = train_student(
        table, out_dir=args.out, labels="teacher", compare=not args.quick,
        info={"command": _command(),
              "data": f"unlabelled recordings in {args.folder} ({len(table.ids)} files, "
                      f"{len(table)} seconds), labelled by the teacher alone",
              "teacher": teacher.name},
    )
    _summary(args.out, shipped.name, shipped.agreement, shipped.macro_f1)
    return 0


def _summary(out: Path, name: str, agreement: float | None, macro_f1: float | None) -> None:
    parts = [f"wrote {out / 'student.txt'} ({name})"]
    if agreement is not None:
        parts.append(f"agreement with teacher {100 * agreement:.2f}%")
    if macro_f1 is not None:
        parts.append(f"macro-F1 vs source {macro_f1:.4f}")
    print("; ".join(parts) + f"; report: {out / 'REPORT.md'}")
