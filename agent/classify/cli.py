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
from agent.text_table import format_table

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
                   help="jsonl: one JSON object per file as each is done; table (default): "
                   "aligned columns once all are done, per-second labels as runs")
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


#: Runs of the per-second strip shown in the table; the rest are counted ("+N runs").
MAX_RUNS = 12
TABLE_HEADER = ("file", "duration", "per second", "class decisions", "inferred", "because")


def second_runs(seconds: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    """The per-second labels as runs ``(label, start_s, end_s)``, end exclusive.

    Examples
    --------
    >>> second_runs([{"t": 0, "label": "ringback"}, {"t": 1, "label": "ringback"},
    ...              {"t": 2, "label": "silence"}])
    [('ringback', 0, 2), ('silence', 2, 3)]
    """
    runs: list[tuple[str, int, int]] = []
    for s in seconds:
        t, label = int(s["t"]), str(s["label"])
        if runs and runs[-1][0] == label and runs[-1][2] == t:
            runs[-1] = (label, runs[-1][1], t + 1)
        else:
            runs.append((label, t, t + 1))
    return runs


def runs_text(seconds: list[dict[str, Any]], *, max_runs: int = MAX_RUNS) -> str:
    """``ringback 0-20s, announcement 20-32s``: the strip a telecom engineer reads."""
    runs = second_runs(seconds)
    shown = runs if len(runs) <= max_runs else runs[:max_runs - 1]
    text = ", ".join(f"{label} {a}-{b}s" for label, a, b in shown) or "-"
    if len(shown) < len(runs):
        text += f", +{len(runs) - len(shown)} runs (--format jsonl)"
    return text


def table_row(path: str, record: dict[str, Any]) -> list[str]:
    """One file's cells under :data:`TABLE_HEADER`.

    ``because`` is what drove the inferred code (a busy tone, a library entry, the
    class), so a busy tone that the classifier calls ringback does not read as a
    contradiction of its 486.
    """
    decisions = ", ".join(f"{d['label']}@{d['at_s']:g}s" for d in record["decisions"]) or "-"
    inf = record["inferred"]
    code = f"{inf['sip_code']} {inf['reason']}" if inf else "-"
    because = (inf.get("basis") or inf["source"]) if inf else "-"
    return [path, f"{record['duration_s']:.1f}s", runs_text(record["seconds"]), decisions,
            code, because]


def print_table(rows: list[list[str]]) -> None:
    """The rows under :data:`TABLE_HEADER`, columns aligned, long cells wrapped."""
    for line in format_table(TABLE_HEADER, rows, wrap={2: 40, 3: 30, 4: 32, 5: 24}, right=[1]):
        print(line)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from agent.analysis import AnalysisComponents, CallAnalyzer
    from agent.settings import load_agent_config

    cfg = load_agent_config(args.config)
    if args.no_library:
        cfg = replace(cfg, fingerprint=replace(cfg.fingerprint, enabled=False))
    components = AnalysisComponents.load(cfg)
    failed = 0
    rows: list[list[str]] = []
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
            rows.append(table_row(path, record))
    if rows:
        print_table(rows)
    return 1 if failed else 0
