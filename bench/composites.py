"""Benchmark of the commonest carrier pattern: ringback or music, then an announcement.

A carrier rings (or plays a caller tune) for a while, then says "the subscriber is not
answering" and fails the call. Each composite here is 3-20 s of ringback (a random
country's plan from config/tone_plans.yaml, rendered by :func:`agent.tones.synth.render`
from a random point of its cadence) or of music (the Debian music the corpus is cut
from), then 2-10 s of speech, then up to 1 s of line noise before the carrier's final
response; the whole call goes through one telephone channel
(:func:`agent.corpus.channel.telephone_channel`: level, noise floor, codec, packet loss).
Each is classified by :func:`agent.classify.cli.classify_samples`, the path ``classify``
and the live agent share, and scored:

* call accuracy: the class at the end of the call is announcement (target ≥ 0.97);
* decision delay: seconds of early media from the announcement's first sample to the
  first announcement decision (target median ≤ 2.5 s), median and p90 over the calls
  decided announcement after it started; an announcement decided earlier (speech heard
  in the music) is counted apart, not as a delay;
* controls: as many calls again (``--controls``) built alike but without the
  announcement, and half as many of ringback then music (a caller tune), whose class must
  stay what played: a rule that calls everything an announcement scores 1.0 above and
  fails here.

The speech is a parameter: the Asterisk prompts the corpus uses by default, any audio
files, or a :data:`SpeechSource` function, so that voices the model never heard can be fed.

Run (nice it: the machine is shared)::

    nice -n 10 python bench/composites.py --n 100 --seed 0
    nice -n 10 python bench/composites.py --n 100 --speech /path/to/voices/*.wav

Import (from a script in bench/, whose directory is on ``sys.path``)::

    from composites import build_composites, evaluate, prompt_speech
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# `python bench/composites.py` puts bench/ first on the path, so `import agent` would find
# whichever checkout pip installed in editable mode: measure the one this file is in. Its
# own directory too, for speech_sources when this module is loaded from elsewhere.
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from speech_sources import (  # noqa: E402  (re-exported: callers import them from here)
    SpeechSource,
    festival_speech,
    file_speech,
    prompt_speech,
)

from agent.audio import SAMPLE_RATE  # noqa: E402
from agent.audio.io import load_audio  # noqa: E402
from agent.corpus.channel import rms_dbfs, telephone_channel  # noqa: E402
from agent.corpus.config import CorpusConfig  # noqa: E402
from agent.errors import UserError  # noqa: E402

KINDS: tuple[str, ...] = ("ringback", "music")
#: What follows: the announcement of a composite, or for a control music or nothing.
AFTER: tuple[str, ...] = ("announcement", "music", "nothing")


@dataclass
class Composite:
    """One call's early media: ``before`` audio, then from ``onset_s`` what comes
    ``after`` it (an announcement; music or nothing for a control)."""

    id: str
    before: str  # ringback | music
    before_source: str
    after: str  # announcement | music | nothing
    after_sources: list[str]
    onset_s: float
    after_s: float
    samples: np.ndarray
    channel: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.samples.size / SAMPLE_RATE

    @property
    def group(self) -> str:
        """How results are grouped: what came before; controls apart."""
        return {"announcement": self.before, "nothing": f"control: {self.before} only",
                "music": f"control: {self.before} then music"}[self.after]

    @property
    def accepted(self) -> tuple[str, ...]:
        """The classes the call may end as: announcement, or for a control what played."""
        if self.after == "announcement":
            return ("announcement",)
        return tuple(dict.fromkeys((self.before, "music" if self.after == "music" else
                                    self.before)))

    def describe(self) -> dict[str, Any]:
        """What the composite is made of, JSON-ready (the samples left out)."""
        return {"id": self.id, "before": self.before, "before_source": self.before_source,
                "after": self.after, "after_sources": self.after_sources,
                "onset_s": round(self.onset_s, 3), "after_s": round(self.after_s, 3),
                "duration_s": round(self.duration_s, 3), "channel": self.channel}


@dataclass(frozen=True)
class CompositeResult:
    """How one composite was classified."""

    id: str
    group: str
    accepted: tuple[str, ...]
    onset_s: float
    final: str | None
    decisions: list[dict[str, Any]]

    @property
    def control(self) -> bool:
        return self.accepted != ("announcement",)

    @property
    def correct(self) -> bool:
        return self.final in self.accepted

    @property
    def first_announcement_s(self) -> float | None:
        """Stream time of the first announcement decision, None if there was none."""
        for d in self.decisions:
            if d["label"] == "announcement":
                return float(d["at_s"])
        return None

    @property
    def delay_s(self) -> float | None:
        """Seconds from the announcement's start to its first decision (negative: before)."""
        at = self.first_announcement_s
        return None if at is None else at - self.onset_s


