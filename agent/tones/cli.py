"""``early-media-agent tones``: list the tone plans, detect tones in recordings."""

from __future__ import annotations

import argparse
import json
import sys

from agent.audio import SAMPLE_RATE
from agent.errors import UserError
from agent.tones.config import ToneConfig
from agent.tones.plan import KINDS, CountryPlan, ToneSpec, country_code, load_tone_plans

CHUNK = SAMPLE_RATE // 50  # 20 ms, as RTP delivers it


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tones", help="call-progress tone plans and tone detection",
                       description="List the tone plans or detect ringback, busy, congestion, "
                       "SIT and fax tones in recordings.")
    tsub = p.add_subparsers(dest="tones_command", metavar="ACTION")
    tsub.required = True
    lp = tsub.add_parser("list", help="countries and their tones",
                         description="Print each country's ringback, busy, congestion and "
                         "SIT tones from the tone plans: frequencies and cadences.")
    lp.add_argument("--plans", default=None, help="tone-plan YAML (default config/tone_plans.yaml)")
    lp.add_argument("--country", action="append", default=None, metavar="CC",
                    help="only these countries (repeatable)")
    lp.set_defaults(func=run_list)
    dp = tsub.add_parser("detect", help="detect tones in audio files, one JSON line per event",
                         description="Run the live agent's DSP tone detectors over audio "
                         "files, 20 ms at a time as RTP would deliver it; print one JSON "
                         "line per tone event (kind, start, detection time, country).")
    dp.add_argument("paths", nargs="+", metavar="FILE", help="audio files (any format/rate)")
    dp.add_argument("--country", action="append", default=None, metavar="CC",
                    help="match only this country's cadences (repeatable; default: all)")
    dp.add_argument("--plans", default=None, help="tone-plan YAML (default config/tone_plans.yaml)")
    dp.set_defaults(func=run_detect)


def _describe(spec: ToneSpec) -> str:
    parts = []
    for step in spec.steps:
        if not step.is_tone:
            freq = "0"
        elif step.am_hz is not None:
            freq = f"{step.freqs[0]:g}*{step.am_hz:g}"
        else:
            freq = "+".join(f"{f:g}" for f in step.freqs)
        parts.append(f"{freq}/{step.ms}" if step.ms else freq)
    text = ",".join(parts)
    return f"[{text}]" if spec.repeat else text


def _select(plans: dict[str, CountryPlan], countries: list[str] | None) -> list[CountryPlan]:
    if not countries:
        return list(plans.values())
    codes = [country_code(cc, plans) for cc in countries]
    missing = [cc for cc, code in zip(countries, codes, strict=True) if code not in plans]
    if missing:
        raise UserError(f"--country {missing[0]}: no such country in the tone plans")
    return [plans[code] for code in codes]


def run_list(args: argparse.Namespace) -> int:
    plans = load_tone_plans(args.plans)
    for plan in _select(plans, args.country):
        print(f"{plan.cc:<7} {plan.name}")
        for kind in (*KINDS, "info"):
            for spec in plan.specs(kind):
                print(f"    {kind:<11} {_describe(spec):<48} {spec.source}")
    return 0


def run_detect(args: argparse.Namespace) -> int:
    from agent.audio.io import load_audio
    from agent.tones.detect import ToneDetector

    plans = load_tone_plans(args.plans)
    countries = [p.cc for p in _select(plans, args.country)] if args.country else []
    detector = ToneDetector(plans, config=ToneConfig(countries=countries))
    failed = 0
    for path in args.paths:
        try:
            samples = load_audio(path)
        except UserError as exc:
            # One bad file must not stop the others; it is reported and counted.
            print(f"early-media-agent: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        detector.reset()
        for start in range(0, samples.size, CHUNK):
            for event in detector.push(samples[start : start + CHUNK]):
                print(json.dumps({"file": path, **event.as_json()}), flush=True)
    return 1 if failed else 0
