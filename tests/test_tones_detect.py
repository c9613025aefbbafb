"""The streaming tone detector on synthesised tones, SIT, fax, noise and speech-like audio."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from agent.audio.io import load_audio
from agent.config import build
from agent.debian import ASTERISK_EN
from agent.errors import ConfigError
from agent.tones import dbm0_to_dbfs
from agent.tones.config import ToneConfig
from agent.tones.detect import _RETURN_CONFIRM_S, ToneDetector
from agent.tones.plan import ToneSpec, ToneStep, load_tone_plans, parse_tone
from agent.tones.synth import NA_SIT, na_sit_spec, render
from agent.tones.templates import _cycle, is_busy_alike

SR = 8000
PLANS = load_tone_plans()
PROMPTS = ASTERISK_EN


def _noisy(x: np.ndarray, level_dbfs: float, rng: np.random.Generator, lead_s: float) -> np.ndarray:
    """Prepend ``lead_s`` of line noise and add white noise 20 dB below the tone."""
    rms = 10 ** (level_dbfs / 20) / np.sqrt(2)
    y = np.concatenate([np.zeros(int(lead_s * SR), np.float32), x])
    return (y + rng.standard_normal(len(y)) * rms * 0.1).astype(np.float32)


def _detect(x: np.ndarray, *, countries: list[str] | None = None, chunk: int = 160,
            config: ToneConfig | None = None) -> list:
    cfg = config or ToneConfig(countries=countries or [])
    det = ToneDetector(PLANS, config=cfg)
    events = []
    for i in range(0, len(x), chunk):
        events += det.push(x[i : i + chunk])
    return events


def _first_event(spec: ToneSpec, *, dbm0: float, phase_s: float, lead_s: float, seed: int,
                 countries: list[str] | None = None, duration_s: float = 4.0):
    """The first tone event of ``spec`` from ``phase_s`` into its cadence, after ``lead_s``
    of line noise, at ``dbm0`` with 20 dB SNR, in 20-ms packets."""
    level = dbm0_to_dbfs(dbm0)
    rng = np.random.default_rng(seed)
    x = _noisy(render(spec, duration_s=duration_s, level_dbfs=level, phase_s=phase_s), level,
               rng, lead_s)
    return _detect(x, countries=countries)[0]


def _expected_kind(cc: str, kind: str, spec: ToneSpec) -> str:
    if kind != "congestion":
        return kind
    busy = [c for c in (_cycle(s) for s in PLANS[cc].busy) if c is not None]
    return "busy" if is_busy_alike(_cycle(spec), busy) else kind


def _country_cases() -> list:
    cases = []
    for cc, plan in PLANS.items():
        for kind in ("ringback", "busy", "congestion"):
            specs = [s for s in plan.specs(kind) if s.has_cadence]
            for i in range(min(len(specs), 2)):
                cases.append(pytest.param(cc, kind, i, id=f"{cc}-{kind}-{i}"))
    return cases


@pytest.mark.parametrize(("cc", "kind", "variant"), _country_cases())
def test_every_country_tone_is_recognised_as_its_kind(cc, kind, variant):
    spec = [s for s in PLANS[cc].specs(kind) if s.has_cadence][variant]
    rng = np.random.default_rng(zlib.crc32(f"{cc}{kind}{variant}".encode()))
    level = dbm0_to_dbfs(float(rng.choice([-10.0, -22.5, -35.0])))
    period = spec.period_ms / 1000
    limit = max(3.0, 2 * period)
    x = render(spec, duration_s=limit + 0.7, level_dbfs=level)
    events = _detect(_noisy(x, level, rng, lead_s=0.6), countries=[cc])
    assert events, f"nothing detected for {cc} {kind}"
    first = events[0]
    assert first.kind == _expected_kind(cc, kind, spec)
    assert first.country == cc
    # The tone starts at 0.6 s in the stream (phase 0 begins with an on part).
    assert first.start_s == pytest.approx(0.6, abs=0.05)
    assert first.detected_s - 0.6 <= limit + 0.2


@pytest.mark.parametrize("cc", ["us", "uk", "de", "fr", "in", "cn", "br", "za", "jp", "it"])
@pytest.mark.parametrize("dbm0", [-10.0, -35.0])
def test_busy_is_decided_within_one_and_a_half_seconds(cc, dbm0):
    spec = PLANS[cc].busy[0]
    rng = np.random.default_rng(7)
    level = dbm0_to_dbfs(dbm0)
    x = _noisy(render(spec, duration_s=4.0, level_dbfs=level), level, rng, lead_s=0.5)
    (first, *_) = _detect(x, countries=[cc])
    assert first.kind == "busy"
    assert first.detected_s - 0.5 <= 1.5


def test_north_american_busy_and_reorder_are_told_apart():
    (busy,) = parse_tone("[480+620/500,0/500]", source="x")
    (reorder,) = parse_tone("[480+620/250,0/250]", source="x")
    rng = np.random.default_rng(1)
    lv = -25.0
    for spec, kind in ((busy, "busy"), (reorder, "congestion")):
        x = _noisy(render(spec, duration_s=4, level_dbfs=lv), lv, rng, 0.3)
        assert _detect(x)[0].kind == kind


@pytest.mark.parametrize("code", sorted(NA_SIT))
def test_north_american_sit_codes(code):
    rng = np.random.default_rng(3)
    level = dbm0_to_dbfs(-24.0)
    x = _noisy(render(na_sit_spec(code), duration_s=2.0, level_dbfs=level), level, rng, 0.4)
    events = [e for e in _detect(x) if e.kind == "sit"]
    assert len(events) == 1
    assert events[0].sit_code == code.split("-")[0]
    assert events[0].start_s == pytest.approx(0.4, abs=0.05)
    assert events[0].detected_s - 0.4 <= 1.2


@pytest.mark.parametrize("cc", ["de", "fr", "uk", "us", "be", "at", "cz"])
def test_itu_sit_of_national_plans(cc):
    spec = PLANS[cc].sit[0]
    rng = np.random.default_rng(4)
    level = dbm0_to_dbfs(-30.0)
    x = _noisy(render(spec, duration_s=2.5, level_dbfs=level), level, rng, 0.5)
    events = _detect(x, countries=[cc])
    assert [(e.kind, e.sit_code) for e in events] == [("sit", "ITU")]
    assert events[0].detected_s - 0.5 <= 1.2


def test_fax_calling_and_answer_tones():
    rng = np.random.default_rng(5)
    lv = -20.0
    cng = ToneSpec((ToneStep((1100.0,), None, 500), ToneStep((), None, 3000)), "T.30")
    events = _detect(_noisy(render(cng, duration_s=4.0, level_dbfs=lv), lv, rng, 0.5))
    assert [e.kind for e in events] == ["fax_cng"]
    ced = ToneSpec((ToneStep((2100.0,), None, 3300),), "V.25", repeat=False)
    x = np.concatenate([render(ced, duration_s=3.3, level_dbfs=lv), np.zeros(SR, np.float32)])
    events = _detect(_noisy(x, lv, rng, 0.5))
    assert [e.kind for e in events] == ["fax_ced"]
    assert events[0].start_s == pytest.approx(0.5, abs=0.05)


def test_chunk_size_does_not_change_the_verdict():
    rng = np.random.default_rng(6)
    lv = -22.0
    x = _noisy(render(PLANS["uk"].ringback[0], duration_s=5.0, level_dbfs=lv), lv, rng, 0.5)
    small = _detect(x, countries=["uk"], chunk=160)
    large = _detect(x, countries=["uk"], chunk=8000)
    odd = _detect(x, countries=["uk"], chunk=1234)
    kinds = [[e.kind for e in events] for events in (small, large, odd)]
    assert kinds == [["ringback"]] * 3
    assert small[0].start_s == pytest.approx(large[0].start_s, abs=1e-6)


@pytest.mark.parametrize("level_dbfs", [-80.0, -40.0, -10.0, -1.0])
def test_white_noise_and_silence_never_trigger(level_dbfs):
    rng = np.random.default_rng(8)
    rms = 10 ** (level_dbfs / 20) / np.sqrt(2)
    noise = (rng.standard_normal(20 * SR) * rms).astype(np.float32)
    assert _detect(noise) == []
    assert _detect(np.zeros(10 * SR, np.float32)) == []


def test_speech_like_harmonic_signal_does_not_trigger():
    """Voiced 'syllables': harmonic complexes with gliding pitch, with pauses between."""
    rng = np.random.default_rng(9)
    out = []
    for _ in range(60):
        n = int(rng.uniform(0.08, 0.4) * SR)
        f0 = rng.uniform(100, 250) * np.linspace(1.0, rng.uniform(0.8, 1.25), n)
        phase = 2 * np.pi * np.cumsum(f0) / SR
        syl = sum(np.sin(h * phase) / h for h in range(1, 12))
        out.append(syl * np.hanning(n) * 0.1)
        out.append(np.zeros(int(rng.uniform(0.05, 0.5) * SR)))
    assert _detect(np.concatenate(out).astype(np.float32)) == []


def test_continuous_tone_without_cadence_is_no_call_progress_tone():
    dial = ToneSpec((ToneStep((350.0, 440.0), None, 10000),), "x", repeat=False)
    assert _detect(render(dial, duration_s=10.0, level_dbfs=-20)) == []


def test_loud_signal_at_another_frequency_is_not_a_single_frequency_tone():
    """spandsp's weakness: any loud signal matched its 425 Hz descriptors."""
    (busy_700,) = parse_tone("[700/500,0/500]", source="x")
    x = render(busy_700, duration_s=5.0, level_dbfs=-3.0)
    assert _detect(x, countries=["de"]) == []


