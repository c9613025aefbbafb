"""Cadence matching: every repeating plan tone, at every phase, checked part by part.

Tonal frames and quiet frames form on/off parts (segments; :class:`_Seg`). Every template
of :mod:`agent.tones.templates` is a cycle of on/off steps, and each hypothesis (template,
phase) is checked against each part as it closes: its duration within tolerance and, for
an on part, its energy concentrated at the plan's frequencies with every component of a
dual or AM tone present (a 256-ms FFT resolves 400+450 or 384+416). Busy, congestion and
ringback differ by cadence, so North American busy (480+620, 500/500) and reorder
(250/250) are told apart, unlike Asterisk's cadence-less detector.

A hypothesis is satisfied once an on part and its pause (or, after a burst cut by the
stream start, a pause and the next burst) fit it; long parts count before they end (see
``_BUSY_ON_CAP_S``), a long busy/congestion burst can decide alone (``_LONG_BURST_S``)
and so can a long pause after a cut burst (``_LONE_PAUSE_S``). Among satisfied kinds the
matcher says whether the rivals are settled and which hypothesis fits best; when to stop
waiting for a rival is :class:`agent.tones.detect.ToneDetector`'s business.

:class:`_Tables` holds the hypotheses' fixed data, built once per plan set and settings
and shared by all calls; :class:`_Matcher` holds one stream's live hypotheses and their
evidence.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from agent.tones.config import ToneConfig
from agent.tones.frames import _hann
from agent.tones.plan import CountryPlan
from agent.tones.templates import _Template, _twin_group_kinds, build_templates

_SEG_NFFT = 2048  # long FFT of a segment: 3.9 Hz bins at 8 kHz
# On a tie (same cadence listed as busy in one country and congestion in another) the
# earlier kind wins: busy is the common reading of such a tone.
_KIND_ORDER = ("busy", "congestion", "ringback", "fax_cng")
# Least share of a frequency set's energy in each of its components: a dual tone's weaker
# half (9 dB of twist) or an AM tone's sideband (50% depth) holds more; the leakage of a
# single tone sitting on one component of a dual far less.
_MIN_COMPONENT_SHARE = 0.04
# An on part's frequencies are first measured once it has lasted this long (a 120-ms FFT
# resolves the closest dual tones); a returning burst counts from then on.
_PURITY_AFTER_S = 0.12
# Frame times and part starts lie on the 10-ms grid: a frame exactly 120 ms in must not
# round below the threshold.
_PURITY_AT_S = _PURITY_AFTER_S - 1e-6
# A busy/congestion on part counts as seen after this long, its pause after this long:
# 750/750 and 1000/1000 cadences cannot wait a whole cycle within 1.5 s.
_BUSY_ON_CAP_S = 0.35
_BUSY_OFF_CAP_S = 0.45
# A busy/congestion burst at least this long (Burkina Faso's 2.4-s congestion) is decided
# from the burst alone once it has lasted this long: a burst heard for longer than this
# leaves no time for the _BUSY_OFF_CAP_S of its pause (and a frame's delay) within 1.5 s.
# The detector lets it decide only if its level holds (see detect._STEADY_DB).
_LONG_BURST_S = 1.0
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


@dataclass
class _Seg:
    """One on or off part of the current run, open until ``end`` is set."""

    on: bool
    start: float
    end: float | None = None
    purity: np.ndarray | None = None  # per frequency set, for on parts
    whole_purity: bool = False  # purity re-measured mid-burst, not only on its first 120 ms
    steady: bool = False  # its level held over the burst when whole_purity was measured


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
        seg_freqs = np.arange(_SEG_NFFT // 2 + 1) * sr / _SEG_NFFT
        self.seg_band = (int(np.searchsorted(seg_freqs, 100.0)),
                         int(np.searchsorted(seg_freqs, 3800.0)))

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

    def part_purity(self, x: np.ndarray) -> np.ndarray:
        """Share of an on part's energy (its samples ``x``, long FFT) at each frequency
        set, 0 for a set with a component missing; all 0 for less than 40 ms."""
        if len(x) < int(0.04 * self.sr):
            return np.zeros(len(self.fsets))
        p = np.abs(np.fft.rfft(x * _hann(len(x)), _SEG_NFFT)) ** 2
        lo, hi = self.seg_band
        total = float(np.sum(p[lo:hi])) + 1e-30
        energy = self.masks(len(x)) @ p
        set_energy, comp_energy = energy[: len(self.fsets)], energy[len(self.fsets) :]
        # Every component must be there: a single 400 Hz tone is all "at the frequencies"
        # of 400+440, yet it is not that tone.
        share = comp_energy / (set_energy[self.comp_owner] + 1e-30)
        whole = np.minimum.reduceat(share, self.comp_starts) >= _MIN_COMPONENT_SHARE
        return np.where(whole, set_energy / total, 0.0)


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

    def settled(self, alive: np.ndarray, sat: np.ndarray) -> bool:
        """True when one kind is left; or when every rival kind is satisfied too and
        either they are twins that no evidence will ever separate (the fit picks one) or
        they fit clearly worse (Denmark's busy 250/250 against its congestion 200/200)."""
        sat_kinds = set(self.kind_live[sat].tolist())
        if set(self.kind_live[alive].tolist()) != sat_kinds:
            return False
        if len(sat_kinds) == 1 or len(set(self.group_kind_live[sat].tolist())) == 1:
            return True
        best: dict[int, float] = {}
        for pos in np.flatnonzero(sat):
            k = int(self.kind_live[pos])
            best[k] = max(best.get(k, 0.0), self.score(int(pos)))
        top, second = sorted(best.values(), reverse=True)[:2]
        return top - second >= _SCORE_MARGIN

    def best(self, sat: np.ndarray) -> int:
        """The live hypothesis to report among the satisfied ``sat``: the closest fit of
        the winning kind."""
        idx = np.flatnonzero(sat)
        scores = np.array([self.score(int(h)) for h in idx])
        # Equal evidence for two kinds (a cadence that is busy in one country and
        # congestion in another): the kind earlier in _KIND_ORDER wins.
        close = idx[scores >= scores.max() - 0.05]
        kind = int(self.kind_live[close].min())
        pool = idx[self.kind_live[idx] == kind]
        return int(pool[int(np.argmax([self.score(int(h)) for h in pool]))])
