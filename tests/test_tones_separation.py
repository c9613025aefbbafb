"""How long a plan's tones stay alike: the bound on any cadence detector's speed."""

from __future__ import annotations

import math

import pytest

from agent.tones.config import ToneConfig
from agent.tones.plan import load_tone_plans, parse_tone
from agent.tones.separation import Part, cycle_parts, heard_parts, separation_time

PLANS = load_tone_plans()
CFG = ToneConfig()


def _spec(text: str):
    (spec,) = parse_tone(text, source="x")
    return spec


def test_heard_parts_start_at_the_first_burst_with_enough_left():
    uk = _spec("[400+450/400,0/200,400+450/400,0/2000]")
    # 0.35 s in, only 50 ms of the first burst is left: the next burst is the first heard.
    parts = heard_parts(uk, phase_s=0.35, horizon_s=3.0)
    assert parts[:3] == [Part(True, 400.0, (400.0, 450.0)), Part(False, 2000.0, ()),
                         Part(True, 400.0, (400.0, 450.0))]
    cut = heard_parts(uk, phase_s=0.1, horizon_s=1.0)
    assert cut[0].ms == pytest.approx(300.0)


def test_cycle_parts_merge_across_the_end_of_the_period():
    spec = _spec("[425/200,0/500,425/300]")
    assert cycle_parts(spec) == [Part(True, 500.0, (425.0,)), Part(False, 500.0, ())]


def test_am_tone_parts_carry_their_sidebands():
    (part, *_) = cycle_parts(_spec("[400*25/400,0/200]"))
    assert part.freqs == (375.0, 400.0, 425.0)


def test_laos_busy_stays_like_its_ringback_until_the_second_burst():
    """Busy 425 1000/1000 and ringback 425 1000/4000: a whole first burst and its pause
    are the same in both; only the next burst, 2 s in, tells them apart."""
    busy = heard_parts(PLANS["la"].busy[0], phase_s=0.0)
    ring = cycle_parts(PLANS["la"].ringback[0])
    assert separation_time(busy, ring, config=CFG) == pytest.approx(2.0)
    # From 0.8 s into a burst, the next one starts 1.2 s after the first heard sample.
    late = heard_parts(PLANS["la"].busy[0], phase_s=0.8)
    assert separation_time(late, ring, config=CFG) == pytest.approx(1.2)


def test_a_burst_too_long_for_the_rival_separates_when_it_outlasts_the_rival():
    """Egypt's ringback burst (2 s) outlasts its busy burst (1 s): heard from the start,
    ringback stops fitting busy when it passes busy's 1.19-s upper bound."""
    ring = heard_parts(PLANS["eg"].ringback[0], phase_s=0.0)
    busy = cycle_parts(PLANS["eg"].busy[0])
    assert separation_time(ring, busy, config=CFG) == pytest.approx(1.0 * 1.15 + 0.04)


def test_other_frequencies_separate_at_once():
    us_busy = heard_parts(PLANS["us"].busy[0], phase_s=0.0)
    us_ring = cycle_parts(PLANS["us"].ringback[0])
    assert separation_time(us_busy, us_ring, config=CFG) == 0.0
    single = heard_parts(_spec("[400/750,0/750]"), phase_s=0.0)
    dual = cycle_parts(_spec("[400+440/1200,0/4800]"))
    assert separation_time(single, dual, config=CFG) == 0.0


def test_st_helena_congestion_never_separates_from_its_busy_tone():
    """400 Hz 400/350 against 400/375: every step within the cadence tolerance."""
    cong = heard_parts(PLANS["sh"].congestion[0], phase_s=0.1)
    busy = cycle_parts(PLANS["sh"].busy[0])
    assert separation_time(cong, busy, config=CFG) == math.inf


def test_tighter_tolerance_separates_sooner():
    cong = heard_parts(PLANS["sh"].congestion[0], phase_s=0.0)
    busy = cycle_parts(PLANS["sh"].busy[0])
    tight = ToneConfig(cadence_tol_pct=2.0, cadence_tol_ms=5.0)
    assert separation_time(cong, busy, config=tight) < 2.0


@pytest.mark.parametrize("phase", [0.008, 0.018, 0.028])
def test_suriname_busy_separates_from_its_ringback_when_its_second_burst_ends(phase):
    """Busy 425 500/500 against ringback 425 15 s on, 0.5 s off: the cut first burst and
    the pause fit both; the second burst ending after 0.5 s (the ringback's is at least
    12.7 s) separates them, 1.5 s - ``phase`` after the first heard sample: within the
    1.5-s limit, by as little as the phase."""
    busy = heard_parts(PLANS["sr"].busy[0], phase_s=phase)
    ring = cycle_parts(PLANS["sr"].ringback[0])
    assert separation_time(busy, ring, config=CFG) == pytest.approx(1.5 - phase)


def test_burkina_faso_congestion_fragment_separates_at_once():
    """Its 480+620 Hz is no other tone of the plan: even the last 0.2 s of a burst rule
    out busy and ringback (425 Hz) by frequency, before any cadence is heard."""
    cong = heard_parts(PLANS["bf"].congestion[0], phase_s=2.2)
    assert cong[0].ms == pytest.approx(200.0)
    for rival in (*PLANS["bf"].busy, *PLANS["bf"].ringback):
        assert separation_time(cong, cycle_parts(rival), config=CFG) == 0.0
