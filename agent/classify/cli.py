"""``early-media-agent classify``: classify recorded early media, second by second.

Each file goes through the same :class:`~agent.analysis.CallAnalyzer` the live agent
feeds, one second at a time, so ``decision`` and ``inferred`` are what the agent would
have acted on had the file been a call's early media. ``decisions`` is the decision
history: every class decision in order, ``at_s`` the seconds of audio when it was made
(``decision`` is the last of them).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent.audio import SAMPLE_RATE
from agent.audio.io import load_audio
from agent.errors import UserError
from agent.labels import LABELS

MIN_SECONDS = 1.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classify",
        help="classify early-media recordings second by second",
        description="Classify WAV/OGG/MP3 files (any rate, mono or stereo) into "
        f"{', '.join(LABELS)} per second, with the streaming decision and the inferred "
        "SIP code.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files")
    p.add_argument("--format", choices=("jsonl", "table"), default="table",
                   help="jsonl: one JSON object per file; table: readable (default)")
    p.add_argument("--config", default=None,
                   help="agent config (default config/agent.yaml): model, rule, tones, library")
    p.add_argument("--no-library", action="store_true",
                   help="skip the announcement fingerprint lookup")
    p.set_defaults(func=run)


def classify_samples(analyzer: Any, samples: Any) -> dict[str, Any]:
    """Feed a whole recording through ``analyzer`` a second at a time; return the JSON record."""
    for start in range(0, samples.size, SAMPLE_RATE):
        analyzer.push(samples[start:start + SAMPLE_RATE])
    inferred = analyzer.conclude()
    decision = analyzer.class_decision
    return {
        "duration_s": round(samples.size / SAMPLE_RATE, 3),
        "seconds": [s.as_json() for s in analyzer.seconds],
        "decision": decision.as_json() if decision is not None else None,
        "decisions": [d.as_json() for d in analyzer.decisions],
        "inferred": inferred.as_json() if inferred is not None else None,
    }


def _table_line(path: str, record: dict[str, Any]) -> str:
    letters = "".join(s["label"][0].upper() for s in record["seconds"])
    # The history, oldest first: "ringback@2s>announcement@21s".
    dec = ">".join(f"{d['label']}@{d['at_s']:g}s" for d in record["decisions"]) or "-"
    inf = record["inferred"]
    code = f"{inf['sip_code']} {inf['reason']} ({inf['source']})" if inf else "-"
    return f"{path}\t{record['duration_s']:.1f}s\t{letters}\t{dec}\t{code}"


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from agent.analysis import AnalysisComponents, CallAnalyzer
    from agent.settings import load_agent_config

    cfg = load_agent_config(args.config)
    if args.no_library:
        cfg = replace(cfg, fingerprint=replace(cfg.fingerprint, enabled=False))
    components = AnalysisComponents.load(cfg)
    failed = 0
    if args.format == "table":
        print("file\tduration\tper-second (A/R/M/S)\tdecisions\tinferred")
    for path in args.paths:
        try:
            samples = load_audio(path)
            if samples.size < MIN_SECONDS * SAMPLE_RATE:
                raise UserError(
                    f"{path}: too short ({samples.size / SAMPLE_RATE:.2f} s); "
                    f"classification needs at least {MIN_SECONDS:g} s of audio")
            record = {"file": path,
                      **classify_samples(CallAnalyzer(components, call_id=path), samples)}
        except UserError as exc:
            failed += 1
            print(f"early-media-agent: error: {exc}", file=sys.stderr)
            continue
        if args.format == "jsonl":
            print(json.dumps(record), flush=True)
        else:
            print(_table_line(path, record), flush=True)
    return 1 if failed else 0
