"""Cadence templates: the country plans' repeating tones as the cycles the detector matches.

A plan tone that repeats with a cadence becomes a cycle of on/off parts, each with its
duration and, for on parts, its spectral components (both tones of a dual tone, the
carrier and sidebands of an AM tone). Adjacent parts of the same kind merge and the cycle
starts with an on part, so that the same tone written two ways is one template; a
country's congestion tone that sounds like its busy tone is no template of its own
(:func:`is_busy_alike`). Templates the matcher's tolerances cannot tell apart across
countries (busy 375/375 in one, congestion 400/350 in another) are grouped
(:func:`_twin_group_kinds`) so that a decision does not wait for a rival that can never be
ruled out. Fax CNG (1100 Hz, 0.5 s on, 3 s off) is one more template.

Pure functions of the plans and the tolerances; :mod:`agent.tones.cadence` turns the
templates into the matcher's tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.tones.config import ToneConfig
from agent.tones.plan import CountryPlan, ToneSpec, parse_tone

_CADENCE_KINDS = ("ringback", "busy", "congestion")
_CNG = "[1100/500,0/3000]"


@dataclass(frozen=True, slots=True)
class _Template:
    """One repeating tone of one kind and the countries that play it: a cycle of on/off
    steps starting with an on part, each step's duration in ms and its components."""

    kind: str
    countries: tuple[str, ...]
    on: tuple[bool, ...]
    ms: tuple[int, ...]
    comps: tuple[tuple[float, ...], ...]  # spectral components per step, () when off


def _components(spec_step_freqs: tuple[float, ...], am_hz: float | None) -> tuple[float, ...]:
    if am_hz is not None:
        a = spec_step_freqs[0]
        return (a - am_hz, a, a + am_hz)
    return spec_step_freqs


_Cycle = tuple[tuple[bool, ...], tuple[int, ...], tuple[tuple[float, ...], ...]]


def _cycle(spec: ToneSpec) -> _Cycle | None:
    """Merge adjacent on (or off) steps and rotate so the cycle starts with an on part."""
    if not (spec.repeat and spec.has_cadence):
        return None
    merged: list[list] = []
    for step in spec.steps:
        comps = _components(step.freqs, step.am_hz) if step.is_tone else ()
        if merged and merged[-1][0] == step.is_tone:
            merged[-1][1] += step.ms
            merged[-1][2] = tuple(sorted(set(merged[-1][2]) | set(comps)))
        else:
            merged.append([step.is_tone, step.ms, tuple(sorted(set(comps)))])
    if len(merged) > 1 and merged[0][0] == merged[-1][0]:
        last = merged.pop()
        merged[0][1] += last[1]
        merged[0][2] = tuple(sorted(set(merged[0][2]) | set(last[2])))
    while not merged[0][0]:
        merged.append(merged.pop(0))
    return (
        tuple(m[0] for m in merged),
        tuple(int(m[1]) for m in merged),
        tuple(m[2] for m in merged),
    )


def _minimal(cycle: tuple) -> list[tuple[bool, int, tuple[float, ...]]]:
    steps = list(zip(*cycle, strict=True))
    n = len(steps)
    for p in range(2, n, 2):
        if n % p == 0 and all(_step_like(steps[i], steps[i % p]) for i in range(n)):
            return steps[:p]
    return steps


def _step_like(a: tuple, b: tuple, tol: float = 0.02) -> bool:
    if a[0] != b[0] or abs(a[1] - b[1]) > tol * max(a[1], b[1]) or len(a[2]) != len(b[2]):
        return False
    return all(abs(x - y) <= tol * max(x, y) for x, y in zip(a[2], b[2], strict=True))


def _canonical(cycle: tuple) -> tuple:
    """The shortest period of a cycle, from its smallest on-part rotation."""
    steps = _minimal(cycle)
    return min(tuple(steps[r:] + steps[:r]) for r in range(0, len(steps), 2))


