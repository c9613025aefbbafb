"""Build the corpus on disk: clips → telephone channel → WAV files + provenance manifest.

The build is resumable: clips are generated deterministically from the seed, each file's
channel draws from its own generator seeded by (seed, class, index), and a file counts
as done once its manifest line is written. A rerun replays the clips and skips the ids
already listed, producing exactly what an uninterrupted build would have.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from agent.audio.io import write_wav
from agent.corpus.channel import require_tool, telephone_channel
from agent.corpus.config import CorpusConfig
from agent.corpus.festival import renders_run
from agent.corpus.manifest import (
    MANIFEST,
    CorpusItem,
    append_item,
    load_manifest,
    rewrite_manifest,
)
from agent.corpus.progress import REFERENCE, BuildEstimate, format_duration
from agent.corpus.sources import GENERATORS
from agent.errors import UserError
from agent.labels import LABEL_INDEX, LABELS

BUILD_INFO = "build.json"
SUMMARY = "summary.json"
README = "README"


# Settings that only add files after the existing ones: a corpus built with them unset
# (or empty) is completed, not refused.
_ADDITIVE = ("more_music", "more_music_seconds")
# Settings that shape one class only, with the value a record without them was built
# with: when only they changed, that class is rebuilt and the others are kept.
# A record from before the voice settings existed was spoken by three prompt voices only:
# no value compares equal to that, so its announcements are rebuilt.
_CLASS_SCOPED: dict[str, tuple[str, Any]] = {
    "prompt_exclude": ("announcement", []),
    **{key: ("announcement", None) for key in (
        "human_voices", "tts_voices", "holdout_voices", "voice_min_s", "tts_stretch",
        "tts_pitch_cents")},
}


def _check_build_info(out: Path, cfg: CorpusConfig) -> set[str]:
    """Refuse to mix files of two different seeds or channel settings in one corpus.

    A corpus recorded without (or with empty) :data:`_ADDITIVE` settings is accepted and
    its record updated: they only append files. Returns the classes whose
    :data:`_CLASS_SCOPED` settings changed, to be rebuilt; the record is updated by
    :func:`_record_build_info` once they are dropped.
    """
    path = out / BUILD_INFO
    current = _build_record(cfg)
    if not path.is_file():
        return set()
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise UserError(f"{path}: corrupt build record") from None
    for key, (_, unset) in _CLASS_SCOPED.items():
        previous.setdefault(key, unset)
    if previous == current:
        return set()
    loose = set(_ADDITIVE) | set(_CLASS_SCOPED)
    same_base = all(previous.get(k) == v for k, v in current.items() if k not in loose)
    same_added = all(previous.get(k) == current[k] for k in _ADDITIVE) or (
        not previous.get("more_music") or not previous.get("more_music_seconds"))
    if not (same_base and same_added and set(previous) <= set(current)):
        raise UserError(f"{out}: was built with other settings ({path}); "
                        "use another --out or delete it")
    return {label for key, (label, _) in _CLASS_SCOPED.items()
            if previous.get(key) != current[key]}


def _build_record(cfg: CorpusConfig) -> dict[str, Any]:
    return json.loads(json.dumps(
        {k: v for k, v in asdict(cfg).items() if k != "seconds_per_class"}))


def _record_build_info(out: Path, cfg: CorpusConfig) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / BUILD_INFO).write_text(json.dumps(_build_record(cfg), indent=2, sort_keys=True)
                                  + "\n", encoding="utf-8")


def _drop_classes(out: Path, labels: set[str]) -> None:
    """Remove the files of ``labels`` and their manifest lines (the manifest first, so an
    interrupted drop leaves no line without its file)."""
    items = load_manifest(out) if (out / MANIFEST).is_file() else []
    rewrite_manifest(out, [it for it in items if it.label not in labels])
    for it in items:
        if it.label in labels:
            (out / it.path).unlink(missing_ok=True)


def _finished(items: Sequence[CorpusItem], label: str, seconds: float) -> int:
    """Files of ``label`` when they already make a whole class, else 0.

    The generators number clips from 0 and stop once ``seconds`` are reached, so files
    ``0..k-1`` with enough audio are exactly what a replay would yield.
    """
    mine = [it for it in items if it.label == label]
    wanted = {f"{label}-{i:05d}" for i in range(len(mine))}
    if {it.id for it in mine} != wanted or sum(it.duration_s for it in mine) < seconds:
        return 0
    return len(mine)


def summarize(items: Sequence[CorpusItem]) -> dict[str, Any]:
    """Totals per class, per package, per codec and per group count, in seconds and files."""
    per_class: dict[str, dict[str, Any]] = {}
    per_package: dict[str, float] = {}
    per_codec: Counter[str] = Counter()
    groups: dict[str, set[str]] = {}
    per_voice: dict[str, dict[str, float]] = {}
    vocal: set[str] = set()
    for it in items:
        voices = per_voice.setdefault(it.label, {})
        voices[it.voice] = voices.get(it.voice, 0.0) + it.duration_s
        if it.vocals:
            vocal.add(it.voice)
        c = per_class.setdefault(it.label, {"files": 0, "seconds": 0.0})
        c["files"] += 1
        c["seconds"] = round(c["seconds"] + it.duration_s, 3)
        groups.setdefault(it.label, set()).add(it.group)
        for s in it.sources:
            per_package[s.package] = per_package.get(s.package, 0.0) + s.duration_s
        per_codec[str(it.transforms.get("channel", {}).get("codec", "?"))] += 1
    for label, c in per_class.items():
        c["groups"] = len(groups[label])
    return {
        "files": len(items),
        "seconds": round(sum(it.duration_s for it in items), 3),
        "per_class": {k: per_class[k] for k in LABELS if k in per_class},
        "per_package_source_seconds": {k: round(v, 3) for k, v in sorted(per_package.items())},
        "per_codec_files": dict(sorted(per_codec.items())),
        "per_voice_seconds": {
            label: {v: round(sec, 3) for v, sec in sorted(per_voice[label].items())}
            for label in LABELS if label in per_voice},
        "vocal_music_sources": sorted(vocal),
    }


def totals_lines(summary: dict[str, Any]) -> list[str]:
    """Human-readable totals per class, per package and per codec."""
    lines = [f"{summary['files']} files, {summary['seconds'] / 3600:.2f} h"]
    for label, c in summary["per_class"].items():
        lines.append(f"  {label:<13} {c['files']:>5} files {c['seconds']:>9.1f} s "
                     f"{c['groups']:>5} groups")
    lines.append("source seconds per package (licenses: /usr/share/doc/<package>/copyright):")
    for pkg, sec in summary["per_package_source_seconds"].items():
        lines.append(f"  {pkg:<30} {sec:>9.1f} s")
    lines.append("files per codec: " + ", ".join(
        f"{k} {v}" for k, v in summary["per_codec_files"].items()))
    vocal = set(summary.get("vocal_music_sources", []))
    for label in ("announcement", "music"):
        voices = summary.get("per_voice_seconds", {}).get(label, {})
        if voices:
            lines.append(f"{label} seconds per {'voice' if label == 'announcement' else 'source'}:")
            lines += [f"  {v:<50} {sec:>8.1f} s{'  (vocals)' if v in vocal else ''}"
                      for v, sec in voices.items()]
    return lines


def readme_text(summary: dict[str, Any]) -> str:
    """The corpus directory's README: what it is, its totals, where each license is."""
    lines = [
        "Early-media training corpus, built by `early-media-agent corpus build`.",
        "",
        "audio/<label>/<id>.wav  8 kHz mono 16-bit, after the simulated telephone channel",
        "manifest.jsonl          one JSON object per file: id, label, group (files sharing",
        "                        source audio share it), path, duration_s, sources (package,",
        "                        path, start_s, duration_s), transforms (mix, channel),",
        "                        voice (<package>/<speaker> for speech; the package for",
        "                        music), engine and vocals (music with singing)",
        "build.json              the settings it was built with; summary.json the totals",
        "",
        *totals_lines(summary),
    ]
    lines += ["", "agent.tones: ringback synthesised from the project's tone-plan table;",
              "synthetic: silence and line noise generated by the builder.", ""]
    return "\n".join(lines)


