"""Benchmark of the tone detectors: latency per kind, failures, false detections, speed.

Every cadenced ringback, busy and congestion variant and every SIT of every country in
config/tone_plans.yaml is rendered at -10, -22.5 and -35 dBm0 from a random point of its
cadence after a random lead-in, with white noise 20 dB below the tone, and fed in 20-ms
chunks to a detector restricted to that country (the agent knows the route's country);
``--all-countries`` also runs the unrestricted detector and reports how often the kind is
still right. North-American SIT codes and fax CNG/CED are added. Real speech (Asterisk
prompts) and music (Asterisk MOH, Wesnoth OGG) measure false detections per second.

Latency is measured from the first "on" part of the tone with at least 100 ms left
(before it nothing can be known); ``max_from_start`` is measured from the stream's first
sample of the tone instead, i.e. includes the silent or cut part the stream began in.
Limits: busy/congestion 1.5 s, SIT 1.2 s, ringback max(3 s, two cadence periods).

A failed case is also checked against the plan itself (agent.tones.separation): when, from
that phase of its cadence, the tone stays consistent with a tone of another kind of the
same plan (or of any plan, for the unrestricted detector) for the whole limit, no
detector can decide it in time without guessing. Such cases are counted in ``indist``
and marked in the failure list, not hidden: they are still wrong or late. The list also
notes failures where, within the limit, only one burst (perhaps cut by the stream start)
is heard before a pause that outlasts the limit (no cadence to observe). Of the other
failures, ``pkt`` counts those whose separating moment reaches the detector only in a
packet (``--chunk`` samples) that ends after the limit: no detector fed such packets can
decide them in time either.

``--sweep CC:KIND --phases FROM TO`` runs one tone from a grid of cadence phases instead
(Suriname busy within a few ms of its separating moment, say); ``--only-false
--false-countries CC ...`` measures false detections of a detector restricted to those
countries, as the agent runs it. ``--onset-trap N`` plays each busy and congestion burst
and its pause, then N real speech and N real music onsets where the next burst would
start, and counts busy or congestion that only the onset decided (a carrier's ringback
burst followed by an announcement looks like that).

Run: ``nice -n 10 python bench/tones.py`` (about a minute or two on one core).
"""

from __future__ import annotations

import argparse
import glob
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.audio.io import load_audio
from agent.errors import UserError
from agent.tones import dbm0_to_dbfs
from agent.tones.config import ToneConfig
from agent.tones.detect import ToneDetector
from agent.tones.plan import ToneSpec, ToneStep, country_code, load_tone_plans
from agent.tones.separation import Part, heard_parts, separation_time
from agent.tones.synth import NA_SIT, na_sit_spec, render
from agent.tones.templates import _cycle, build_templates, is_busy_alike

SR = 8000
CHUNK = 160
LIMITS = {"busy": 1.5, "congestion": 1.5, "sit": 1.2, "fax_cng": 1.5, "fax_ced": 1.5}
SPEECH_GLOBS = ["/usr/share/asterisk/sounds/en_US_f_Allison/*.wav",
                "/usr/share/asterisk/sounds/es_MX_f_Allison/*.wav",
                "/usr/share/asterisk/sounds/fr_CA_f_June/*.wav"]
MUSIC_GLOBS = ["/usr/share/asterisk/moh/*.wav",
               "/usr/share/games/wesnoth/1.16/data/core/music/*.ogg"]


@dataclass
class Case:
    cc: str | None
    kind: str
    spec: ToneSpec
    expect_code: str | None = None


@dataclass
class Result:
    case: Case
    dbm0: float
    ok: bool
    right: bool
    latency: float | None
    from_start: float | None
    got: str
    phase: float
    lead: float
    # Failed cases: how long the plan keeps the tone like one of another kind, and which.
    separation: float = 0.0
    rival: str = ""
    # Failed cases: latency of the first packet holding a sample past the separating moment.
    first_packet: float = 0.0

    @property
    def indistinct(self) -> bool:
        """Failed, and the plan keeps the tone like another kind for the whole limit."""
        return not self.ok and self.separation >= limit_for(self.case)

    @property
    def packet_bound(self) -> bool:
        """Failed, separable by the plan within the limit, but the first packet that
        carries audio past the separating moment arrives after the limit."""
        return (not self.ok and not self.indistinct
                and self.first_packet > limit_for(self.case))