def _twin_group_kinds(templates: list[_Template], kinds: list[int],
                      config: ToneConfig) -> list[int]:
    """Per template, the first kind among the templates indistinguishable from it."""
    cycles = [_canonical((t.on, t.ms, t.comps)) for t in templates]
    parent = list(range(len(templates)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(cycles)):
        for j in range(i + 1, len(cycles)):
            if _indistinct(cycles[i], cycles[j], config):
                parent[root(i)] = root(j)
    first: dict[int, int] = {}
    for i, k in enumerate(kinds):
        r = root(i)
        first[r] = min(first.get(r, k), k)
    return [first[root(i)] for i in range(len(templates))]


def _indistinct(a: tuple, b: tuple, config: ToneConfig) -> bool:
    """Whether two minimal cycles overlap step by step within the matcher's tolerances."""
    if len(a) != len(b):
        return False

    def window(ms: int) -> tuple[float, float]:
        d = ms / 1000.0
        pct, pad = config.cadence_tol_pct / 100.0, config.cadence_tol_ms / 1000.0
        return d * (1 - pct) - pad, d * (1 + pct) + pad

    def close(x: tuple, y: tuple) -> bool:
        (lo1, hi1), (lo2, hi2) = window(x[1]), window(y[1])
        if x[0] != y[0] or lo1 > hi2 or lo2 > hi1 or len(x[2]) != len(y[2]):
            return False
        tol = config.freq_tol_pct / 100.0
        return all(abs(f - g) <= tol * max(f, g) + 8.0 for f, g in zip(x[2], y[2], strict=True))

    n = len(a)
    return any(all(close(a[i], b[(i + r) % n]) for i in range(n)) for r in range(0, n, 2))


def _same_tone(c1: tuple, c2: tuple) -> bool:
    """True when two cycles sound alike within tolerance (Australia's 425/420 congestion
    is its busy tone), whatever on part they start from."""
    a, b = _minimal(c1), _minimal(c2)
    if len(a) != len(b):
        return False
    return any(
        all(_step_like(a[i], b[(i + r) % len(b)]) for i in range(len(a)))
        for r in range(0, len(b), 2)
    )


def build_templates(plans: dict[str, CountryPlan], countries: list[str] | tuple[str, ...] = (),
                    *, fax: bool = True) -> list[_Template]:
    """The distinct cadence templates of the selected countries (all when empty).

    A country's congestion tone identical to its busy tone is not a separate template:
    such a tone is busy unless the plan says otherwise.
    """
    from agent.tones.plan import country_code

    countries = [country_code(cc, plans) for cc in countries]
    unknown = [cc for cc in countries if cc not in plans]
    if unknown:
        from agent.errors import ConfigError

        raise ConfigError(f"countries: unknown tone-plan country {unknown[0]!r}")
    if countries:
        chosen = [plans[cc] for cc in countries]
    else:
        # When several countries share a cadence the first is reported: list the zones
        # Asterisk ships (the common ones: us before Anguilla) first.
        chosen = sorted(plans.values(), key=lambda p: not _in_asterisk(p))
    by_key: dict[tuple, list[str]] = {}
    for plan in chosen:
        busy_cycles = [c for c in (_cycle(s) for s in plan.busy) if c is not None]
        for kind in _CADENCE_KINDS:
            for spec in plan.specs(kind):
                cyc = _cycle(spec)
                if cyc is None or (kind == "congestion" and is_busy_alike(cyc, busy_cycles)):
                    continue
                ccs = by_key.setdefault((kind, cyc), [])
                if plan.cc not in ccs:
                    ccs.append(plan.cc)
    if fax:
        (cng,) = parse_tone(_CNG, source="T.30")
        by_key.setdefault(("fax_cng", _cycle(cng)), [])
    return [
        _Template(kind=k, countries=tuple(ccs), on=c[0], ms=c[1], comps=c[2])
        for (k, c), ccs in by_key.items()
    ]


def _in_asterisk(plan: CountryPlan) -> bool:
    return any("asterisk" in s.source for k in _CADENCE_KINDS for s in plan.specs(k))


def is_busy_alike(cycle: tuple, busy_cycles: list[tuple]) -> bool:
    """Whether a congestion cycle is one of the country's busy tones (then it is busy)."""
    return any(_same_tone(cycle, b) for b in busy_cycles)