def test_tone_below_minimum_level_is_ignored():
    x = render(PLANS["de"].busy[0], duration_s=4.0, level_dbfs=-60.0)
    assert _detect(x, countries=["de"]) == []


def test_reset_restarts_the_clock():
    x = render(PLANS["us"].busy[0], duration_s=3.0, level_dbfs=-20.0)
    det = ToneDetector(PLANS, config=ToneConfig(countries=["us"]))
    first = det.push(np.concatenate([np.zeros(SR, np.float32), x]))
    det.reset()
    second = det.push(x)
    assert first[0].start_s == pytest.approx(1.0, abs=0.02)
    assert second[0].start_s == pytest.approx(0.0, abs=0.04)


def test_config_is_validated_with_key_names():
    cfg = build(ToneConfig, {"countries": ["de"], "frame_purity": 0.8}, "tones")
    assert cfg.countries == ["de"] and cfg.frame_purity == 0.8
    with pytest.raises(ConfigError, match=r"tones\.frame_purity"):
        build(ToneConfig, {"frame_purity": 1.5}, "tones")
    with pytest.raises(ConfigError, match=r"tones\.bogus: unknown config key"):
        build(ToneConfig, {"bogus": 1}, "tones")
    with pytest.raises(ConfigError, match="unknown tone-plan country 'xx'"):
        ToneDetector(PLANS, config=ToneConfig(countries=["xx"]))


