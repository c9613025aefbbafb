"""``early-media-agent corpus build|info``."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from agent.config import build, read_yaml
from agent.corpus.build import build_corpus, summarize, totals_lines
from agent.corpus.config import CorpusConfig
from agent.corpus.manifest import load_manifest
from agent.errors import UserError
from agent.labels import LABELS
from agent.paths import CONFIG_DIR, cache_dir


def default_out() -> Path:
    """Where the corpus goes unless ``--out`` says otherwise."""
    return cache_dir() / "corpus"


def load_config(path: str | None, *, overrides: dict[str, Any]) -> CorpusConfig:
    """``config/corpus.yaml`` (or ``path``) with command-line overrides, validated once."""
    if path is not None:
        data = read_yaml(path)
    elif (CONFIG_DIR / "corpus.yaml").is_file():
        data = read_yaml(CONFIG_DIR / "corpus.yaml")
    else:
        data = {}
    cfg = build(CorpusConfig, data, "corpus")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if changes:
        cfg = dataclasses.replace(cfg, **changes)
        cfg.validate()
    return cfg


def _labels(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [n for n in names if n not in LABELS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown class {bad[0] if bad else text!r} (known: {', '.join(LABELS)})")
    return names


def _print_summary(summary: dict[str, Any]) -> None:
    print("\n".join(totals_lines(summary)))


def cmd_build(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, overrides={"seconds_per_class": args.seconds_per_class,
                                              "seed": args.seed})
    result = build_corpus(args.out, cfg, labels=args.labels, progress=not args.quiet)
    print(f"{args.out}: built {result['built_files']} files, skipped "
          f"{result['skipped_files']} already present, in {result['build_s']} s")
    _print_summary(result)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    items = load_manifest(args.out)
    if not items:
        raise UserError(f"{args.out}: the corpus manifest is empty")
    _print_summary(summarize(items))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``corpus build`` and ``corpus info`` to the top-level parser."""
    corpus = sub.add_parser(
        "corpus", help="build and inspect the training corpus",
        description="The labelled training corpus: announcements, ringback, music and "
        "silence cut from Debian packages' audio (and Festival voices), sent through a "
        "simulated telephone channel, with a provenance manifest.")
    csub = corpus.add_subparsers(dest="corpus_command", metavar="ACTION")
    csub.required = True
    p = csub.add_parser(
        "build", help="build (or resume) the corpus from Debian packages' audio",
        description="Build the corpus, or complete an interrupted build: files already "
        "listed in the manifest are kept, so a rerun yields what an uninterrupted build "
        "would have.")
    p.add_argument("--out", type=Path, default=default_out(), help="corpus directory")
    p.add_argument("--config", help="corpus YAML (default: config/corpus.yaml)")
    p.add_argument("--seconds-per-class", type=float, help="target seconds of audio per class")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--labels", type=_labels, default=list(LABELS),
                   help="comma-separated classes to build (default: all)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_build)
    p = csub.add_parser(
        "info", help="print the corpus totals per class and package",
        description="Print a built corpus's totals: seconds and files per class, source "
        "seconds per Debian package, files per codec and seconds per voice.")
    p.add_argument("--out", type=Path, default=default_out(), help="corpus directory")
    p.set_defaults(func=cmd_info)
