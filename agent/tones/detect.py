"""Streaming detection of call-progress tones (ringback, busy, congestion), SIT and fax tones.

Three stages, all on 32-ms frames every 10 ms:

1. *Frames.* Each frame's level and its *purity*, the share of its energy in its two
   strongest spectral peaks. Purity does not depend on level, so a loud signal is not a
   tone unless it is one (spandsp's single-frequency descriptors skip this check); a
   minimum absolute level keeps digital silence and line noise out.
2. *Cadence.* Tonal frames and quiet frames (``off_drop_db`` below the tone) form on/off
   segments. Every repeating plan tone is a cycle of on/off steps; each hypothesis
   (template, phase) is checked against each segment: duration within tolerance and, for
   "on" parts, the segment's energy concentrated at the plan's frequencies, with every
   component of a dual or AM tone present (a 256-ms FFT resolves 400+450 or 384+416).
   Busy, congestion and ringback differ by cadence, so North American busy (480+620,
   500/500) and reorder (250/250) are told apart, unlike Asterisk's cadence-less detector.
   A kind is reported once an on part and its pause (or, after a burst cut by the stream
   start, a pause and the next burst) fit, once no rival kind still fits (or after
   ``patience_s``, the closer fit winning); a burst whose return settles the cadence
   must first fit the plan's frequencies for 24 ms (a voice may start where it would); a
   busy/congestion burst longer than the 1.5-s target decides alone. How soon a plan
   itself lets two kinds be told apart is computed in :mod:`agent.tones.separation`.
3. *Frequency runs.* SIT (three segments near 950, 1400, 1800 Hz) and fax CED (2100 Hz)
   are tracked by the frame peak frequency; the SIT segments' exact frequencies (from a
   long FFT) and durations give the North-American code (IC, VC, RO, NC, IO) or ``ITU``;
   a first segment longer than any standard one (Malaysia's 1 s) is decided as ``ITU``
   from the first two.
   Fax CNG (1100 Hz, 0.5 s on, 3 s off) is one more cadence template.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

from agent.audio import SAMPLE_RATE
from agent.labels import ToneEvent
from agent.tones.config import ToneConfig
from agent.tones.plan import CountryPlan, ToneSpec, load_tone_plans, parse_tone

FRAME_S = 0.032
HOP_S = 0.010
_SEG_NFFT = 2048  # long FFT of a segment: 3.9 Hz bins at 8 kHz
_SIT_NFFT = 8192
_CADENCE_KINDS = ("ringback", "busy", "congestion")
# On a tie (same cadence listed as busy in one country and congestion in another) the
# earlier kind wins: busy is the common reading of such a tone.
_KIND_ORDER = ("busy", "congestion", "ringback", "fax_cng")
_CNG = "[1100/500,0/3000]"

# SIT bands (Hz): wide enough for the national variants in the plans (900/1380/1860,
# 950/1450/1850, 1000/1400/1800, 950/1400/1600) and the North-American frequencies.
_SIT_BANDS = ((870.0, 1040.0), (1320.0, 1500.0), (1560.0, 1950.0))
_CED_BAND = (2070.0, 2130.0)
# Least share of a frequency set's energy in each of its components: a dual tone's weaker
# half (9 dB of twist) or an AM tone's sideband (50% depth) holds more; the leakage of a
# single tone sitting on one component of a dual far less.
_MIN_COMPONENT_SHARE = 0.04
_OFFS = np.arange(-2, 3)  # a peak's +-2 bins hold a Hann-windowed tone's main lobe
# Frames are analysed 80 ms at a time: numpy's per-call cost dominates smaller batches.
_MIN_BATCH = 8
_ONSET_FRAMES = 3  # steady tonal frames (30 ms) that start a tone
# An on part's frequencies are first measured once it has lasted this long (a 120-ms FFT
# resolves the closest dual tones); a returning burst counts from then on.
_PURITY_AFTER_S = 0.12
# Frame times and part starts lie on the 10-ms grid: a frame exactly 120 ms in must not
# round below the threshold.
_PURITY_AT_S = _PURITY_AFTER_S - 1e-6
# The end of a plain burst or pause is read from the newest audio in blocks of this length
# (see ToneDetector._tail_end): one block of quiet ends a burst (a plain tone never drops
# 10 dB for 4 ms); one block of a returning tone must also fit a sinusoid. That is a
# weaker check than 8 ms (of Asterisk prompts above -50 dBFS, 5.2% of 4-ms blocks fit
# 425 Hz, 1.5% of 8-ms ones) but no weaker than what the frames accept a frame later: any
# tonal frame ends the pause. Two blocks came 20 ms late for Laos busy when its burst
# returned 4-6 ms before the last packet within 1.5 s.
_TAIL_BLOCK_S = 0.004
# A 32-ms frame reads 10 dB down once the tone fills at most 31% of its window energy,
# i.e. when its centre is 6 ms past the tone's end; it reads the tone (8 dB down at
# most) once the tone fills 16%, when its centre is 5 ms before the tone's start.
_FRAME_QUIET_AFTER_S = 0.006
_FRAME_TONE_BEFORE_S = 0.005
# Share of a few milliseconds of samples that a sinusoid at the expected frequency must
# explain for them to be that tone (the frames' purity threshold).
_TAIL_PURITY = 0.75
# A burst returning after a pause settles a cadence (the pause's length rules out a rival)
# only once its first _RETURN_CONFIRM_S fit the plan's frequencies, as sinusoids
# explaining _TAIL_PURITY of the samples (fitted over at most _RETURN_FIT_MAX_S, where a
# tone off its plan by freq_tol_pct still fits). Without it, a voice or a note starting
# 1 s after a Laos ringback burst (425 Hz, 1 s on) read as its busy (1 s on, 1 s off).
_RETURN_CONFIRM_S = 0.024
_RETURN_FIT_MAX_S = 0.032
# The detector's state of the current run: what ToneDetector._try_boundary restores.
_RUN_STATE = ("run", "cur", "ref_db", "seg_levels", "pend_levels", "pend_label", "pend_start",
              "pend_count", "other_count", "emitted", "check_at", "wait_quiet", "matcher")
# A busy/congestion on part counts as seen after this long, its pause after this long:
# 750/750 and 1000/1000 cadences cannot wait a whole cycle within 1.5 s.
_BUSY_ON_CAP_S = 0.35
_BUSY_OFF_CAP_S = 0.45
# A busy/congestion burst at least this long (Burkina Faso's 2.4-s congestion) is decided
# from the burst alone once it has lasted this long: a burst heard for longer than this
# leaves no time for the _BUSY_OFF_CAP_S of its pause (and a frame's delay) within 1.5 s.
_LONG_BURST_S = 1.0
# ... if its level holds: a tone generator plays at one level, while a sustained note of
# music decays (a 621-Hz note of an MOH track fell 6 dB in 1 s and matched 480+620 Hz).
# Compared between the first and the last _STEADY_SPAN_S of the burst.
_STEADY_DB = 3.0
_STEADY_SPAN_S = 0.2
# Its mirror: after a burst cut by the stream start (at least _LONE_BURST_MIN_S of it
# heard), a pause this long decides a busy, congestion or fax calling tone alone when
# every tone still fitting both is of that kind (Burkina Faso's 2.4-s congestion heard
# from its last 0.3 s: 480+620 Hz is no other tone of the country, and the next burst
# comes after the 1.5-s limit; so is CNG's 1100 Hz, 3 s apart).
_LONE_PAUSE_S = 1.0
_LONE_BURST_MIN_S = 0.08  # what the frames measure of a 100-ms fragment, at the least
_STRONG_ON_S = 0.25
_STRONG_OFF_S = 0.4
# Two satisfied kinds whose best fits differ by this much need not wait for each other.
_SCORE_MARGIN = 0.1
_SIT_SEG_S = (0.22, 1.1)  # first two segments: ITU 330 +-70, Telcordia 274/380, up to 1 s
_SIT_THIRD_S = 0.25  # decide once the third segment has lasted this long
_SIT_GAP_S = 0.06  # longest break inside or between segments (ITU allows 30 ms gaps)
# A first segment longer than any standard one (ITU 330 +-70 ms, Telcordia 380 ms +5%),
# such as Malaysia's 1-s segments, leaves no North-American code to read from the
# durations: the sequence is decided once the second segment has lasted this long.
_SIT_LONG_FIRST_S = 0.45
_SIT_EARLY_SECOND_S = 0.1
# North-American SIT (Telcordia): exact frequencies, short 274 ms / long 380 ms.
_NA_F1 = (913.8, 985.2)
_NA_F2 = (1370.6, 1428.5)
_NA_F3 = 1776.7
_NA_TOL = 0.006  # the standard's 0.2% plus our estimation error
_NA_SHORT_LONG_S = 0.327  # midway between 274 and 380 ms
_NA_CODES = {
    # (f1 high?, f2 high?, seg1 long?, seg2 long?) -> code
    (False, False, False, False): "IC",
    (True, False, True, False): "VC",
    (False, True, False, True): "RO",
    (True, False, False, True): "RO",
    (False, False, True, True): "NC",
    (True, True, True, True): "NC",
    (False, True, True, False): "IO",
}


@dataclass(frozen=True, slots=True)
class _Template:
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


@dataclass
class _Seg:
    on: bool
    start: float
    end: float | None = None
    purity: np.ndarray | None = None  # per frequency set, for on parts
    whole_purity: bool = False  # purity re-measured mid-burst, not only on its first 120 ms
    steady: bool = False  # its level held over the burst when whole_purity was measured


@dataclass
class _BandRun:
    band: int
    start: float
    last: float


def _weight(duration: float, on: bool) -> float:
    """Evidence of one part: short ones count half (a vowel and a speech pause last about
    as long as a 200-ms step; two such parts must not make a tone)."""
    return 1.0 if duration >= (_STRONG_ON_S if on else _STRONG_OFF_S) else 0.5


class _Tables:
    """The hypotheses' fixed data: built once per plan set and settings, shared by calls."""

    def __init__(self, templates: list[_Template], config: ToneConfig, sr: int) -> None:
        self.templates = templates
        self.cfg = config
        self.sr = sr
        fsets: dict[tuple[float, ...], int] = {}
        rows = []
        for ti, t in enumerate(templates):
            for j, on in enumerate(t.on):
                if on:
                    rows.append((ti, j))
            for comps in t.comps:
                if comps and comps not in fsets:
                    fsets[comps] = len(fsets)
        self.fsets = list(fsets)
        m_max = max(len(t.on) for t in templates)
        n_t = len(templates)
        lo = np.zeros((n_t, m_max))
        hi = np.zeros((n_t, m_max))
        nominal = np.ones((n_t, m_max))
        fs_id = np.full((n_t, m_max), -1, dtype=np.int64)
        for ti, t in enumerate(templates):
            for j, ms in enumerate(t.ms):
                d = ms / 1000.0
                lo[ti, j] = d * (1 - config.cadence_tol_pct / 100) - config.cadence_tol_ms / 1000
                hi[ti, j] = d * (1 + config.cadence_tol_pct / 100) + config.cadence_tol_ms / 1000
                nominal[ti, j] = d
                if t.comps[j]:
                    fs_id[ti, j] = fsets[t.comps[j]]
        self.h_t = np.array([r[0] for r in rows], dtype=np.int64)
        self.h_rot = np.array([r[1] for r in rows], dtype=np.int64)
        self.h_m = np.array([len(templates[r[0]].on) for r in rows], dtype=np.int64)
        self.lo, self.hi, self.nominal, self.fs_id = lo, hi, nominal, fs_id
        for arr in (lo, hi, nominal, fs_id):
            arr.flags.writeable = False
        kinds = [_KIND_ORDER.index(t.kind) for t in templates]
        self.h_kind = np.array([kinds[r[0]] for r in rows], dtype=np.int64)
        # Templates whose cadences the matcher cannot tell apart (busy 375/375 in one
        # country, congestion 400/350 in another) form a group that stands for its first
        # kind: the decision does not wait for a twin that will never be ruled out, and
        # the fit (score) still picks the closer one.
        t_group_kind = _twin_group_kinds(templates, kinds, config)
        self.h_group_kind = np.array([t_group_kind[r[0]] for r in rows], dtype=np.int64)
        # Evidence needed: an on part and the pause after it, both of the plan's length (a
        # part cut by the start of the stream counts half) ...
        self.h_need = np.full(len(rows), 2.0)
        # ... and, for fast cadences (100/100 ms), at least this much of it: a few short
        # syllables must not add up to a tone.
        self.min_span = 0.6
        # An open part counts once it has lasted its plan length or this cap, whichever
        # is shorter: 4-s ringback pauses and 1-s busy bursts need not be sat through.
        on_cap = np.full(n_t, np.inf)
        off_cap = np.full(n_t, np.inf)
        for ti, t in enumerate(templates):
            if t.kind == "ringback":
                off_cap[ti] = config.ringback_off_s
            elif t.kind == "fax_cng":
                off_cap[ti] = 0.5
            else:
                on_cap[ti], off_cap[ti] = _BUSY_ON_CAP_S, _BUSY_OFF_CAP_S
        self.h_on_cap = on_cap[self.h_t]
        # Per step: how long an open on part must last to decide on its own (inf: never).
        burst = np.full((n_t, m_max), np.inf)
        for ti, t in enumerate(templates):
            if t.kind in ("busy", "congestion"):
                for j, on in enumerate(t.on):
                    if on and lo[ti, j] >= _LONG_BURST_S:
                        burst[ti, j] = _LONG_BURST_S
        burst.flags.writeable = False
        self.burst = burst
        # Per step: how long a pause after a cut first burst must last to decide alone
        # (not ringback: its pauses are long, and a lone burst is no ringing).
        lone = np.full((n_t, m_max), np.inf)
        for ti, t in enumerate(templates):
            if t.kind in ("busy", "congestion", "fax_cng"):
                for j, on in enumerate(t.on):
                    if not on and hi[ti, j] >= _LONE_PAUSE_S:
                        lone[ti, j] = _LONE_PAUSE_S
        lone.flags.writeable = False
        self.lone = lone
        self.h_off_cap = off_cap[self.h_t]
        comps_flat, owner = [], []
        for si, comps in enumerate(self.fsets):
            for f in comps:
                comps_flat.append(f)
                owner.append(si)
        self.comp_f = np.array(comps_flat)
        self.comp_owner = np.array(owner, dtype=np.int64)
        # Each set's components are contiguous: where each set's run of them starts.
        self.comp_starts = np.searchsorted(self.comp_owner, np.arange(len(self.fsets)))
        self._mask_cache: dict[int, np.ndarray] = {}

    def masks(self, n_samples: int) -> np.ndarray:
        """(frequency sets + components, bins) masks of the plan frequencies, tolerance
        set by length: the rows of the sets, then those of their components."""
        key = min(n_samples, _SEG_NFFT) // 80
        cached = self._mask_cache.get(key)
        if cached is not None:
            return cached
        res = self.sr / max(key * 80, 80)
        bins = np.arange(_SEG_NFFT // 2 + 1) * self.sr / _SEG_NFFT
        # The tolerance plus the main lobe of the window (2 bins of the segment length).
        tol = self.comp_f * self.cfg.freq_tol_pct / 100.0 + 2.0 * res
        near = np.abs(bins[None, :] - self.comp_f[:, None]) <= tol[:, None]
        comp_masks = near.astype(np.float64)
        masks = np.zeros((len(self.fsets), len(bins)), dtype=np.float64)
        np.maximum.at(masks, self.comp_owner, comp_masks)
        both = np.concatenate([masks, comp_masks])
        both.flags.writeable = False
        self._mask_cache[key] = both
        return both


_TABLES: dict[tuple, tuple[dict[str, CountryPlan], _Tables]] = {}


def _tables(plans: dict[str, CountryPlan], config: ToneConfig, sr: int) -> _Tables:
    """Shared :class:`_Tables` for these plans and settings (one per process, not per call)."""
    key = (id(plans), tuple(config.countries), config.fax, config.cadence_tol_pct,
           config.cadence_tol_ms, config.ringback_off_s, config.freq_tol_pct, sr)
    hit = _TABLES.get(key)
    if hit is not None and hit[0] is plans:
        return hit[1]
    if len(_TABLES) >= 16:
        _TABLES.pop(next(iter(_TABLES)))
    tables = _Tables(build_templates(plans, config.countries, fax=config.fax), config, sr)
    _TABLES[key] = (plans, tables)
    return tables


class _Matcher:
    """All (template, phase) hypotheses of one stream, checked segment by segment."""

    def __init__(self, tables: _Tables) -> None:
        self.tables = tables
        self.templates = tables.templates
        self.cfg = tables.cfg
        self.fsets = tables.fsets
        self.masks = tables.masks
        self.comp_owner = tables.comp_owner
        self.comp_starts = tables.comp_starts
        self.h_t, self.h_rot, self.h_m = tables.h_t, tables.h_rot, tables.h_m
        self.h_kind, self.h_need = tables.h_kind, tables.h_need
        self.h_group_kind = tables.h_group_kind
        self.h_on_cap, self.h_off_cap = tables.h_on_cap, tables.h_off_cap
        self.lo, self.hi, self.nominal, self.fs_id = (
            tables.lo, tables.hi, tables.nominal, tables.fs_id)
        self.min_span = tables.min_span
        self.reset()

    def reset(self) -> None:
        """Start a new run: every hypothesis is live again."""
        n = len(self.h_t)
        self.live = np.arange(n)
        self.ev = np.zeros(n)
        self.err = np.zeros(n)
        self.pur = np.zeros(n)
        self.n_on = 0
        self.i = 0
        self.first_sat: float | None = None
        self.run_start = 0.0
        self.first_whole = False
        self.long_pause = False  # the last closed part was a pause of full weight
        self.first_on_s = 0.0  # length of the first on part heard
        self._step_cache()

    def _step_cache(self) -> None:
        """Per live hypothesis: its template, expected step and that step's bounds."""
        live = self.live
        self.t_live = self.h_t[live]
        self.kind_live = self.h_kind[live]
        self.group_kind_live = self.h_group_kind[live]
        steps = (self.h_rot[live] + self.i) % self.h_m[live]
        self.lo_live = self.lo[self.t_live, steps]
        self.hi_live = self.hi[self.t_live, steps]
        self.nom_live = self.nominal[self.t_live, steps]
        self.fid_live = self.fs_id[self.t_live, steps]
        self.burst_live = self.tables.burst[self.t_live, steps]
        self.burst_times = self.burst_live[np.isfinite(self.burst_live)]
        self.lone_live = self.tables.lone[self.t_live, steps]
        self.lone_times = self.lone_live[np.isfinite(self.lone_live)]
        self.on_cap_live = self.h_on_cap[live]
        self.off_cap_live = self.h_off_cap[live]

    def fork(self) -> _Matcher:
        """A copy whose changes leave this one as it is (the tables stay shared)."""
        twin = copy.copy(self)
        twin.ev, twin.err, twin.pur = self.ev.copy(), self.err.copy(), self.pur.copy()
        return twin

    def plain_live(self, *, ahead: int = 0) -> tuple[float, ...]:
        """The frequencies the live hypotheses expect ``ahead`` steps on when each is one
        plain frequency (no second component to beat with, no AM sidebands, not a
        pause); ``()`` otherwise."""
        if not len(self.live):
            return ()
        if ahead:
            steps = (self.h_rot[self.live] + self.i + ahead) % self.h_m[self.live]
            fids = self.fs_id[self.t_live, steps]
        else:
            fids = self.fid_live
        if (fids < 0).any():
            return ()
        sets = [self.fsets[f] for f in set(fids.tolist())]
        if any(len(c) != 1 for c in sets):
            return ()
        return tuple(sorted(c[0] for c in sets))

    @property
    def any_live(self) -> bool:
        return len(self.live) > 0

    def close(self, seg: _Seg) -> None:
        """Check a finished segment against every live hypothesis; drop the failures."""
        dur = seg.end - seg.start  # type: ignore[operator]
        lo, hi = self.lo_live, self.hi_live
        if self.i == 0 and not self.first_whole:
            # The stream may have begun inside this on part: only its end is known.
            ok = dur <= hi
            self.ev += np.where(dur >= np.minimum(lo, self.on_cap_live), 1.0, 0.5) * _weight(
                dur, seg.on)
        else:
            ok = (dur >= lo) & (dur <= hi)
            self.ev += _weight(dur, seg.on)
            self.err += np.abs(dur - self.nom_live) / self.nom_live
        if seg.on:
            if self.i == 0:
                self.first_on_s = dur
            p = self._purity(seg)
            ok &= p >= self.cfg.match_purity
            self.pur += p
            self.n_on += 1
        self.live, self.ev, self.err, self.pur = (
            self.live[ok], self.ev[ok], self.err[ok], self.pur[ok])
        self.i += 1
        self.long_pause = not seg.on and _weight(dur, False) == 1.0
        self._step_cache()

    def _purity(self, seg: _Seg) -> np.ndarray:
        """Share of the on part's energy at each live hypothesis' frequencies (0 if off)."""
        if seg.purity is None:
            return np.zeros(len(self.live))
        return np.where(self.fid_live >= 0, seg.purity[np.maximum(self.fid_live, 0)], 0.0)

    def open_state(self, seg: _Seg, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Masks over the live hypotheses: consistent with the open part, and satisfied."""
        e = now - seg.start
        alive = e <= self.hi_live
        if seg.on:
            if seg.purity is not None:
                alive &= self._purity(seg) >= self.cfg.match_purity
            lo_eff = np.minimum(self.lo_live, self.on_cap_live)
        else:
            lo_eff = np.minimum(self.lo_live, self.off_cap_live)
        if now - self.run_start < self.min_span:
            return alive, np.zeros_like(alive)
        bonus = (e >= lo_eff) * _weight(e, seg.on) if self.i > 0 or self.first_whole else 0.0
        if seg.on and seg.purity is not None and self.i > 0:
            # A burst at the plan's frequency ending a pause of the plan's length counts
            # as soon as its frequency is known, in full after a long pause: after a burst
            # cut by the stream start, waiting for its full weight would cost a whole cap.
            bonus = np.maximum(bonus, 1.0 if self.long_pause else 0.5)
        sat = alive & (self.ev + bonus >= self.h_need[self.live])
        if seg.on and seg.whole_purity and seg.steady:
            # Only when no tone of another kind is left (Cuba's 2-s ringback has the same
            # frequencies as Burkina Faso's congestion): a burst proves no cadence.
            burst = alive & (e >= self.burst_live)
            if burst.any() and (self.kind_live[alive] == self.kind_live[burst][0]).all():
                sat |= burst
        if self.lone_pause(seg):
            lone = alive & (e >= self.lone_live)
            if lone.any() and (self.kind_live[alive] == self.kind_live[lone][0]).all():
                sat |= lone
        return alive, sat

    def lone_pause(self, seg: _Seg) -> bool:
        """Whether ``seg`` is the pause after a burst cut by the stream start of which
        at least ``_LONE_BURST_MIN_S`` was heard (see ``_LONE_PAUSE_S``)."""
        return (not seg.on and self.i == 1 and not self.first_whole
                and self.first_on_s >= _LONE_BURST_MIN_S)

    def next_check(self, seg: _Seg, now: float) -> float:
        """Earliest time at which :meth:`open_state` can change, for a part still open."""
        cap = self.on_cap_live if seg.on else self.off_cap_live
        # An on part whose frequencies are not yet known changes state when they are:
        # a returning burst may then complete the evidence (Paraguay's busy after its
        # pause rules out ringback), so batching must not hold that check back.
        purity_at = [seg.start + _PURITY_AT_S] if seg.on and seg.purity is None else []
        # Just past each threshold: a check landing exactly on one can round below it
        # and would then wait for the part to end.
        times = np.concatenate([np.minimum(self.lo_live, cap) + (seg.start + 1e-6),
                                self.hi_live + (seg.start + 1e-6),
                                self.burst_times + (seg.start + 1e-6) if seg.on else [],
                                self.lone_times + (seg.start + 1e-6)
                                if self.lone_pause(seg) else [],
                                [self.run_start + self.min_span], purity_at,
                                # where the open part's weight becomes full (_weight)
                                [seg.start + (_STRONG_ON_S if seg.on else _STRONG_OFF_S)
                                 + 1e-6]])
        later = times[times > now]
        return float(later.min()) if len(later) else np.inf

    def score(self, pos: int) -> float:
        """Timing fit times frequency purity of the live hypothesis at ``pos``, in [0, 1]."""
        n_dur = max(self.i - 1, 1)
        timing = max(0.0, 1.0 - float(self.err[pos]) / n_dur)
        freq = float(self.pur[pos]) / self.n_on if self.n_on else 0.0
        return timing * freq


def _fit_share(x: np.ndarray, comps: tuple[float, ...], sr: int, tol_pct: float = 0.0) -> float:
    """Share of ``x``'s energy explained by sinusoids at ``comps`` (a least-squares fit of
    each one's cosine and sine), best over the components all shifted by ``-tol_pct``, 0 or
    ``+tol_pct`` percent: a carrier's tone may be off its plan by that much, which over a
    few tens of ms would cost the fit at the exact frequency a good part of its share."""
    t = np.arange(len(x)) / sr
    total = float(np.dot(x, x)) + 1e-30
    best = 0.0
    shifts = (1.0,) if tol_pct <= 0 else (1.0, 1.0 - tol_pct / 100, 1.0 + tol_pct / 100)
    for r in shifts:
        arg = 2 * np.pi * t[:, None] * (np.asarray(comps) * r)[None, :]
        basis = np.concatenate([np.cos(arg), np.sin(arg)], axis=1)
        coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
        fit = basis @ coef
        best = max(best, float(np.dot(fit, fit)) / total)
    return best


def _plain_tone(x: np.ndarray, freqs: tuple[float, ...], sr: int) -> bool:
    """Whether a sinusoid at one of ``freqs`` explains ``_TAIL_PURITY`` of ``x``'s energy
    (a few ms cannot tell 400 from 425 Hz, which is not asked: only that the samples are
    a tone like the expected one)."""
    return any(_fit_share(x, (f,), sr) >= _TAIL_PURITY for f in freqs)


def _level_db(mean_square: float | np.ndarray) -> float | np.ndarray:
    """Level in dBFS of samples with this mean square (float or array): a full-scale sine
    reads 0 dB, as the tone plans' levels do. (Doubling is exact, so where the division
    by the length happens does not change the number.)"""
    return 10.0 * np.log10(2.0 * mean_square + 1e-20)


@functools.lru_cache(maxsize=64)
def _hann(n: int) -> np.ndarray:
    """A periodic Hann window (cached: segment lengths repeat)."""
    w = np.hanning(n + 1)[:-1]
    w.flags.writeable = False
    return w


def _at(event: ToneEvent, now: float) -> ToneEvent:
    return ToneEvent(
        kind=event.kind,
        start_s=event.start_s,
        detected_s=max(event.detected_s, now),
        country=event.country,
        sit_code=event.sit_code,
        score=event.score,
    )


class ToneDetector:
    """Streaming detector of ringback, busy, congestion, SIT and fax tones.

    Parameters
    ----------
    plans : dict of CountryPlan, optional
        Tone plans; by default :func:`agent.tones.plan.load_tone_plans`.
    config : ToneConfig
        Thresholds and the countries to consider.
    sr : int
        Sample rate of the pushed audio.

    Examples
    --------
    >>> from agent.tones.synth import render
    >>> det = ToneDetector(config=ToneConfig(countries=["us"]))
    >>> busy = render(det.plans["us"].busy[0], duration_s=3.0, level_dbfs=-20)
    >>> [e.kind for e in det.push(busy)]
    ['busy']
    """

    def __init__(
        self,
        plans: dict[str, CountryPlan] | None = None,
        *,
        config: ToneConfig | None = None,
        sr: int = SAMPLE_RATE,
    ) -> None:
        self.plans = plans if plans is not None else load_tone_plans()
        config = config if config is not None else ToneConfig()
        self.config = config
        self.sr = sr
        self.frame = int(round(FRAME_S * sr))
        self.hop = int(round(HOP_S * sr))
        self.nfft = 1 << (self.frame - 1).bit_length()
        self.window = np.hanning(self.frame + 1)[:-1].astype(np.float64)
        self.wnorm = float(np.sum(self.window**2))
        freqs = np.arange(self.nfft // 2 + 1) * sr / self.nfft
        self.band = (int(np.searchsorted(freqs, 150.0)), int(np.searchsorted(freqs, 3700.0)))
        self.bin_hz = sr / self.nfft
        # Frequency runs tracked frame by frame: SIT segments 1-3, then fax CED (band 4).
        # A disabled band becomes empty but keeps its place (the edges stay sorted).
        bands = [b if config.sit else (b[0], b[0]) for b in _SIT_BANDS]
        bands.append(_CED_BAND if config.fax else (_CED_BAND[0], _CED_BAND[0]))
        self.band_edges = np.array([f for b in bands for f in b])
        self.matcher = _Matcher(_tables(self.plans, config, sr))
        self.templates = self.matcher.templates
        self.hist_len = int(4 * sr)  # long enough for the middle of a 4-s SIT or ringback part
        seg_freqs = np.arange(_SEG_NFFT // 2 + 1) * sr / _SEG_NFFT
        self.seg_band = (int(np.searchsorted(seg_freqs, 100.0)),
                         int(np.searchsorted(seg_freqs, 3800.0)))
        self.reset()

    # -- state ------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything: the next sample pushed is time 0."""
        self.pending = np.zeros(0, dtype=np.float64)
        self.last_k = (-10, -10)
        self.n_frames = 0
        self.n_in = 0
        self.hist = np.zeros(self.hist_len, dtype=np.float32)
        self.hist_pos = 0
        self._run_reset()
        self.wait_quiet = False
        self.onset: list[tuple[float, float]] = []
        self.band_run: _BandRun | None = None
        self.band_prev: list[_BandRun] = []
        self.sit_emitted_at = -1.0
        self.ced_emitted = False

    def _run_reset(self) -> None:
        self.run = False
        self.cur: _Seg | None = None
        self.ref_db = -np.inf
        self.seg_levels: list[float] = []
        self.pend_levels: list[float] = []
        self.pend_label: str | None = None
        self.pend_start = 0.0
        self.pend_count = 0
        self.other_count = 0
        self.emitted = False
        self.check_at = 0.0
        self.matcher.reset()

    # -- input ------------------------------------------------------------------------
    def push(self, samples: np.ndarray) -> list[ToneEvent]:
        """Feed the next chunk of audio (any length); return the tones recognised so far.

        Frames are analysed in batches of at least 80 ms, so an event may come back up to
        one batch after its evidence arrived (except where a decision may be due, see
        :meth:`_urgent`); ``detected_s`` is the stream time of the push that returns it.
        """
        x = np.asarray(samples, dtype=np.float64).ravel()
        self._remember(x)
        self.pending = np.concatenate([self.pending, x]) if len(self.pending) else x
        ready = len(self.pending) - self.frame
        n_new = 0 if ready < 0 else 1 + ready // self.hop
        if n_new < _MIN_BATCH and not (n_new and self._urgent(x, n_new)):
            return []
        events: list[ToneEvent] = []
        if n_new:
            frames = np.lib.stride_tricks.as_strided(
                self.pending, shape=(n_new, self.frame), strides=(self.hop * 8, 8),
                writeable=False)
            events = self._frames(frames)
            self.pending = self.pending[n_new * self.hop :].copy()
        now = self.n_in / self.sr
        tail = self._tail_end(now)
        if tail is not None:
            events.append(tail)
        return [_at(e, now) for e in events]

    def _tail_end(self, now: float) -> ToneEvent | None:
        """Decide from the newest samples when only the end of the open part is awaited.

        A satisfied tone waiting for a rival to be ruled out may need just the end of
        the current part: of a burst (Suriname's 500-ms busy burst against its
        ringback's 15 s) or of a pause (Laos's busy pause against its ringback's 4 s).
        Frames see it late: a frame reads quiet 22 ms or more after a tone stops, a
        pause is confirmed over 5 frames against the nulls of beating or AM tones and a
        burst over 3. A tone of one plain frequency has no nulls, so such an end is
        read from ``_TAIL_BLOCK_S`` blocks of the newest samples once the newest block is
        quiet, or holds that tone again. It is kept only if it decides
        (:meth:`_try_boundary`).
        """
        cur = self.cur
        m = self.matcher
        if not self.run or cur is None or self.emitted or m.first_sat is None:
            return None
        freqs = m.plain_live(ahead=0 if cur.on else 1)
        if not freqs:
            return None
        block = int(_TAIL_BLOCK_S * self.sr)
        x = self._samples(now - FRAME_S, now, int(FRAME_S * self.sr)).astype(np.float64)
        n = len(x) // block
        if n == 0:
            return None
        x = x[len(x) - n * block :]
        level = _level_db(np.mean(x.reshape(n, block) ** 2, axis=1))
        if cur.on:
            new = level <= self.ref_db - self.config.off_drop_db
        else:
            new = level >= self.ref_db - 8.0
        run = n if new.all() else n - 1 - int(np.flatnonzero(~new)[-1])
        if run == 0:
            return None
        # The oldest block of a returning tone's run may hold its first samples after
        # noise, which a sinusoid fitted over the whole run explains only in part: the
        # newest blocks are fitted alone too.
        if not cur.on and not any(_plain_tone(x[-k * block :], freqs, self.sr)
                                  for k in range(run, 0, -1)):
            return None
        if self.pend_label == ("off" if cur.on else "on"):
            at = self.pend_start - (FRAME_S / 2 if cur.on else 0.0)
        else:
            # Where the frames will put it, so that a part is measured alike either way:
            # half a frame before the first frame that reads quiet, or at the first frame
            # that reads the tone.
            edge = now - run * block / self.sr
            lag = _FRAME_QUIET_AFTER_S if cur.on else -_FRAME_TONE_BEFORE_S
            k = np.ceil(((edge + lag) * self.sr - self.frame / 2) / self.hop)
            at = (k * self.hop + self.frame / 2) / self.sr - (FRAME_S / 2 if cur.on else 0.0)
        if at <= cur.start:
            return None
        return self._try_boundary(at, not cur.on, now, now)

    def _try_boundary(self, at: float, to_on: bool, t: float, now: float) -> ToneEvent | None:
        """Close the open part at ``at`` ahead of its confirmation, if that decides.

        Used while a satisfied tone only waits for a rival to be ruled out: when closing
        the part here emits the tone, the closure stands; otherwise every change is
        undone and the frames confirm the boundary as usual, so evidence read early
        never changes what is decided, only when.
        """
        saved = {k: getattr(self, k) for k in _RUN_STATE}
        assert self.cur is not None
        self.cur = dataclasses.replace(self.cur)
        self.matcher = self.matcher.fork()
        self._boundary(at, to_on)
        ev = self._evaluate(t, now) if self.run else None
        if ev is None:
            for k, v in saved.items():
                setattr(self, k, v)
        return ev

    def _urgent(self, x: np.ndarray, n_new: int) -> bool:
        """Whether a decision may be due in the ``n_new`` frames ready: then they are
        analysed at once rather than in a batch, which would add up to 80 ms to busy and
        congestion decisions. That is when a tone one part short of its evidence (or a
        pause after a cut burst, see ``_LONE_PAUSE_S``) reaches its next check, or when
        the newest samples may end the open part of a cadence while a satisfied tone
        waits for a rival to be ruled out."""
        if not self.run or self.cur is None or self.emitted or not len(x):
            return False
        m = self.matcher
        if m.first_sat is None:
            newest = ((self.n_frames + n_new - 1) * self.hop + self.frame / 2) / self.sr
            if newest < self.check_at or not len(m.ev):
                return False
            return float(m.ev.max()) >= 1.0 or (m.lone_pause(self.cur) and len(m.lone_times) > 0)
        if self.pend_label is not None or m.plain_live(ahead=0 if self.cur.on else 1):
            # A change being confirmed, or a plain part whose end _tail_end may read.
            return True
        level = _level_db(float(np.dot(x, x)) / len(x))
        if self.cur.on:
            return level <= self.ref_db - self.config.off_drop_db
        return level >= self.ref_db - 8.0

    def _remember(self, x: np.ndarray) -> None:
        """Keep the last few seconds in a ring buffer for the long per-segment FFTs."""
        n = len(x)
        if n >= self.hist_len:
            self.hist[:] = x[-self.hist_len :]
            self.hist_pos = 0
        else:
            end = self.hist_pos + n
            if end <= self.hist_len:
                self.hist[self.hist_pos : end] = x
            else:
                k = self.hist_len - self.hist_pos
                self.hist[self.hist_pos :] = x[:k]
                self.hist[: n - k] = x[k:]
            self.hist_pos = end % self.hist_len
        self.n_in += n

    def _samples(self, t0: float, t1: float, limit: int) -> np.ndarray:
        """Samples between times t0 and t1 (seconds since reset), at most ``limit`` centred."""
        a, b = int(round(t0 * self.sr)), int(round(t1 * self.sr))
        if b - a > limit:
            # The middle of the span or, when that has left the buffer (Suriname's 15-s
            # ringback burst), its newest stretch still held.
            a = max((a + b) // 2 - limit // 2, self.n_in - self.hist_len)
            b = min(a + limit, b)
        a, b = max(a, self.n_in - self.hist_len, 0), min(b, self.n_in)
        if b <= a:
            return np.zeros(0)
        # Absolute sample i lives at (i - n_in + hist_pos) mod hist_len.
        idx = np.arange(a - self.n_in, b - self.n_in) + self.hist_pos
        return self.hist.take(idx, mode="wrap")

    # -- stage 1: frames --------------------------------------------------------------
    def _frames(self, frames: np.ndarray) -> list[ToneEvent]:
        base = self.n_frames
        n = len(frames)
        self.n_frames += n
        wf = frames * self.window
        level = _level_db(np.einsum("ij,ij->i", wf, wf) / self.wnorm)
        loud = level >= self.config.min_level_dbfs
        idle = not (self.run or self.wait_quiet or self.onset) and self.band_run is None
        if idle and not loud.any():
            return []
        spec = np.fft.rfft(wf, self.nfft)
        power = spec.real**2 + spec.imag**2
        total = power[:, 1:].sum(axis=1) + 1e-30
        lo, hi = self.band
        pb = power[:, lo:hi]
        # Peaks are searched away from the band edges so that +-2 bins stay inside it.
        k1 = pb[:, 2:-2].argmax(axis=1) + 2
        rows = np.arange(n)[:, None]
        near = k1[:, None] + _OFFS
        e1 = pb[rows, near]
        around_k1 = e1[:, 1:4].T.copy()
        pb[rows, near] = 0.0
        k2 = pb[:, 2:-2].argmax(axis=1) + 2
        e2 = pb[rows, k2[:, None] + _OFFS]
        purity = (e1.sum(axis=1) + e2.sum(axis=1)) / total
        tonal = (purity >= self.config.frame_purity) & loud
        # A tone starts only on frames whose peak holds still (speech harmonics glide);
        # the two components of a dual tone may take turns as the stronger one.
        prev1 = np.concatenate([[self.last_k[0]], k1[:-1]])
        prev2 = np.concatenate([[self.last_k[1]], k2[:-1]])
        self.last_k = (int(k1[-1]), int(k2[-1]))
        if idle and not tonal.any():
            return []
        steady = tonal & (np.minimum(np.abs(k1 - prev1), np.abs(k1 - prev2)) <= 1)
        # Parabolic interpolation of the log spectrum around the main peak.
        la, lb, lc = np.log(around_k1 + 1e-30)
        den = la - 2.0 * lb + lc
        delta = np.where(den < 0, 0.5 * (la - lc) / np.where(den < 0, den, -1.0), 0.0)
        peak_hz = (lo + k1 + delta) * self.bin_hz
        # Inside band b (1-based) the edge index is odd: 2b - 1.
        edge = np.searchsorted(self.band_edges, peak_hz)
        band = np.where(tonal & (edge % 2 == 1), (edge + 1) // 2, 0)
        t0 = (base * self.hop + self.frame / 2) / self.sr
        times = t0 + np.arange(n) * (self.hop / self.sr)
        ends = times + self.frame / 2 / self.sr
        events = self._cadence_frames(times, ends, level, tonal, steady)
        events += self._band_frames(times, ends, band)
        events.sort(key=lambda e: e.detected_s)
        return events

    def _cadence_frames(self, times: np.ndarray, ends: np.ndarray, level: np.ndarray,
                        tonal: np.ndarray, steady: np.ndarray) -> list[ToneEvent]:
        """Run the cadence state machine, jumping over frames that cannot change it."""
        events: list[ToneEvent] = []
        n = len(times)
        i = 0
        while i < n:
            j = self._quiet_until(i, times, level, tonal, steady)
            if j > i:
                i = j
                continue
            ev = self._cadence_frame(float(times[i]), float(ends[i]), float(level[i]),
                                     bool(tonal[i]), bool(steady[i]))
            if ev is not None:
                events.append(ev)
            i += 1
        return events

    def _quiet_until(self, i: int, times: np.ndarray, level: np.ndarray, tonal: np.ndarray,
                     steady: np.ndarray) -> int:
        """First frame from ``i`` on that the state machine must see (``i`` if unsure)."""
        if not self.run:
            if self.onset:
                return i
            wake = ~tonal[i:] if self.wait_quiet else steady[i:]
            return i + int(np.argmax(wake)) if wake.any() else len(times)
        if self.pend_label is not None or self.other_count or self.cur is None:
            return i
        # Most calls come while the state is changing: answer those without numpy.
        lv_i, tonal_i = float(level[i]), bool(tonal[i])
        on_i = tonal_i and lv_i >= self.ref_db - 8.0
        off_i = lv_i <= self.ref_db - self.config.off_drop_db
        if self.cur.on:
            same_i = on_i or (tonal_i and not off_i)
        else:
            same_i = off_i or (tonal_i and not on_i)
        if not same_i or times[i] >= self.check_at:
            return i
        lv = level[i:]
        on = tonal[i:] & (lv >= self.ref_db - 8.0)
        off = lv <= self.ref_db - self.config.off_drop_db
        same = (on | ~(off | ~tonal[i:])) if self.cur.on else (off | (tonal[i:] & ~on))
        same &= times[i:] < self.check_at
        if self.cur.on and self.cur.purity is None:
            same &= times[i:] < self.cur.start + _PURITY_AT_S
        if same.all():
            j = len(times)
        else:
            j = i + int(np.argmin(same))
        if self.cur.on and j > i:
            self.seg_levels.extend(level[i:j][on[: j - i]].tolist())
        return j

    def _band_frames(self, times: np.ndarray, ends: np.ndarray,
                     band: np.ndarray) -> list[ToneEvent]:
        events: list[ToneEvent] = []
        active = np.flatnonzero(band > 0)
        if self.band_run is None and not len(active):
            return events
        start = 0 if self.band_run is not None else int(active[0])
        for i in range(start, len(times)):
            if self.band_run is None and not band[i]:
                continue
            ev = self._band_frame(float(times[i]), float(ends[i]), int(band[i]))
            if ev is not None:
                events.append(ev)
        return events

    # -- stage 2: cadence -------------------------------------------------------------
    def _cadence_frame(self, t: float, now: float, level: float, tonal: bool,
                       steady: bool) -> ToneEvent | None:
        if not self.run:
            if self.wait_quiet:
                if not tonal:
                    self.wait_quiet = False
                return None
            if steady:
                self.onset.append((t, level))
                if len(self.onset) >= _ONSET_FRAMES:
                    self._start_run()
            else:
                self.onset = []
            return None
        assert self.cur is not None
        if tonal and level >= self.ref_db - 8.0:
            label = "on"
        elif level <= self.ref_db - self.config.off_drop_db:
            label = "off"
        elif not tonal:
            label = "other"
        else:
            label = "edge"
        if label == "other":
            self.other_count += 1
            if self.other_count >= 5:
                self._run_reset()
                return None
        else:
            self.other_count = 0
        cur_label = "on" if self.cur.on else "off"
        if label == "on" and self.cur.on:
            self.seg_levels.append(level)
        if label == cur_label:
            self.pend_label, self.pend_count = None, 0
        elif label in ("on", "off"):
            if self.pend_label != label:
                self.pend_label, self.pend_start, self.pend_count = label, t, 0
                self.pend_levels = []
            self.pend_count += 1
            if label == "on":
                self.pend_levels.append(level)
            # A pause must last 50 ms: shorter dips are the nulls of beating or AM tones.
            need = 5 if label == "off" else 3
            if (label == "on" and self.pend_count < need and self.matcher.first_sat is not None
                    and not self.emitted):
                # A satisfied tone waiting for its rival may be settled by the pause ending
                # here (Paraguay's busy: the next burst rules out the ringback's 4-s pause);
                # the two more frames of confirmation would cost 20 ms past 1.5 s.
                ev = self._try_boundary(self.pend_start, True, t, now)
                if ev is not None:
                    return ev
            if self.pend_count >= need:
                # Frames straddling the end of a tone still read as "on" (the 32-ms window
                # reaches back into it): move the end back by half a frame.
                at = self.pend_start - (FRAME_S / 2 if label == "off" else 0.0)
                self._boundary(at, label == "on")
                if not self.run:
                    return None
        return self._evaluate(t, now)

    def _start_run(self) -> None:
        self._run_reset()
        self.run = True
        start = self.onset[0][0]
        self.ref_db = max(lv for _, lv in self.onset)
        self.seg_levels = [lv for _, lv in self.onset]
        self.cur = _Seg(on=True, start=start)
        self.matcher.run_start = start
        self.onset = []

    def _boundary(self, at: float, to_on: bool) -> None:
        seg = self.cur
        assert seg is not None
        seg.end = at
        if seg.on:
            self._seg_purity(seg, at)
            # The on part's typical level: off parts are judged against it.
            if self.seg_levels:
                self.ref_db = float(np.median(self.seg_levels))
        self.pend_label, self.pend_count = None, 0
        self.matcher.close(seg)
        self.cur = _Seg(on=to_on, start=at)
        if to_on:
            self.seg_levels = list(self.pend_levels)
        if not self.matcher.any_live:
            self._restart()
        else:
            self.check_at = 0.0

    def _restart(self) -> None:
        """No hypothesis survived: start afresh from the current on part, if any."""
        cur = self.cur
        assert cur is not None
        ref = self.ref_db
        self._run_reset()
        if cur.on:
            self.run = True
            self.cur = cur
            self.ref_db = ref
            self.matcher.run_start = cur.start
            # It began inside the stream, after a pause: it is whole, unlike the first on
            # part of a stream, which may be the tail of a part cut by the stream start.
            self.matcher.first_whole = True
            cur.purity = None

    def _seg_purity(self, seg: _Seg, end: float) -> None:
        margin = FRAME_S / 2
        x = self._samples(seg.start + margin, end - margin, _SEG_NFFT)
        if len(x) < int(0.04 * self.sr):
            seg.purity = np.zeros(len(self.matcher.fsets))
            return
        p = np.abs(np.fft.rfft(x * _hann(len(x)), _SEG_NFFT)) ** 2
        lo, hi = self.seg_band
        total = float(np.sum(p[lo:hi])) + 1e-30
        m = self.matcher
        energy = m.masks(len(x)) @ p
        set_energy, comp_energy = energy[: len(m.fsets)], energy[len(m.fsets) :]
        # Every component must be there: a single 400 Hz tone is all "at the frequencies"
        # of 400+440, yet it is not that tone.
        share = comp_energy / (set_energy[m.comp_owner] + 1e-30)
        whole = np.minimum.reduceat(share, m.comp_starts) >= _MIN_COMPONENT_SHARE
        seg.purity = np.where(whole, set_energy / total, 0.0)

    def _evaluate(self, t: float, now: float) -> ToneEvent | None:
        """Check the open part at frame time ``t``; ``now`` is the newest sample's time."""
        seg = self.cur
        assert seg is not None
        # While a change of state is being confirmed, the open part ended where it began.
        at = self.pend_start if self.pend_label is not None else t
        if seg.on and seg.purity is None and at - seg.start >= _PURITY_AT_S:
            self._seg_purity(seg, at)
            self.check_at = 0.0
        if (seg.on and not seg.whole_purity and at - seg.start >= _LONG_BURST_S
                and len(self.matcher.burst_times)):
            # Deciding from the burst alone: measure it again on its middle 256 ms, not
            # only on the first 120 ms.
            self._seg_purity(seg, at)
            seg.whole_purity = True
            n = int(_STEADY_SPAN_S / HOP_S)
            levels = self.seg_levels
            seg.steady = len(levels) >= 2 * n and abs(
                float(np.median(levels[:n])) - float(np.median(levels[-n:]))) <= _STEADY_DB
            self.check_at = 0.0
        if at < self.check_at:
            return None
        m = self.matcher
        alive, sat = m.open_state(seg, at)
        if not alive.any():
            # An on part longer than any plan allows (or at no plan's frequency) must end
            # before a new tone can start; a pause longer than any plan ends the run.
            self._run_reset()
            self.wait_quiet = seg.on
            return None
        self.check_at = m.next_check(seg, at)
        if self.emitted or not sat.any():
            m.first_sat = None
            return None
        if m.first_sat is None:
            m.first_sat = at
        returning = self._returning(seg, sat, now)
        if returning is not None:
            sat &= returning
            if not sat.any():
                self.check_at = min(self.check_at, at + 1e-6)  # the next frame may fit
                return None
        if not self._settled(alive, sat) and at - m.first_sat < self.config.patience_s:
            # A rival kind is still possible: give it a little time to be ruled out.
            self.check_at = min(self.check_at, m.first_sat + self.config.patience_s)
            return None
        return self._emit(sat, now)

    def _returning(self, seg: _Seg, sat: np.ndarray, now: float) -> np.ndarray | None:
        """For an on part after a pause whose frequencies the long FFT has not measured
        yet: which of the ``sat`` hypotheses its first samples fit (see
        ``_RETURN_CONFIRM_S``); ``None`` for any other part."""
        m = self.matcher
        if not seg.on or seg.purity is not None or m.i == 0:
            return None
        fids = m.fid_live
        fits = np.zeros(len(fids), dtype=bool)
        # The tone starts within 5 ms of the part's start (the frames' convention, see
        # _FRAME_TONE_BEFORE_S): find where in the samples, so that neither the pause
        # before it nor the frame grid shortens what is fitted.
        early = seg.start - _FRAME_TONE_BEFORE_S
        x = self._samples(early, now, int((now - early) * self.sr) + 1).astype(np.float64)
        w = int(_TAIL_BLOCK_S * self.sr)
        if len(x) <= w:
            return fits
        energy = np.cumsum(np.concatenate([[0.0], x * x]))
        level = _level_db((energy[w:] - energy[:-w]) / w)
        # A 4-ms window whose last quarter holds the tone reads 6 dB below it; the tone
        # is taken to start 1 ms before that quarter (a ms of pause costs the fit little).
        up = np.flatnonzero(level >= self.ref_db - 6.0)
        if not len(up):
            return fits
        first = int(up[0]) + w // 2
        x = x[first : first + int(_RETURN_FIT_MAX_S * self.sr)]
        if len(x) < int(_RETURN_CONFIRM_S * self.sr):
            return fits
        for fid in set(fids[sat & (fids >= 0)].tolist()):
            share = _fit_share(x, m.fsets[fid], self.sr, self.config.freq_tol_pct)
            fits |= (fids == fid) & (share >= _TAIL_PURITY)
        return fits

    def _settled(self, alive: np.ndarray, sat: np.ndarray) -> bool:
        """True when one kind is left; or when every rival kind is satisfied too and
        either they are twins that no evidence will ever separate (the fit picks one) or
        they fit clearly worse (Denmark's busy 250/250 against its congestion 200/200)."""
        m = self.matcher
        sat_kinds = set(m.kind_live[sat].tolist())
        if set(m.kind_live[alive].tolist()) != sat_kinds:
            return False
        if len(sat_kinds) == 1 or len(set(m.group_kind_live[sat].tolist())) == 1:
            return True
        best: dict[int, float] = {}
        for pos in np.flatnonzero(sat):
            k = int(m.kind_live[pos])
            best[k] = max(best.get(k, 0.0), m.score(int(pos)))
        top, second = sorted(best.values(), reverse=True)[:2]
        return top - second >= _SCORE_MARGIN

    def _emit(self, sat: np.ndarray, now: float) -> ToneEvent:
        m = self.matcher
        idx = np.flatnonzero(sat)
        scores = np.array([m.score(int(h)) for h in idx])
        # Equal evidence for two kinds (a cadence that is busy in one country and
        # congestion in another): the kind earlier in _KIND_ORDER wins.
        close = idx[scores >= scores.max() - 0.05]
        kind = int(m.kind_live[close].min())
        pool = idx[m.kind_live[idx] == kind]
        best = int(pool[int(np.argmax([m.score(int(h)) for h in pool]))])
        tmpl = m.templates[m.t_live[best]]
        self.emitted = True
        return ToneEvent(
            kind=tmpl.kind,
            start_s=m.run_start,
            detected_s=now,
            country=tmpl.countries[0] if tmpl.countries else None,
            score=m.score(best),
        )

    # -- stage 3: SIT and CED ---------------------------------------------------------
    def _band_frame(self, t: float, now: float, band: int) -> ToneEvent | None:
        run = self.band_run
        if run is not None and (band != run.band and band != 0 or t - run.last > _SIT_GAP_S):
            self._close_band_run(run)
            run = self.band_run = None
        if band == 0:
            return None
        if run is None:
            run = self.band_run = _BandRun(band=band, start=t, last=t)
        run.last = t
        dur = run.last - run.start + HOP_S
        if band == 4 and not self.ced_emitted and dur >= self.config.ced_min_s:
            self.ced_emitted = True
            return ToneEvent(kind="fax_ced", start_s=run.start, detected_s=now, score=1.0)
        if band == 3 and dur >= _SIT_THIRD_S:
            return self._sit(run, now)
        if band == 2 and dur >= _SIT_EARLY_SECOND_S:
            return self._sit_early(run, now)
        return None

    def _close_band_run(self, run: _BandRun) -> None:
        if run.band == 4:
            self.ced_emitted = False
        self.band_prev = (self.band_prev + [run])[-2:]

    def _sit_early(self, second: _BandRun, now: float) -> ToneEvent | None:
        """An ITU SIT with a long first segment, from its first two segments."""
        if not self.band_prev:
            return None
        first = self.band_prev[-1]
        d1 = first.last - first.start + HOP_S
        if (first.band != 1 or self.sit_emitted_at >= first.start
                or second.start - first.last > _SIT_GAP_S + HOP_S
                or not _SIT_LONG_FIRST_S <= d1 <= _SIT_SEG_S[1]):
            return None
        self.sit_emitted_at = first.start
        return ToneEvent(kind="sit", start_s=first.start, detected_s=now, sit_code="ITU",
                         score=1.0)

    def _sit(self, third: _BandRun, now: float) -> ToneEvent | None:
        if len(self.band_prev) < 2:
            return None
        first, second = self.band_prev
        if (first.band, second.band) != (1, 2) or self.sit_emitted_at >= first.start:
            return None
        for a, b in ((first, second), (second, third)):
            if b.start - a.last > _SIT_GAP_S + HOP_S:
                return None
        d1 = first.last - first.start + HOP_S
        d2 = second.last - second.start + HOP_S
        if not (_SIT_SEG_S[0] <= d1 <= _SIT_SEG_S[1] and _SIT_SEG_S[0] <= d2 <= _SIT_SEG_S[1]):
            return None
        self.sit_emitted_at = first.start
        f1, f2, f3 = (self._run_freq(r) for r in (first, second, third))
        return ToneEvent(
            kind="sit",
            start_s=first.start,
            detected_s=now,
            sit_code=_sit_code(f1, f2, f3, d1, d2),
            score=1.0,
        )

    def _run_freq(self, run: _BandRun) -> float:
        margin = FRAME_S / 2
        x = self._samples(run.start + margin, run.last - margin + HOP_S, _SIT_NFFT)
        if len(x) < 64:
            return float("nan")
        p = np.abs(np.fft.rfft(x * _hann(len(x)), _SIT_NFFT)) ** 2
        k = int(np.argmax(p[1:-1])) + 1
        a, b, c = np.log(p[k - 1 : k + 2] + 1e-30)
        den = a - 2 * b + c
        delta = 0.5 * (a - c) / den if den < 0 else 0.0
        return float((k + delta) * self.sr / _SIT_NFFT)


def _sit_code(f1: float, f2: float, f3: float, d1: float, d2: float) -> str | None:
    """North-American SIT code from exact frequencies and durations, else ``ITU``."""

    def near(f: float, ref: float) -> bool:
        return abs(f - ref) <= ref * _NA_TOL

    hi1 = next((i == 1 for i, r in enumerate(_NA_F1) if near(f1, r)), None)
    hi2 = next((i == 1 for i, r in enumerate(_NA_F2) if near(f2, r)), None)
    if hi1 is None or hi2 is None or not near(f3, _NA_F3):
        return "ITU"
    key = (hi1, hi2, d1 > _NA_SHORT_LONG_S, d2 > _NA_SHORT_LONG_S)
    if key == (True, True, False, False):
        return None  # reserved for future use
    return _NA_CODES.get(key, "ITU")