@pytest.mark.parametrize(("fmul", "tmul"), [(1.015, 1.0), (0.985, 1.0), (1.0, 1.1), (1.0, 0.9)])
@pytest.mark.parametrize(("cc", "kind"), [("de", "busy"), ("us", "congestion"), ("fr", "ringback")])
def test_off_nominal_tones_through_ulaw_are_still_recognised(cc, kind, fmul, tmul):
    """Carriers' generators drift: 1.5% in frequency, 10% in cadence, then G.711."""
    from agent.audio.g711 import ulaw_decode, ulaw_encode

    spec = PLANS[cc].specs(kind)[0]
    drifted = ToneSpec(
        tuple(ToneStep(tuple(f * fmul for f in s.freqs), s.am_hz, int(s.ms * tmul))
              for s in spec.steps),
        spec.source,
    )
    rng = np.random.default_rng(10)
    level = dbm0_to_dbfs(-35.0)
    x = _noisy(render(drifted, duration_s=8.0, level_dbfs=level), level, rng, 0.5)
    events = _detect(ulaw_decode(ulaw_encode(x)), countries=[cc])
    assert [e.kind for e in events][:1] == [kind]


@pytest.mark.parametrize(
    ("cc", "kind"),
    [("us", "ringback"), ("uk", "ringback"), ("de", "busy"), ("in", "busy"), ("fr", "ringback"),
     ("cn", "busy"), ("jp", "ringback"), ("uk", "congestion")],
)
def test_unrestricted_detector_gets_the_kind_of_major_zones(cc, kind):
    """With no country configured every plan competes; the kind must still come out."""
    spec = PLANS[cc].specs(kind)[0]
    rng = np.random.default_rng(11)
    level = -25.0
    x = _noisy(render(spec, duration_s=10.0, level_dbfs=level), level, rng, 0.5)
    events = _detect(x)
    assert events and events[0].kind == kind


