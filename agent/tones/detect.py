"""Streaming detection of call-progress tones (ringback, busy, congestion), SIT and fax tones.

Three stages, all on 32-ms frames every 10 ms, each in its own module:

1. *Frames* (:mod:`agent.tones.frames`): each frame's level and its *purity*, the share
   of its energy in its two strongest spectral peaks, and the band of its peak.
2. *Cadence* (:mod:`agent.tones.cadence`, templates from :mod:`agent.tones.templates`).
   Tonal frames and quiet frames (``off_drop_db`` below the tone) form on/off segments,
   each checked against every (template, phase) hypothesis of the plans' repeating
   tones. This module runs the state machine that makes the segments, and decides: a
   kind is reported once an on part and its pause (or, after a burst cut by the stream
   start, a pause and the next burst) fit, once no rival kind still fits (or after
   ``patience_s``, the closer fit winning); a burst whose return settles the cadence
   must first fit the plan's frequencies for 24 ms (a voice may start where it would); a
   busy/congestion burst longer than the 1.5-s target decides alone. While a satisfied
   tone waits only for the end of the open part, that end is read from the newest
   samples rather than from frames a few tens of ms later (:meth:`ToneDetector._tail_end`).
   How soon a plan itself lets two kinds be told apart is computed in
   :mod:`agent.tones.separation`.
3. *Frequency runs* (:mod:`agent.tones.sit`): SIT (three segments near 950, 1400,
   1800 Hz, with the North-American code) and fax CED (2100 Hz). Fax CNG (1100 Hz, 0.5 s
   on, 3 s off) is one more cadence template.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from agent.audio import SAMPLE_RATE
from agent.labels import ToneEvent
from agent.tones.cadence import (
    _LONG_BURST_S,
    _PURITY_AT_S,
    _SEG_NFFT,
    _Matcher,
    _Seg,
    _tables,
)
from agent.tones.config import ToneConfig
from agent.tones.frames import FRAME_S, HOP_S, _FrameAnalyser, _History, _level_db
from agent.tones.plan import CountryPlan, load_tone_plans
from agent.tones.sit import _BandRuns, band_edges
from agent.tones.templates import build_templates, is_busy_alike

__all__ = ["FRAME_S", "HOP_S", "ToneDetector", "build_templates", "is_busy_alike"]

# Frames are analysed 80 ms at a time: numpy's per-call cost dominates smaller batches.
_MIN_BATCH = 8
_ONSET_FRAMES = 3  # steady tonal frames (30 ms) that start a tone
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
# A long busy/congestion burst decides alone (cadence._LONG_BURST_S) only if its level
# holds: a tone generator plays at one level, while a sustained note of music decays (a
# 621-Hz note of an MOH track fell 6 dB in 1 s and matched 480+620 Hz). Compared between
# the first and the last _STEADY_SPAN_S of the burst.
_STEADY_DB = 3.0
_STEADY_SPAN_S = 0.2


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
        self.analyser = _FrameAnalyser(config, sr, band_edges(config))
        self.frame, self.hop = self.analyser.frame, self.analyser.hop
        self.history = _History(sr)
        self.bands = _BandRuns(config, sr, self.history)
        self.matcher = _Matcher(_tables(self.plans, config, sr))
        self.templates = self.matcher.templates
        self.reset()

    # -- state ------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything: the next sample pushed is time 0."""
        self.pending = np.zeros(0, dtype=np.float64)
        self.analyser.reset()
        self.n_frames = 0
        self.history.reset()
        self._run_reset()
        self.wait_quiet = False
        self.onset: list[tuple[float, float]] = []
        self.bands.reset()

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
        self.history.push(x)
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
        now = self.history.n_in / self.sr
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
        x = self.history.samples(now - FRAME_S, now, int(FRAME_S * self.sr)).astype(np.float64)
        n = len(x) // block
        if n == 0:
            return None
        x = x[len(x) - n * block :]
        level = _level_db(np.asarray(np.mean(x.reshape(n, block) ** 2, axis=1)))
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

    # -- stage 1: frames --------------------------------------------------------------
    def _frames(self, frames: np.ndarray) -> list[ToneEvent]:
        base = self.n_frames
        n = len(frames)
        self.n_frames += n
        idle = not (self.run or self.wait_quiet or self.onset) and self.bands.band_run is None
        measured = self.analyser.analyse(frames, idle=idle)
        if measured is None:
            return []
        level, tonal, steady, band = measured
        t0 = (base * self.hop + self.frame / 2) / self.sr
        times = t0 + np.arange(n) * (self.hop / self.sr)
        ends = times + self.frame / 2 / self.sr
        events = self._cadence_frames(times, ends, level, tonal, steady)
        events += self.bands.frames(times, ends, band)
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
        x = self.history.samples(seg.start + margin, end - margin, _SEG_NFFT)
        seg.purity = self.matcher.tables.part_purity(x)

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
        if not m.settled(alive, sat) and at - m.first_sat < self.config.patience_s:
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
        x = self.history.samples(early, now, int((now - early) * self.sr) + 1).astype(np.float64)
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

    def _emit(self, sat: np.ndarray, now: float) -> ToneEvent:
        m = self.matcher
        best = m.best(sat)
        tmpl = m.templates[m.t_live[best]]
        self.emitted = True
        return ToneEvent(
            kind=tmpl.kind,
            start_s=m.run_start,
            detected_s=now,
            country=tmpl.countries[0] if tmpl.countries else None,
            score=m.score(best),
        )
