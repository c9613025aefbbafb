"""Stage 3 of tone detection: SIT and fax CED, from runs of frames in one frequency band.

A SIT is three segments near 950, 1400 and 1800 Hz; fax CED a 2100-Hz tone. Both are
tracked by the frame peak frequency (:mod:`agent.tones.frames` places each frame's peak in
a band): a run is a stretch of frames in one band with gaps of at most ``_SIT_GAP_S``.
The SIT segments' exact frequencies (from a long FFT) and durations give the
North-American code (IC, VC, RO, NC, IO) or ``ITU``; a first segment longer than any
standard one (Malaysia's 1 s) is decided as ``ITU`` from the first two. CED is reported
once it has lasted ``ced_min_s``. Fax CNG, a cadence, is matched in
:mod:`agent.tones.cadence` instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agent.labels import ToneEvent
from agent.tones.config import ToneConfig
from agent.tones.frames import FRAME_S, HOP_S, _hann, _History

_SIT_NFFT = 8192
# SIT bands (Hz): wide enough for the national variants in the plans (900/1380/1860,
# 950/1450/1850, 1000/1400/1800, 950/1400/1600) and the North-American frequencies.
_SIT_BANDS = ((870.0, 1040.0), (1320.0, 1500.0), (1560.0, 1950.0))
_CED_BAND = (2070.0, 2130.0)
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


def band_edges(config: ToneConfig) -> np.ndarray:
    """Sorted edges of the bands tracked frame by frame: SIT segments 1-3, then fax CED
    (band 4). A disabled band becomes empty but keeps its place (the edges stay sorted)."""
    bands = [b if config.sit else (b[0], b[0]) for b in _SIT_BANDS]
    bands.append(_CED_BAND if config.fax else (_CED_BAND[0], _CED_BAND[0]))
    return np.array([f for b in bands for f in b])


@dataclass
class _BandRun:
    """Consecutive frames (gaps up to ``_SIT_GAP_S``) whose peak lies in one band."""

    band: int
    start: float
    last: float


class _BandRuns:
    """One stream's runs of frames in the SIT and CED bands, and the tones they make.

    Parameters
    ----------
    config : ToneConfig
        ``ced_min_s``: how long a CED run lasts before it is reported.
    sr : int
        Sample rate of the stream.
    history : _History
        The stream's recent audio, for the exact frequency of each SIT segment.
    """

    def __init__(self, config: ToneConfig, sr: int, history: _History) -> None:
        self.config = config
        self.sr = sr
        self.history = history
        self.reset()

    def reset(self) -> None:
        """Forget every run: the next frame starts afresh."""
        self.band_run: _BandRun | None = None
        self.band_prev: list[_BandRun] = []
        self.sit_emitted_at = -1.0
        self.ced_emitted = False

    def frames(self, times: np.ndarray, ends: np.ndarray, band: np.ndarray) -> list[ToneEvent]:
        """Follow the runs over a batch of frames (centre times, end times, band of each);
        the SIT and CED tones they complete."""
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
        x = self.history.samples(run.start + margin, run.last - margin + HOP_S, _SIT_NFFT)
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