def test_busy_from_a_cut_first_burst_is_decided_within_the_limit():
    """Pakistan busy 400/750 starting 0.39 s into a burst: the cut burst, the full pause and
    the next burst's first 350 ms are evidence enough (a check falling exactly on that
    threshold once waited for the whole burst)."""
    spec = PLANS["pk"].busy[0]
    level = dbm0_to_dbfs(-22.5)
    rng = np.random.default_rng(12)
    x = _noisy(render(spec, duration_s=4.0, level_dbfs=level, phase_s=0.393), level, rng, 0.652)
    (first, *_) = _detect(x, countries=["pk"])
    assert first.kind == "busy"
    assert first.detected_s - 0.652 <= 1.5


def test_single_tone_does_not_match_a_dual_tone_that_contains_it():
    """Jordan: busy is 400 Hz, ringback 400+440 Hz. A 400-Hz burst cannot be the ringback,
    so the busy tone need not wait for the ringback's pause to run out."""
    level = dbm0_to_dbfs(-22.5)
    rng = np.random.default_rng(13)
    x = _noisy(render(PLANS["jo"].busy[0], duration_s=4.0, level_dbfs=level), level, rng, 0.5)
    (first, *_) = _detect(x, countries=["jo"])
    assert first.kind == "busy"
    assert first.detected_s - 0.5 <= 1.5


@pytest.mark.parametrize("cc", ["jo", "sg", "in", "us"])
def test_dual_and_am_tones_still_match_their_own_frequency_sets(cc):
    """The every-component check keeps real dual (400+440, 440+480) and AM (400*25,
    425*24) tones: their weaker parts carry far more than the floor."""
    spec = PLANS[cc].ringback[0]
    rng = np.random.default_rng(14)
    level = dbm0_to_dbfs(-35.0)
    x = _noisy(render(spec, duration_s=max(3.0, 2 * spec.period_ms / 1000) + 0.5,
                      level_dbfs=level), level, rng, 0.5)
    events = _detect(x, countries=[cc])
    assert [e.kind for e in events][:1] == ["ringback"]


def test_sit_with_long_segments_is_decided_from_its_first_two():
    """Malaysia's SIT has 1-s segments: the third starts 2 s in, after the 1.2-s limit."""
    (spec,) = PLANS["my"].sit
    rng = np.random.default_rng(15)
    level = dbm0_to_dbfs(-35.0)
    x = _noisy(render(spec, duration_s=4.0, level_dbfs=level), level, rng, 0.5)
    events = _detect(x, countries=["my"])
    assert [(e.kind, e.sit_code) for e in events] == [("sit", "ITU")]
    assert events[0].start_s == pytest.approx(0.5, abs=0.05)
    assert events[0].detected_s - 0.5 <= 1.2


def test_two_segments_of_standard_length_are_not_yet_a_sit():
    """950 then 1400 Hz of ITU length and no third segment: no SIT (a short first segment
    must wait for the whole sequence, whose durations carry the North-American code)."""
    (spec,) = parse_tone("950/330,1400/330,0/2000", source="x")
    rng = np.random.default_rng(16)
    level = dbm0_to_dbfs(-24.0)
    x = _noisy(render(spec, duration_s=2.66, level_dbfs=level), level, rng, 0.5)
    assert [e for e in _detect(x) if e.kind == "sit"] == []