# --- what plays before the announcement -------------------------------------------------


def _ringback(rng: np.random.Generator, seconds: float, plans: dict[str, Any]
              ) -> tuple[np.ndarray, str]:
    """A random country's ringback variant from a random point of its cadence."""
    from agent.tones.synth import render

    variants = [(cc, i, spec) for cc in sorted(plans) for i, spec in enumerate(plans[cc].ringback)]
    cc, i, spec = variants[int(rng.integers(len(variants)))]
    phase = float(rng.uniform(0.0, spec.period_ms / 1000.0))
    return render(spec, duration_s=seconds, phase_s=phase), f"{cc}/ringback/{i}@{phase:.2f}"


class _Music:
    """Excerpts of the corpus's Debian music (base and ``more_music`` packages), each file
    decoded or rendered once; a missing package is a one-line :class:`UserError`."""

    def __init__(self) -> None:
        from agent.corpus.sources import more_music_files, music_files

        self.cfg = CorpusConfig()
        files = {**music_files(self.cfg), **more_music_files(self.cfg)}
        self.files = [p for pkg in sorted(files) for p in files[pkg]]
        self._audio: dict[Path, np.ndarray] = {}

    def _load(self, path: Path) -> np.ndarray:
        from agent.corpus.sources import render_midi

        if path not in self._audio:
            if path.suffix.lower() in (".mid", ".midi"):
                self._audio[path] = render_midi(path, soundfont=Path(self.cfg.sources.soundfont),
                                                seconds=self.cfg.midi_seconds)
            else:
                self._audio[path] = load_audio(path)
        return self._audio[path]

    def excerpt(self, rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, str]:
        """``seconds`` of a random file from a random point, screened as the corpus screens
        music: a fade-out or a quiet interlude is not music to a listener on the line."""
        n = int(round(seconds * SAMPLE_RATE))
        for _ in range(50):
            path = self.files[int(rng.integers(len(self.files)))]
            audio = self._load(path)
            if audio.size < n:
                continue
            start = int(rng.integers(0, audio.size - n + 1))
            seg = audio[start:start + n]
            whole = seg[: seg.size // SAMPLE_RATE * SAMPLE_RATE].reshape(-1, SAMPLE_RATE)
            quiet = np.mean([rms_dbfs(s) < self.cfg.music_min_dbfs for s in whole])
            if rms_dbfs(seg) >= self.cfg.music_min_dbfs and quiet <= 0.25:
                return seg.astype(np.float32), f"{path}@{start / SAMPLE_RATE:.1f}"
        raise UserError(f"music: no loud enough {seconds:.1f}-s excerpt in 50 draws")


def _at_level(x: np.ndarray, dbfs: float) -> np.ndarray:
    level = rms_dbfs(x)
    if level <= -200.0:
        return x
    return (x * np.float32(10.0 ** ((dbfs - level) / 20.0))).astype(np.float32)


def build_composites(
    n: int,
    *,
    seed: int = 0,
    speech: SpeechSource | None = None,
    kinds: Sequence[str] = KINDS,
    after: str = "announcement",
    before_s: tuple[float, float] = (3.0, 20.0),
    after_s: tuple[float, float] = (2.0, 10.0),
    tail_s: tuple[float, float] = (0.0, 1.0),
) -> list[Composite]:
    """``n`` composites, ``kinds`` taking turns, the same for the same arguments.

    Parameters
    ----------
    n : int
        How many.
    seed : int
        Seeds the one generator every draw comes from.
    speech : SpeechSource, optional
        Where the announcement comes from; default :func:`prompt_speech`.
    kinds : sequence of str
        What plays before the announcement: ``ringback``, ``music``.
    after : str
        ``announcement``; for controls ``music`` (a caller tune after the ringback) or
        ``nothing`` (``before`` alone).
    before_s, after_s, tail_s : (float, float)
        Uniform ranges, in seconds, of what plays before the announcement, of the
        announcement (or control music), and of the line noise between its end and the
        final response.

    Returns
    -------
    list of Composite
    """
    if n < 0:
        raise UserError(f"n: expected a number of composites >= 0, got {n}")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise UserError(f"kinds: expected some of {', '.join(KINDS)}, got {list(kinds)}")
    if after not in AFTER:
        raise UserError(f"after: expected one of {', '.join(AFTER)}, got {after!r}")
    for name, (lo, hi) in (("before_s", before_s), ("after_s", after_s), ("tail_s", tail_s)):
        if not 0.0 <= lo <= hi:
            raise UserError(f"{name}: expected 0 <= min <= max, got [{lo}, {hi}]")
    from agent.tones.plan import load_tone_plans

    rng = np.random.default_rng(seed)
    speech = speech or prompt_speech()
    plans = load_tone_plans()
    music = _Music() if "music" in kinds or after == "music" else None
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        pre_s = float(rng.uniform(*before_s))
        if kind == "ringback":
            pre, source = _ringback(rng, pre_s, plans)
        else:
            assert music is not None
            pre, source = music.excerpt(rng, pre_s)
            pre = _at_level(pre, -20.0)
        # What follows reaches the line within a few dB of what played before it.
        want_s = float(rng.uniform(*after_s))
        then, names = np.zeros(0, np.float32), []
        if after == "announcement":
            then, names = speech(rng, want_s)
        elif after == "music":
            assert music is not None
            then, name = music.excerpt(rng, want_s)
            names = [name]
        if then.size:
            then = _at_level(then[: int(round(want_s * SAMPLE_RATE))],
                             float(rng.uniform(-26, -14)))
        tail = rng.standard_normal(int(rng.uniform(*tail_s) * SAMPLE_RATE)).astype(np.float32)
        x = np.concatenate([pre, then, tail * np.float32(1e-4)])
        x, channel = telephone_channel(x, rng=rng)
        name = {"announcement": kind, "nothing": f"{kind}-only",
                "music": f"{kind}-then-music"}[after]
        out.append(Composite(f"{name}-{i:04d}", kind, source, after, names,
                             pre.size / SAMPLE_RATE, then.size / SAMPLE_RATE, x, channel))
    return out


# --- running and scoring ----------------------------------------------------------------


def run_composite(components: Any, composite: Composite) -> CompositeResult:
    """Classify one composite as ``classify`` does (a second at a time, then the end)."""
    from agent.analysis import CallAnalyzer
    from agent.classify.cli import classify_samples

    record = classify_samples(CallAnalyzer(components, call_id=composite.id), composite.samples)
    final = record["decision"]
    decisions = record["decisions"]
    return CompositeResult(composite.id, composite.group, composite.accepted,
                           composite.onset_s, final["label"] if final is not None else None,
                           decisions)


def _model_probs(carried: list[list[float]], persistence: float) -> list[list[float]]:
    """The model's own probabilities, recovered from the carried ones by undoing
    :func:`~agent.classify.rule.carry_over` (exact while none underflows to 0)."""
    out: list[list[float]] = []
    switch = (1.0 - persistence) / 3
    for t, probs in enumerate(carried):
        if t == 0:
            out.append(probs)
            continue
        raw = [p / (switch + (persistence - switch) * q)
               for p, q in zip(probs, carried[t - 1], strict=True)]
        total = sum(raw)
        out.append([v / total for v in raw])
    return out


def trace(components: Any, composite: Composite) -> list[str]:
    """Per second of one composite: the model's probabilities, the carried ones, the
    rule's effective label and run, the decisions made, and the seconds handed to the
    fingerprint lookup (with a library) — where a wrong call went wrong."""
    from agent.analysis import CallAnalyzer
    from agent.classify.rule import RuleState
    from agent.labels import LABELS

    analyzer = CallAnalyzer(components, call_id=composite.id)
    for start in range(0, composite.samples.size, SAMPLE_RATE):
        analyzer.push(composite.samples[start:start + SAMPLE_RATE])
    analyzer.conclude()
    carried = [[s.p[label] for label in LABELS] for s in analyzer.seconds]
    model = _model_probs(carried, components.rule.persistence)
    # The rule is pure bookkeeping: replayed on the same inputs it gives the same runs.
    replay = RuleState(components.rule)
    lines = [f"{composite.id}: {composite.before} ({composite.before_source}) then "
             f"{composite.after} at {composite.onset_s:.2f} s for {composite.after_s:.2f} s, "
             f"call {composite.duration_s:.2f} s, {composite.channel}",
             "   t        model A/R/M/S        carried A/R/M/S   label  effective run  decided"]
    run, last = 0, None
    for second, raw, probs in zip(analyzer.seconds, model, carried, strict=True):
        t = second.t
        replay.push(t, second.label, max(probs), raw[0])
        effective = replay.effective[-1]
        run = run + 1 if effective is not None and effective == last else 1
        last = effective
        made = [f"{d.label}@{d.at_s:g}" for d in analyzer.decisions if d.at_s == t + 1]
        where = "*" if composite.onset_s < t + 1 <= composite.onset_s + composite.after_s else " "
        lookup = " lookup" if t in analyzer.lookup_seconds else ""
        lines.append(f"{t:4d}{where} " + " ".join(f"{v:.3f}" for v in raw) + "  "
                     + " ".join(f"{v:.3f}" for v in probs)
                     + f"  {second.label[:5]:5s}  {str(effective)[:9]:9s} {run:3d}  "
                     + " ".join(made) + lookup)
    at_end = [f"{d.label}@{d.at_s:g}" for d in analyzer.decisions
              if d.at_s > len(analyzer.seconds)]
    lines.append(f"end of stream: {' '.join(at_end) or 'no new decision'}; history "
                 + " > ".join(f"{d.label}@{d.at_s:g}" for d in analyzer.decisions))
    return lines


def summarize(results: Sequence[CompositeResult]) -> dict[str, Any]:
    """Call accuracy and decision delays, overall and per kind of what came before; the
    controls (calls without an announcement) apart."""
    def block(rs: Sequence[CompositeResult]) -> dict[str, Any]:
        delays = [r.delay_s for r in rs if r.correct and r.delay_s is not None
                  and r.delay_s >= 0.0]
        # In a control every announcement decision is wrong: there is no announcement.
        early = sum(1 for r in rs if r.first_announcement_s is not None and (
            r.control or r.first_announcement_s < r.onset_s))
        finals: dict[str, int] = {}
        for r in rs:
            finals[str(r.final)] = finals.get(str(r.final), 0) + 1
        return {
            "n": len(rs),
            "accuracy": round(sum(r.correct for r in rs) / len(rs), 4) if rs else None,
            "median_delay_s": round(float(np.median(delays)), 3) if delays else None,
            "p90_delay_s": round(float(np.percentile(delays, 90)), 3) if delays else None,
            "decided_before_onset": early,
            "finals": dict(sorted(finals.items())),
        }

    calls = [r for r in results if not r.control]
    out = {"all": block(calls)} if calls else {}
    for group in sorted({r.group for r in results}, key=lambda g: (g.startswith("control"), g)):
        out[group] = block([r for r in results if r.group == group])
    return out


def evaluate(components: Any, composites: Sequence[Composite]) -> tuple[
        list[CompositeResult], dict[str, Any]]:
    """Run every composite; return the per-composite results and :func:`summarize`."""
    results = [run_composite(components, c) for c in composites]
    return results, summarize(results)


def load_components(config: str | None = None, *, library: bool = True) -> Any:
    """The analysis components ``classify`` loads (model, rule, tones, library, table)."""
    from dataclasses import replace

    from agent.analysis import AnalysisComponents
    from agent.settings import load_agent_config

    cfg = load_agent_config(config)
    if not library:
        cfg = replace(cfg, fingerprint=replace(cfg.fingerprint, enabled=False))
    return AnalysisComponents.load(cfg)


def _table(summary: dict[str, Any]) -> str:
    lines = ["| composites | n | call accuracy | median delay | p90 delay | announcement "
             "decided before its onset (controls: at all) | final classes |",
             "|---|---|---|---|---|---|---|"]
    for name, s in summary.items():
        med = "-" if s["median_delay_s"] is None else f"{s['median_delay_s']:.2f} s"
        p90 = "-" if s["p90_delay_s"] is None else f"{s['p90_delay_s']:.2f} s"
        finals = ", ".join(f"{k} {v}" for k, v in s["finals"].items())
        lines.append(f"| {name} | {s['n']} | {s['accuracy']:.4f} | {med} | {p90} | "
                     f"{s['decided_before_onset']} | {finals} |")
    return "\n".join(lines)


def _speech_name(speech: list[str] | None) -> str:
    if not speech:
        return "Asterisk prompts"
    return ("held-out Festival voices" if speech == ["festival"]
            else f"{len(speech)} files")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="composites (kinds take turns)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--controls", type=int, default=None,
                    help="calls without an announcement (default: as many as --n)")
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    ap.add_argument("--speech", nargs="+", metavar="FILE",
                    help="'festival' (carrier texts in Festival voices the model never "
                         "heard) or audio files to join into announcements (default: the "
                         "Asterisk prompts the corpus uses)")
    ap.add_argument("--config", default=None, help="agent config (default config/agent.yaml)")
    ap.add_argument("--no-library", action="store_true",
                    help="skip the announcement fingerprint lookup")
    ap.add_argument("--trace", nargs="+", metavar="ID", default=[],
                    help="print the per-second trace of these composites (ids as listed "
                         "under 'wrong')")
    ap.add_argument("--details", type=Path,
                    help="write one JSON line per composite (what it is, how it was classified)")
    args = ap.parse_args(argv)
    try:
        speech = (festival_speech() if args.speech == ["festival"]
                  else file_speech(args.speech) if args.speech else None)
        t0 = time.perf_counter()
        composites = build_composites(args.n, seed=args.seed, speech=speech, kinds=args.kinds)
        # Controls draw from their own seeds, so adding them leaves the composites alike.
        n_controls = args.n if args.controls is None else args.controls
        composites += build_composites(n_controls, seed=args.seed + 1_000_003, kinds=args.kinds,
                                       after="nothing")
        if "ringback" in args.kinds:
            composites += build_composites(n_controls // 2, seed=args.seed + 2_000_003,
                                           kinds=["ringback"], after="music")
        built = time.perf_counter() - t0
        components = load_components(args.config, library=not args.no_library)
        t0 = time.perf_counter()
        results, summary = evaluate(components, composites)
        ran = time.perf_counter() - t0
    except UserError as exc:
        print(f"composites: error: {exc}", file=sys.stderr)
        return 2
    audio_s = sum(c.duration_s for c in composites)
    print(f"# composites — {args.n} calls and {len(composites) - args.n} controls, seed "
          f"{args.seed}, speech "
          f"{_speech_name(args.speech)}, "
          f"{audio_s:.0f} s of audio (built in {built:.0f} s, classified in {ran:.0f} s)")
    print()
    print(_table(summary))
    wrong = [r for r in results if not r.correct]
    if wrong:
        print()
        print("wrong: " + ", ".join(f"{r.id} ({r.final}, onset {r.onset_s:.1f} s)"
                                    if not r.control else f"{r.id} ({r.final})"
                                    for r in wrong))
    by_id = {c.id: c for c in composites}
    for name in args.trace:
        print()
        print("\n".join(trace(components, by_id[name])) if name in by_id
              else f"trace: no composite {name!r}")
    if args.details:
        with args.details.open("w") as f:
            for c, r in zip(composites, results, strict=True):
                f.write(json.dumps({**c.describe(), "final": r.final,
                                    "decisions": r.decisions, "delay_s": r.delay_s}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