def build_corpus(
    out: str | Path,
    cfg: CorpusConfig,
    *,
    labels: Sequence[str] = LABELS,
    progress: bool = True,
) -> dict[str, Any]:
    """Build (or complete) the corpus in ``out``.

    Parameters
    ----------
    out : str or Path
        Corpus directory; gets ``audio/<label>/<id>.wav``, ``manifest.jsonl``,
        ``build.json`` (settings), ``summary.json`` (totals) and ``README``.
    cfg : CorpusConfig
        Sizes, sources and channel settings.
    labels : sequence of str
        Classes to build (all four by default).
    progress : bool
        Show a tqdm bar (seconds of audio) on stderr, with the time left as
        :class:`~agent.corpus.progress.BuildEstimate` reckons it.

    Returns
    -------
    dict
        The summary written to ``summary.json``, plus ``built_files``, ``skipped_files``
        and ``build_s`` for this run.

    Raises
    ------
    UserError
        A missing Debian package or tool (naming what to install), an unknown label, a
        corrupt manifest, or a directory built with other settings (settings that
        shape one class only, like ``prompt_exclude``, rebuild that class instead).
    """
    out = Path(out)
    unknown = [lb for lb in labels if lb not in LABELS]
    if unknown:
        raise UserError(f"unknown class {unknown[0]!r} (known: {', '.join(LABELS)})")
    require_tool("sox")
    require_tool("ffmpeg")
    stale = _check_build_info(out, cfg)
    if stale:
        print(f"{out}: rebuilding {', '.join(sorted(stale))} (its settings changed; the "
              "other classes are kept)", file=sys.stderr)
        _drop_classes(out, stale)
    _record_build_info(out, cfg)
    existing = load_manifest(out) if (out / MANIFEST).is_file() else []
    done = {it.id for it in existing}
    started = time.monotonic()
    built = skipped = 0
    planned = {lb: cfg.class_seconds(lb) for lb in labels}
    estimate = BuildEstimate(planned, setup={lb: REFERENCE.setup_for(lb, cfg) for lb in labels})
    # tqdm's own rate would count skipped files and mix cheap and dear classes (the time
    # left swung from 11 s to 26 min): the postfix shows the estimate's instead.
    total = round(sum(planned.values()))
    bar = tqdm(total=total, unit="s", file=sys.stderr, disable=not progress, desc="corpus",
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} s of audio "
                          "[{elapsed}{postfix}]")
    progressed = 0.0

    def advance(seconds: float) -> None:
        # Whole seconds on the bar, summed before rounding: a class's last file may end
        # a little past its quota, the bar not past its total.
        nonlocal progressed
        progressed += seconds
        bar.set_postfix_str(f"{format_duration(estimate.remaining_s())} left", refresh=False)
        bar.update(min(total, round(progressed)) - bar.n)

    try:
        for label in labels:
            li = LABEL_INDEX[label]
            finished = _finished(existing, label, cfg.class_seconds(label))
            if finished:
                # Replaying the clips would only re-read the sources to skip every one.
                skipped += finished
                estimate.class_finished(label)
                advance(cfg.class_seconds(label))
                continue
            clips = GENERATORS[label](cfg, np.random.default_rng([cfg.seed, li]))
            renders = renders_run()
            try:
                for clip in clips:
                    if clip.id in done:
                        skipped += 1
                        estimate.skipped(label, clip.duration_s)
                        renders = renders_run()
                        advance(clip.duration_s)
                        continue
                    rng = np.random.default_rng([cfg.seed, li, clip.index])
                    audio, channel = telephone_channel(
                        clip.samples, rng=rng, config=cfg, keep_level=clip.keep_level
                    )
                    rel = f"audio/{label}/{clip.id}.wav"
                    tmp = out / f"audio/{label}/{clip.id}.part.wav"
                    write_wav(tmp, audio)
                    os.replace(tmp, out / rel)
                    append_item(out, CorpusItem(
                        id=clip.id, label=label, group=clip.group, path=rel,
                        duration_s=round(clip.duration_s, 4), sources=tuple(clip.sources),
                        transforms={"mix": clip.mix, "channel": channel},
                        voice=clip.voice, engine=clip.engine, vocals=clip.vocals,
                    ))
                    built += 1
                    estimate.built(label, clip.duration_s, renders=renders_run() - renders)
                    renders = renders_run()
                    advance(clip.duration_s)
                estimate.class_finished(label)
            except ImportError as exc:
                raise UserError(f"cannot build {label}: {exc}") from None
    finally:
        bar.close()
    summary = summarize(load_manifest(out))
    (out / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / README).write_text(readme_text(summary), encoding="utf-8")
    return {**summary, "built_files": built, "skipped_files": skipped,
            "build_s": round(time.monotonic() - started, 1)}