def test_long_busy_burst_is_decided_before_its_pause():
    """Burkina Faso's congestion is 480+620 Hz 2.4 s on, 2.4 s off: no other tone of the
    plan has those frequencies, and its pause comes after the 1.5-s limit."""
    (spec,) = PLANS["bf"].congestion
    first = _first_event(spec, dbm0=-35.0, phase_s=0.0, lead_s=0.5, seed=17, countries=["bf"])
    assert first.kind == "congestion"
    assert first.detected_s - 0.5 <= 1.5


def test_long_burst_at_another_frequency_decides_nothing():
    """The burst rule holds to the plan's frequencies: 2.4 s of 440+480 Hz in Burkina Faso
    (whose ringback and busy are 425 Hz) is no tone of its plan."""
    (spec,) = parse_tone("[440+480/2400,0/2400]", source="x")
    x = render(spec, duration_s=6.0, level_dbfs=-20.0)
    assert _detect(x, countries=["bf"]) == []


def test_ringback_with_a_burst_longer_than_the_buffer_is_recognised():
    """Suriname's ringback bursts last 15 s, longer than the 4-s history the segment
    spectrum is taken from: its newest part is measured instead of its lost middle."""
    (spec,) = PLANS["sr"].ringback
    rng = np.random.default_rng(18)
    level = dbm0_to_dbfs(-22.5)
    x = _noisy(render(spec, duration_s=10.0, level_dbfs=level, phase_s=6.6), level, rng, 0.5)
    events = _detect(x, countries=["sr"])
    assert [e.kind for e in events] == ["ringback"]



def test_long_burst_waits_while_a_tone_of_another_kind_still_fits():
    """A plan whose ringback (3 s on) shares the frequencies of its long congestion burst
    (2.4 s on): 1.2 s into a burst both still fit, so the burst alone decides nothing."""
    from agent.tones.plan import CountryPlan

    (ring,) = parse_tone("[480+620/3000,0/3000]", source="x")
    (cong,) = parse_tone("[480+620/2400,0/2400]", source="x")
    plans = {"zz": CountryPlan("zz", "test", ringback=(ring,), congestion=(cong,))}
    det = ToneDetector(plans, config=ToneConfig(countries=["zz"], sit=False, fax=False))
    rng = np.random.default_rng(19)
    x = _noisy(render(ring, duration_s=8.0, level_dbfs=-25.0), -25.0, rng, 0.5)
    events = [e for i in range(0, len(x), 160) for e in det.push(x[i : i + 160])]
    assert [e.kind for e in events][:1] == ["ringback"]


@pytest.mark.parametrize("chunk", [160, 80])
def test_decision_at_a_burst_start_comes_without_batch_delay(chunk):
    """Paraguay busy (425 Hz 1 s on, 1 s off) from 0.55 s into a burst: the ringback of the
    same frequency is ruled out only when the next burst starts, 1.45 s after the first
    sample; the frames around that start are analysed at once, not 80 ms later."""
    spec = PLANS["py"].busy[0]
    rng = np.random.default_rng(20)
    level = dbm0_to_dbfs(-22.5)
    x = _noisy(render(spec, duration_s=4.0, level_dbfs=level, phase_s=0.553), level, rng, 1.0)
    (first, *_) = _detect(x, countries=["py"], chunk=chunk)
    assert first.kind == "busy"
    assert first.detected_s - 1.0 <= 1.5


def test_busy_after_a_short_cut_burst_and_a_long_pause_is_decided_on_the_next_burst():
    """Laos busy (425 Hz 1 s on, 1 s off) from 0.8 s into a burst: 0.2 s of tone, the full
    pause, then the next burst rules the 4-s ringback pause out 1.2 s in. A burst of the
    plan's frequency closing a long pause of the plan's length counts in full as soon as
    its frequency is measured (120 ms), not after 350 ms."""
    spec = PLANS["la"].busy[0]
    first = _first_event(spec, dbm0=-22.5, phase_s=0.8, lead_s=1.0, seed=21, countries=["la"])
    assert first.kind == "busy"
    assert first.detected_s - 1.0 <= 1.5