def limit_for(case: Case) -> float:
    if case.kind == "ringback":
        return max(3.0, 2.0 * case.spec.period_ms / 1000.0)
    return LIMITS[case.kind]


def first_onset(spec: ToneSpec, phase_s: float, min_on_s: float = 0.1) -> float:
    """Seconds from the start of the render to the first "on" step with at least
    ``min_on_s`` of it left (a shorter fragment cut by the stream start is no evidence)."""
    t = 0.0
    ends = np.cumsum([s.ms for s in spec.steps]) / 1000.0
    period = float(ends[-1]) if spec.repeat else np.inf
    pos = phase_s % period if spec.repeat else phase_s
    i = int(np.searchsorted(ends, pos, side="right"))
    while True:
        step = spec.steps[i % len(spec.steps)]
        end = ends[i % len(spec.steps)] + (i // len(spec.steps)) * period
        if step.is_tone and end - pos >= min_on_s:
            return t
        t += end - pos
        pos = end
        i += 1


def cases(plans: dict, countries: list[str]) -> list[Case]:
    out = []
    for cc in countries:
        plan = plans[cc]
        busy_cycles = [c for c in (_cycle(s) for s in plan.busy) if c is not None]
        for kind in ("ringback", "busy", "congestion"):
            for spec in plan.specs(kind):
                if not spec.has_cadence:
                    continue
                # The plan's congestion identical to its busy tone is reported as busy.
                alike = kind == "congestion" and is_busy_alike(_cycle(spec), busy_cycles)
                k = "busy" if alike else kind
                out.append(Case(cc, k, spec))
        for spec in plan.sit:
            out.append(Case(cc, "sit", spec, "ITU"))
    return out


def extra_cases() -> list[Case]:
    out = [Case(None, "sit", na_sit_spec(code), code.split("-")[0]) for code in NA_SIT]
    cng = ToneSpec((ToneStep((1100.0,), None, 500), ToneStep((), None, 3000)), "T.30")
    ced = ToneSpec((ToneStep((2100.0,), None, 3300), ToneStep((), None, 5000)), "V.25", False)
    out += [Case(None, "fax_cng", cng), Case(None, "fax_ced", ced)]
    return out


def feed(det: ToneDetector, x: np.ndarray) -> list:
    """Push ``x`` through ``det`` in ``CHUNK``-sample packets, as RTP delivers it; the
    events in order."""
    events = []
    for i in range(0, len(x), CHUNK):
        events += det.push(x[i : i + CHUNK])
    return events


def run_case(case: Case, dbm0: float, rng: np.random.Generator, *, countries: list[str],
             plans: dict, phase: float | None = None) -> tuple[Result, float, float]:
    """Render ``case`` at ``dbm0`` from a random point of its cadence (or from ``phase``,
    seconds) after a random lead-in, and run a detector on it."""
    level = dbm0_to_dbfs(dbm0)
    repeat = case.spec.repeat
    if phase is None:
        phase = float(rng.uniform(0, case.spec.period_ms / 1000.0)) if repeat else 0.0
    lead = float(rng.uniform(0.5, 1.5))
    dur = max(limit_for(case), 2 * case.spec.period_ms / 1000.0) + 2.5
    tone = render(case.spec, duration_s=dur, level_dbfs=level, phase_s=phase)
    x = np.concatenate([np.zeros(int(lead * SR), np.float32), tone])
    rms = 10 ** (level / 20) / np.sqrt(2)
    x = x + (rng.standard_normal(len(x)) * rms * 0.1).astype(np.float32)
    det = ToneDetector(plans, config=ToneConfig(countries=countries))
    t0 = time.process_time()
    events = feed(det, x)
    elapsed = time.process_time() - t0
    onset = lead + (first_onset(case.spec, phase) if repeat else 0.0)
    first = events[0] if events else None
    ok = first is not None and first.kind == case.kind
    if ok and case.expect_code is not None:
        ok = first.sit_code == case.expect_code
    right = ok
    lat = first.detected_s - onset if first else None
    if lat is not None and lat > limit_for(case):
        ok = False
    got = "none" if first is None else f"{first.kind}/{first.sit_code or first.country}@{lat:.2f}"
    from_start = None if first is None else first.detected_s - lead
    res = Result(case, dbm0, ok, right, lat, from_start, got, phase, lead)
    if not ok and repeat:
        res.separation, res.rival = separation(case, phase, plans, countries)
        if np.isfinite(res.separation):
            # Pushes end at multiples of CHUNK samples; the one holding the sample after
            # the separating moment is the earliest any detector can decide in.
            past = int(np.floor((onset + res.separation) * SR)) + 1
            res.first_packet = int(np.ceil((past + 1) / CHUNK)) * CHUNK / SR - onset
    return res, elapsed, len(x) / SR


def separation(case: Case, phase: float, plans: dict,
               countries: list[str]) -> tuple[float, str]:
    """Seconds the plan keeps this case's tone consistent with a tone of another kind (of
    the detector's countries), and that kind; tolerances as the detector's."""
    config = ToneConfig(countries=countries)
    heard = heard_parts(case.spec, phase_s=phase)
    worst, rival = 0.0, ""
    for t in build_templates(plans, countries, fax=False):
        if t.kind == case.kind:
            continue
        parts = [Part(on, ms, comps) for on, ms, comps in zip(t.on, t.ms, t.comps, strict=True)]
        sep = separation_time(heard, parts, config=config)
        if sep > worst:
            worst, rival = sep, f"{t.kind}/{t.countries[0] if t.countries else '-'}"
    return worst, rival


def false_rate(paths: list[str], plans: dict, max_seconds: float,
               countries: list[str]) -> tuple[int, int, dict, float, float]:
    seconds = 0
    hit_seconds = 0
    kinds: dict[str, int] = {}
    spent = 0.0
    audio = 0.0
    for p in paths:
        if seconds >= max_seconds:
            break
        try:
            x = load_audio(p)
        except UserError as exc:
            print(f"skip {exc}", file=sys.stderr)
            continue
        det = ToneDetector(plans, config=ToneConfig(countries=countries))
        t0 = time.process_time()
        events = feed(det, x)
        spent += time.process_time() - t0
        hits = {int(e.detected_s) for e in events}
        for e in events:
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
        audio += len(x) / SR
        n = int(np.ceil(len(x) / SR))
        seconds += n
        hit_seconds += len(hits)
    return hit_seconds, seconds, kinds, spent, audio


def summarize(results: list[Result], title: str, max_failures: int) -> None:
    print(f"\n== {title}")
    print("wrong: kind (or SIT code) wrong or nothing; late: right kind after the limit")
    print("indist: of the wrong and late, those the plan itself keeps like another kind for "
          "the whole limit")
    print(f"pkt: of the others, those whose separating moment reaches the detector in a packet "
          f"after the limit ({CHUNK}-sample packets)")
    print(f"{'kind':<11}{'cases':>6}{'wrong':>6}{'late':>6}{'indist':>7}{'pkt':>5}{'med_s':>8}"
          f"{'p95_s':>8}{'max_s':>8}{'max_from_start':>16}")
    for kind in ("ringback", "busy", "congestion", "sit", "fax_cng", "fax_ced"):
        rs = [r for r in results if r.case.kind == kind]
        if not rs:
            continue
        # Latency statistics over the cases whose kind (and SIT code) came out right.
        right = [r for r in rs if r.right]
        lats = sorted(r.latency for r in right if r.latency is not None)
        fs = [r.from_start for r in right if r.from_start is not None]
        wrong = len(rs) - len(right)
        late = sum(r.right and not r.ok for r in rs)
        med = f"{statistics.median(lats):.2f}" if lats else "-"
        p95 = f"{lats[int(0.95 * (len(lats) - 1))]:.2f}" if lats else "-"
        mx = f"{max(lats):.2f}" if lats else "-"
        mfs = f"{max(fs):.2f}" if fs else "-"
        indist = sum(r.indistinct for r in rs)
        pkt = sum(r.packet_bound for r in rs)
        print(f"{kind:<11}{len(rs):>6}{wrong:>6}{late:>6}{indist:>7}{pkt:>5}{med:>8}{p95:>8}"
              f"{mx:>8}{mfs:>16}")
    failed = [r for r in results if not r.ok]
    for r in failed[:max_failures]:
        steps = ",".join(f"{'+'.join(f'{f:g}' for f in s.freqs) or 0}/{s.ms}"
                         for s in r.case.spec.steps)
        print(f"  FAIL {r.case.cc} {r.case.kind} [{r.case.spec.source}] {steps} "
              f"at {r.dbm0:g} dBm0 (phase {r.phase:.3f} s, lead {r.lead:.3f} s): got {r.got}"
              f"{plan_note(r)}")
    if len(failed) > max_failures:
        print(f"  ... {len(failed) - max_failures} more")


def plan_note(r: Result) -> str:
    """What the plan says about a failed case."""
    note = ""
    if r.case.spec.repeat:
        heard = heard_parts(r.case.spec, phase_s=r.phase)
        burst, pause = heard[0].ms / 1000.0, heard[1].ms / 1000.0
        if burst < limit_for(r.case) < burst + pause:
            # One burst (perhaps cut by the stream start) and no end to the pause after it.
            note = f"; within the limit only one {burst:.2f}-s burst and part of a pause"
    if not r.rival:
        return note
    if r.separation == float("inf"):
        return f"{note}; identical within tolerance to {r.rival}"
    what = "indistinguishable within the limit by the plan" if r.indistinct else "separable"
    if r.packet_bound:
        what += f" (its first packet past that comes at {r.first_packet:.3f} s)"
    return f"{note}; {what}: like {r.rival} for {r.separation:.3f} s"


def sweep(what: str, phases: list[float], step_ms: float, levels: list[float],
          rng: np.random.Generator, plans: dict) -> int:
    """Run one country's tone of one kind (``CC:KIND``) from every phase in ``phases``
    (from, to; seconds into its cadence) ``step_ms`` apart, and list the late or wrong.
    Returns the number of failures that the plan does not make impossible."""
    cc, _, kind = what.partition(":")
    if cc not in plans:
        raise UserError(f"--sweep: no country {cc!r} in the tone plans")
    chosen = [c for c in cases(plans, [cc]) if c.kind == kind and c.spec.repeat]
    if not chosen:
        raise UserError(f"--sweep: {cc} has no cadenced {kind!r} tone")
    if len(phases) != 2 or phases[1] < phases[0] or step_ms <= 0:
        raise UserError("--phases wants FROM TO (seconds, FROM <= TO), --phase-step-ms > 0")
    grid = np.arange(phases[0], phases[1] + 1e-9, step_ms / 1000.0)
    bad = 0
    for case in chosen:
        n, lats = 0, []
        for lv in levels:
            for ph in grid:
                r, _, _ = run_case(case, lv, rng, countries=[cc], plans=plans, phase=float(ph))
                n += 1
                if r.right and r.latency is not None:
                    lats.append(r.latency)
                if not r.ok:
                    bad += not (r.indistinct or r.packet_bound)
                    print(f"  FAIL {cc} {kind} [{case.spec.source}] at {lv:g} dBm0 phase "
                          f"{ph:.3f} s: got {r.got}{plan_note(r)}")
        worst = f"{max(lats):.2f}" if lats else "-"
        print(f"{cc} {kind} [{case.spec.source}]: {n} runs ({len(grid)} phases x "
              f"{len(levels)} levels), slowest right decision {worst} s")
    print(f"failures neither impossible by the plan nor bound by the packet size: {bad}")
    return bad


def onsets(paths: list[str], n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` one-second clips of real audio, each starting 10 ms before an onset: a 10-ms
    frame above -45 dBFS and 10 dB louder than any of the 100 ms before it."""
    paths = list(paths)
    rng.shuffle(paths)
    clips: list[np.ndarray] = []
    for p in paths:
        try:
            x = load_audio(p)
        except UserError:
            continue
        f = x[: len(x) // 80 * 80].reshape(-1, 80).astype(np.float64)
        lv = 10 * np.log10(np.mean(f**2, axis=1) + 1e-20)
        at = [i for i in range(10, len(lv) - 100) if lv[i] > max(lv[i - 10 : i].max() + 10, -45)]
        for i in at[::7][:3]:
            clips.append(x[(i - 1) * 80 : (i - 1) * 80 + SR].astype(np.float64))
            if len(clips) == n:
                return clips
    return clips


def onset_trap(plans: dict, countries: list[str], n_clips: int,
               rng: np.random.Generator) -> int:
    """Each busy and congestion burst of each country, its pause, and then real speech or
    music instead of the next burst, at random levels (noise 20 dB below the tone). Busy
    or congestion decided at or after that onset, where a control run whose pause goes on
    instead decides otherwise, was read from the voice or the note. Returns how many."""
    sets = {"speech": onsets(sorted(p for g in SPEECH_GLOBS for p in glob.glob(g)), n_clips, rng),
            "music": onsets(sorted(p for g in MUSIC_GLOBS for p in glob.glob(g)), n_clips, rng)}
    bad, runs, where = 0, 0, {}
    for case in cases(plans, countries):
        if case.kind not in ("busy", "congestion"):
            continue
        steps = case.spec.steps
        j = next(i for i, st in enumerate(steps) if st.is_tone)
        if steps[(j + 1) % len(steps)].is_tone:
            continue
        phase = sum(st.ms for st in steps[:j]) / 1000.0
        on_s, off_s = steps[j].ms / 1000.0, steps[(j + 1) % len(steps)].ms / 1000.0
        for name, clips in sets.items():
            for clip in clips:
                level = dbm0_to_dbfs(float(rng.uniform(-35, -10)))
                burst = render(case.spec, duration_s=on_s, level_dbfs=level, phase_s=phase)
                pause = np.zeros(int(off_s * float(rng.uniform(0.98, 1.02)) * SR))
                gain = 10 ** (dbm0_to_dbfs(float(rng.uniform(-35, -10))) / 20) / np.sqrt(2)
                voice = clip / (np.sqrt(np.mean(clip**2)) + 1e-12) * gain
                lead = np.zeros(int(rng.uniform(0.5, 0.7) * SR))
                x = np.concatenate([lead, burst, pause, voice])
                x += rng.standard_normal(len(x)) * 10 ** (level / 20) / np.sqrt(2) * 0.1
                onset = (len(x) - len(voice)) / SR
                # The control run hears the pause go on instead of the voice.
                control = x.copy()
                control[len(x) - len(voice) :] = x[: len(voice)]
                first = [feed(ToneDetector(plans, config=ToneConfig(countries=[case.cc])), y)
                         for y in (x, control)]
                runs += 1
                got, alone = (e[0] if e else None for e in first)
                if got is None or got.detected_s < onset:
                    continue
                # Busy or congestion that the pause alone does not give was read from the
                # voice or the note (a ringback decided after the onset is what the burst
                # and a pause prolonged by quiet audio may well be).
                read = got.kind in ("busy", "congestion") and (alone is None
                                                              or alone.kind != got.kind)
                bad += read
                key = (f"{case.cc} {case.kind} -> {got.kind} ({name}, "
                       f"{'read from the onset' if read else 'as from the pause alone'})")
                where[key] = where.get(key, 0) + 1
    print(f"onset trap ({len(sets['speech'])} speech and {len(sets['music'])} music onsets "
          f"after each busy/congestion burst and pause): {runs} runs; busy or congestion "
          f"read from the onset in {bad}")
    for key, n in sorted(where.items(), key=lambda kv: -kv[1]):
        print(f"  {key}: {n}")
    return bad


def main(argv: list[str] | None = None) -> int:
    global CHUNK
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", type=float, nargs="+", default=[-10.0, -22.5, -35.0])
    ap.add_argument("--countries", nargs="*", default=None)
    ap.add_argument("--all-countries", action="store_true",
                    help="also run the unrestricted detector (kind accuracy over all plans)")
    ap.add_argument("--max-speech-s", type=float, default=1800.0)
    ap.add_argument("--max-music-s", type=float, default=1800.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-failures", type=int, default=40, help="failed cases to list")
    ap.add_argument("--false-countries", nargs="*", default=[], metavar="CC",
                    help="countries of the detector run on speech and music (default: all)")
    ap.add_argument("--only-false", action="store_true",
                    help="skip the tone cases: only false detections on speech and music")
    ap.add_argument("--sweep", metavar="CC:KIND",
                    help="only run this country's tone of this kind over --phases")
    ap.add_argument("--phases", type=float, nargs=2, default=[0.0, 1.0], metavar=("FROM", "TO"),
                    help="--sweep: cadence phases to start from, seconds")
    ap.add_argument("--phase-step-ms", type=float, default=2.0, help="--sweep: phase step")
    ap.add_argument("--onset-trap", type=int, default=0, metavar="N",
                    help="only run each busy/congestion burst + pause followed by N speech "
                    "and N music onsets, and count tones decided from them")
    ap.add_argument("--chunk", type=int, default=CHUNK,
                    help="samples per push (160 = 20-ms RTP frames; 8000 = 1-s windows)")
    args = ap.parse_args(argv)
    CHUNK = args.chunk
    rng = np.random.default_rng(args.seed)
    plans = load_tone_plans()
    # ISO codes the plans spell otherwise (gb → uk), as the CLI takes them.
    if args.countries:
        args.countries = [country_code(cc, plans) for cc in args.countries]
    args.false_countries = [country_code(cc, plans) for cc in args.false_countries]
    for option, given in (("--countries", args.countries or []),
                          ("--false-countries", args.false_countries)):
        unknown = [cc for cc in given if cc not in plans]
        if unknown:
            print(f"error: {option}: no country {unknown[0]!r} in the tone plans",
                  file=sys.stderr)
            return 2
    if args.sweep:
        try:
            return 1 if sweep(args.sweep, args.phases, args.phase_step_ms, args.levels, rng,
                              plans) else 0
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.onset_trap:
        return 1 if onset_trap(plans, args.countries or list(plans), args.onset_trap, rng) else 0
    if not args.only_false:
        run_tones(args, rng, plans)
    speech = sorted(p for g in SPEECH_GLOBS for p in glob.glob(g))
    music = sorted(p for g in MUSIC_GLOBS for p in glob.glob(g))
    sets = (("speech", speech, args.max_speech_s), ("music", music, args.max_music_s))
    who = " ".join(args.false_countries) or "all countries"
    for name, paths, cap in sets:
        hit, secs, kinds, s, a = false_rate(paths, plans, cap, args.false_countries)
        rate = 100.0 * hit / secs if secs else 0.0
        us = 1e6 * s / a if a else 0.0
        print(f"\n{name} ({who}): {secs} s from {len(paths)} files, seconds with a detection "
              f"{hit} ({rate:.2f}%), by kind {kinds}, {us:.0f} us per second of audio")
    silence = np.zeros(60 * SR, np.float32)
    det = ToneDetector(plans)
    t0 = time.process_time()
    feed(det, silence)
    print(f"silence: {1e6 * (time.process_time() - t0) / 60:.0f} us per second of audio")
    return 0


def run_tones(args: argparse.Namespace, rng: np.random.Generator, plans: dict) -> None:
    """Every country's tones at every level, then (``--all-countries``) the unrestricted
    detector at -22.5 dBm0: print the tables."""
    ccs = args.countries or list(plans)
    all_cases = cases(plans, ccs) + extra_cases()
    results, spent, audio = [], 0.0, 0.0
    for case in all_cases:
        for lv in args.levels:
            r, s, a = run_case(case, lv, rng, countries=[case.cc] if case.cc else [], plans=plans)
            results.append(r)
            spent += s
            audio += a
    summarize(results, f"per-country detector: {len(ccs)} countries, levels {args.levels} dBm0, "
                       "SNR 20 dB, random phase", args.max_failures)
    print(f"tone audio: {audio:.0f} s, {1e6 * spent / audio:.0f} us per second of audio")
    if args.all_countries:
        res_all = []
        for case in all_cases:
            r, _, _ = run_case(case, -22.5, rng, countries=[], plans=plans)
            res_all.append(r)
        summarize(res_all, "unrestricted detector (all countries), -22.5 dBm0", args.max_failures)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
