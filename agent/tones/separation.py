"""When a plan's tones can first be told apart: the bound any cadence detector works under.

Two tones of one country may sound alike for a while: Laos plays busy as 425 Hz 1 s on,
1 s off and ringback as 425 Hz 1 s on, 4 s off, so the first 2 s of either are the same.
From the plan numbers alone, :func:`separation_time` says how long a tone heard from a
given point of its cadence stays consistent with a rival tone of the country, taking
the step-duration and frequency tolerances the detector matches with. A detector cannot
decide before that time without guessing; a benchmark limit below it cannot be met.

As in the detector, the first burst heard may be the tail of a longer one (the stream
can start anywhere in the cadence), so only its upper duration bound rules a rival out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agent.tones.config import ToneConfig
from agent.tones.plan import ToneSpec


@dataclass(frozen=True, slots=True)
class Part:
    """One on (tone) or off (pause) part of a cadence, adjacent steps of one state merged."""

    on: bool
    ms: float
    freqs: tuple[float, ...]  # spectral components; () for a pause


def heard_parts(spec: ToneSpec, *, phase_s: float, min_on_s: float = 0.1,
                horizon_s: float = 60.0) -> list[Part]:
    """The parts of ``spec`` played from ``phase_s``, from its first burst with at least
    ``min_on_s`` left (a shorter fragment is no evidence), for ``horizon_s`` seconds.

    Parameters
    ----------
    spec : ToneSpec
        A repeating tone with a cadence.
    phase_s : float
        Where in the cadence playing starts, seconds.
    min_on_s : float
        Shortest remainder of a burst that counts as heard.
    horizon_s : float
        How far to unroll the cadence.

    Returns
    -------
    list of Part
        Alternating on and off parts, the first one on (possibly a cut burst).
    """
    steps = [(s.is_tone, s.ms / 1000.0, _components(s.freqs, s.am_hz)) for s in spec.steps]
    period = sum(d for _, d, _ in steps)
    pos = phase_s % period
    out: list[Part] = []
    t, i, elapsed = 0.0, 0, 0.0
    # Find the step holding the phase, then walk on from it.
    while t + steps[i][1] <= pos:
        t += steps[i][1]
        i += 1
    left = t + steps[i][1] - pos
    while elapsed < horizon_s:
        on, _, freqs = steps[i % len(steps)]
        if out or (on and left >= min_on_s):
            if out and out[-1].on == on:
                last = out[-1]
                merged = tuple(sorted(set(last.freqs) | set(freqs)))
                out[-1] = Part(on, last.ms + left * 1000.0, merged)
            else:
                out.append(Part(on, left * 1000.0, freqs))
            elapsed += left
        i += 1
        left = steps[i % len(steps)][1]
    return out


def cycle_parts(spec: ToneSpec) -> list[Part]:
    """One period of a repeating tone as parts, from a burst, adjacent steps of one state
    merged (also across the end of the period)."""
    parts = heard_parts(spec, phase_s=0.0, min_on_s=0.0, horizon_s=spec.period_ms / 1000.0)
    if len(parts) > 1 and parts[-1].on == parts[0].on:
        last = parts.pop()
        parts[0] = Part(last.on, last.ms + parts[0].ms,
                        tuple(sorted(set(last.freqs) | set(parts[0].freqs))))
    return parts


def _components(freqs: tuple[float, ...], am_hz: float | None) -> tuple[float, ...]:
    if am_hz is not None:
        return (freqs[0] - am_hz, freqs[0], freqs[0] + am_hz)
    return freqs


def separation_time(heard: list[Part], rival: list[Part], *, config: ToneConfig) -> float:
    """Seconds from the first heard burst until ``heard`` stops fitting ``rival`` at every
    point of the rival's cadence (``inf``: within tolerance they never differ).

    Parameters
    ----------
    heard : list of Part
        What is heard, as from :func:`heard_parts`; the first burst may be cut.
    rival : list of Part
        One period of the rival tone (:func:`cycle_parts`).
    config : ToneConfig
        The detector's tolerances (``cadence_tol_pct``, ``cadence_tol_ms``,
        ``freq_tol_pct``).

    Returns
    -------
    float
        The latest, over the rival's bursts the first heard one could belong to, of the
        time its durations or frequencies first contradict that reading.
    """
    pct, pad = config.cadence_tol_pct / 100.0, config.cadence_tol_ms / 1000.0
    latest = 0.0
    for j, part in enumerate(rival):
        if not part.on:
            continue
        t = 0.0
        fail = math.inf
        for k, h in enumerate(heard):
            r = rival[(j + k) % len(rival)]
            d = h.ms / 1000.0
            lo = r.ms / 1000.0 * (1 - pct) - pad
            hi = r.ms / 1000.0 * (1 + pct) + pad
            if r.on != h.on or (h.on and not _same_freqs(h.freqs, r.freqs, config)):
                fail = t
                break
            if d > hi:
                fail = t + hi
                break
            if k > 0 and d < lo and k + 1 < len(heard):
                fail = t + d
                break
            t += d
        latest = max(latest, fail)
        if latest == math.inf:
            break
    return latest


def _same_freqs(a: tuple[float, ...], b: tuple[float, ...], config: ToneConfig) -> bool:
    if len(a) != len(b):
        return False
    tol = config.freq_tol_pct / 100.0
    return bool(np.all([abs(f - g) <= tol * max(f, g) + 8.0 for f, g in zip(a, b, strict=True)]))