def test_pause_check_is_not_held_back_by_batching():
    """Iraq busy (400 Hz 1 s on, 1 s off): the burst ends 1 s in, the pause counts 450 ms
    later; its 50-ms confirmation and an 80-ms analysis batch on top would overrun 1.5 s,
    so frames are analysed at once when such a check is due."""
    spec = PLANS["iq"].busy[0]
    first = _first_event(spec, dbm0=-10.0, phase_s=0.0, lead_s=0.76, seed=22, countries=["iq"])
    assert first.kind == "busy"
    assert first.detected_s - 0.76 <= 1.5


@pytest.mark.parametrize("seed", [3, 5, 8])
def test_cut_long_burst_is_decided_at_its_threshold(seed):
    """Burkina Faso's congestion heard from 0.96 s into a 2.4-s burst: 1.44 s of it are
    left, enough for the 1.2-s burst rule; its check must not round below the threshold
    and wait for the burst to end."""
    (spec,) = PLANS["bf"].congestion
    first = _first_event(spec, dbm0=-22.5, phase_s=0.962, lead_s=0.934, seed=seed,
                         countries=["bf"], duration_s=5.0)
    assert first.kind == "congestion"
    assert first.detected_s - 0.934 <= 1.5


def test_returning_burst_is_measured_without_batch_delay():
    """Paraguay busy from 0.7 s into a burst: 0.3 s of tone (under the 350-ms cap, so half
    evidence), the pause, and the next burst 1.3 s in rules the ringback out; the busy
    tone then needs that burst's frequency, measured 120 ms into it. That check is due
    at a known time and must not wait for an 80-ms analysis batch (it came at 1.51 s)."""
    spec = PLANS["py"].busy[0]
    first = _first_event(spec, dbm0=-35.0, phase_s=0.698, lead_s=0.766, seed=23, countries=["py"])
    assert first.kind == "busy"
    assert first.detected_s - 0.766 <= 1.5


@pytest.mark.parametrize("lead", [1.19, 1.2, 1.21])
def test_end_of_a_plain_burst_is_read_from_the_newest_samples(lead):
    """Suriname busy (425 Hz 500/500) from 32 ms into a burst: its ringback (425 Hz 15 s
    on, 0.5 s off) is ruled out only when the second burst ends, 1.468 s in. The first
    quiet 32-ms frame and the 50-ms pause confirmation came 80 ms later (1.55 s); a
    plain tone has no nulls, so a few ms of quiet samples end the burst."""
    spec = PLANS["sr"].busy[0]
    first = _first_event(spec, dbm0=-22.5, phase_s=0.032, lead_s=lead, seed=24, countries=["sr"])
    assert first.kind == "busy"
    assert first.detected_s - lead <= 1.5


def test_returning_burst_settles_on_its_first_tonal_frame():
    """Paraguay busy from 0.55 s into a burst: 0.45 s of tone and the full pause satisfy
    the busy cadence; the next burst, 1.447 s in, rules out the ringback (4-s pause). Its
    three-frame confirmation came at 1.51 s; the first tonal frame decides it, because
    that boundary is tried and kept only when it settles the tone."""
    spec = PLANS["py"].busy[0]
    first = _first_event(spec, dbm0=-10.0, phase_s=0.553, lead_s=1.134, seed=25, countries=["py"])
    assert first.kind == "busy"
    assert first.detected_s - 1.134 <= 1.5


def test_early_burst_end_that_decides_nothing_is_undone():
    """France's congestion (440 Hz 250/250) to the detector of all countries, where busy
    tones of other countries are alike within tolerance. A burst end read early from the
    newest samples settles nothing here; kept, it measured the burst 10 ms longer than the
    frames do and tipped the verdict to busy. Undone, the frames decide as before."""
    (spec,) = PLANS["fr"].congestion
    first = _first_event(spec, dbm0=-22.5, phase_s=0.236, lead_s=0.645, seed=26)
    assert first.kind == "congestion"


@pytest.mark.parametrize("dbm0", [-10.0, -35.0])
@pytest.mark.parametrize("lead", [1.188, 1.205, 1.2085, 1.209])
@pytest.mark.parametrize("phase", [0.514, 0.524])
def test_returning_burst_decides_once_its_first_milliseconds_fit_the_plan(phase, lead, dbm0):
    """Laos busy (425 Hz 1 s on, 1 s off) from ``phase`` into a burst: the next burst,
    ``2 - phase`` s in, rules out the ringback's 4-s pause, but only once enough of it is
    heard to be the plan's tone and not a voice (``_RETURN_CONFIRM_S``): the decision
    comes in the first 20-ms packet that holds that much, read from the newest samples
    rather than from the frames."""
    spec = PLANS["la"].busy[0]
    first = _first_event(spec, dbm0=dbm0, phase_s=phase, lead_s=lead, seed=27, countries=["la"])
    assert first.kind == "busy"
    back = lead + 2.0 - phase
    assert back + _RETURN_CONFIRM_S - 0.005 <= first.detected_s
    assert first.detected_s <= back + _RETURN_CONFIRM_S + 0.005 + 0.02


@pytest.mark.parametrize("prompt", ["vm-goodbye", "tt-monkeys", "hello-world", "auth-thankyou",
                                    "conf-onlyperson", "vm-intro"])
def test_voice_where_the_next_burst_would_be_is_not_that_burst(prompt):
    """A Laos ringback burst (425 Hz, 1 s) and 1 s of pause, as its busy tone would have
    them, then an announcement starts where the busy tone's next burst would: that is no
    busy tone. Taking the voice's first tonal frame for the returning burst answered
    busy on two of these prompts."""
    level = dbm0_to_dbfs(-20.0)
    burst = render(parse_tone("[425/1000,0/4000]", source="t")[0], duration_s=1.0,
                   level_dbfs=level)
    voice = load_audio(PROMPTS / f"{prompt}.wav").astype(np.float64)
    voice *= 10 ** (level / 20) / np.sqrt(2) / np.sqrt(np.mean(voice**2))
    x = np.concatenate([np.zeros(SR // 2), burst, np.zeros(SR), voice])
    x = _noisy(x.astype(np.float32), level, np.random.default_rng(33), 0.0)
    assert [e.kind for e in _detect(x, countries=["la"])] == []


@pytest.mark.parametrize("dbm0", [-35.0, -10.0])
@pytest.mark.parametrize("phase", [2.06, 2.17, 2.23, 2.29])
def test_cut_burst_of_a_kinds_own_frequencies_then_a_long_pause_decides(phase, dbm0):
    """Burkina Faso's congestion (480+620 Hz, 2.4 s on, 2.4 s off) heard from its last
    0.1-0.34 s: too short a fragment for full evidence, and the next burst comes 2.4 s
    later. No other tone of the plan is 480+620 Hz, so 1 s of the pause decides."""
    (spec,) = PLANS["bf"].congestion
    first = _first_event(spec, dbm0=dbm0, phase_s=phase, lead_s=0.8, seed=28,
                         countries=["bf"], duration_s=5.0)
    assert first.kind == "congestion"
    assert first.detected_s - 0.8 <= 1.5


def test_cut_burst_then_a_pause_shorter_than_the_rule_decides_nothing():
    """0.2 s of 480+620 Hz, 0.9 s of line noise, then speech-like noise: in Burkina Faso
    only its congestion has those frequencies, but the pause is too short to stand for
    the missing cadence."""
    (spec,) = parse_tone("480+620/200,0/900", source="x")
    rng = np.random.default_rng(29)
    level = dbm0_to_dbfs(-22.5)
    tone = render(spec, duration_s=1.1, level_dbfs=level)
    babble = rng.standard_normal(int(2.0 * SR)) * 10 ** (level / 20) / np.sqrt(2)
    x = _noisy(np.concatenate([tone, babble.astype(np.float32)]), level, rng, 0.5)
    assert _detect(x, countries=["bf"]) == []


def test_cut_burst_shared_by_two_kinds_then_a_long_pause_decides_nothing():
    """0.2 s of 425 Hz and 2 s of quiet in Burkina Faso: that burst is its busy tone or
    its ringback, and the ringback's 4-s pause still fits, so nothing is decided."""
    (spec,) = parse_tone("425/200,0/2000", source="x")
    rng = np.random.default_rng(30)
    level = dbm0_to_dbfs(-22.5)
    x = _noisy(render(spec, duration_s=2.2, level_dbfs=level), level, rng, 0.5)
    assert _detect(x, countries=["bf"]) == []


@pytest.mark.parametrize("dbm0", [-10.0, -35.0])
@pytest.mark.parametrize(("lead", "phase"), [(1.2005, 0.0065), (1.2105, 0.0165)])
def test_burst_end_a_few_ms_before_a_packet_boundary_decides_in_that_packet(lead, phase, dbm0):
    """Suriname busy (425 Hz 500/500) from ``phase`` into a burst: its ringback (15 s on)
    is ruled out when the second burst ends, 1.5 s - ``phase`` in, 6 ms before the end of
    the last 20-ms packet within the limit. Four quiet milliseconds end a plain burst;
    waiting for eight put the decision one packet, 20 ms, past the limit."""
    spec = PLANS["sr"].busy[0]
    first = _first_event(spec, dbm0=dbm0, phase_s=phase, lead_s=lead, seed=31, countries=["sr"])
    assert first.kind == "busy"
    assert first.detected_s - lead <= 1.5


def test_cut_fax_calling_tone_then_a_long_pause_decides():
    """Fax CNG (1100 Hz 0.5 s on, 3 s off) heard from 0.234 s into a burst: 0.27 s of
    tone, then 3 s of pause. No other tone is 1100 Hz; 1 s of the pause decides."""
    (spec,) = parse_tone("[1100/500,0/3000]", source="x")
    first = _first_event(spec, dbm0=-22.5, phase_s=0.234, lead_s=1.429, seed=32)
    assert first.kind == "fax_cng"
    assert first.detected_s - 1.429 <= 1.5


@pytest.mark.parametrize("phase", [1.21, 1.3, 1.37])
def test_cut_burst_ending_just_before_the_burst_rule_is_decided_in_time(phase):
    """Burkina Faso's congestion heard from ``phase`` into a 2.4-s burst: 1.03-1.19 s of
    it are left. The burst rule waited for 1.2 s of burst, which never came, and then
    the 0.45 s of pause put the decision past 1.5 s; it now takes 1 s of burst."""
    (spec,) = PLANS["bf"].congestion
    first = _first_event(spec, dbm0=-10.0, phase_s=phase, lead_s=0.9, seed=33,
                         countries=["bf"], duration_s=5.0)
    assert first.kind == "congestion"
    assert first.detected_s - 0.9 <= 1.5


def test_decaying_note_at_a_long_bursts_frequencies_decides_nothing():
    """A sustained note of music at Burkina Faso's congestion frequencies (480+620 Hz),
    fading 7 dB over 1.2 s into a new note: a tone generator holds its level, so the
    burst rule does not take it for the 2.4-s congestion burst."""
    t = np.arange(int(1.2 * SR)) / SR
    fade = 10 ** (-7.0 * t / 1.2 / 20)
    level = dbm0_to_dbfs(-15.0)
    amp = 10 ** (level / 20) / np.sqrt(2)
    note = amp * fade * (np.sin(2 * np.pi * 480 * t) + np.sin(2 * np.pi * 620 * t))
    t2 = np.arange(int(1.0 * SR)) / SR
    other = amp * np.sin(2 * np.pi * 392 * t2)
    rng = np.random.default_rng(34)
    x = _noisy(np.concatenate([note, other]).astype(np.float32), level, rng, 0.5)
    assert _detect(x, countries=["bf"]) == []


@pytest.mark.parametrize("dbm0", [-10.0, -35.0])
def test_busy_burst_and_its_pause_decide_before_the_next_burst(dbm0):
    """North-American busy (480+620 Hz 500/500) from the start of a burst: the burst and
    0.4 s of its pause are the evidence (no other US tone has a 500-ms burst at these
    frequencies). A pause shorter than 0.4 s counts half until then, and that moment was
    not among the checks, so the tone waited for the next burst."""
    spec = PLANS["us"].busy[0]
    first = _first_event(spec, dbm0=dbm0, phase_s=0.0, lead_s=0.5, seed=34, countries=["us"])
    assert first.kind == "busy"
    assert first.detected_s - 0.5 <= 0.5 + 0.4 + 0.05
