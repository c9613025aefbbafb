"""Tone-plan notation parsing, the shipped plans, and tone synthesis."""

from __future__ import annotations

import numpy as np
import pytest

from agent.errors import ConfigError
from agent.tones import dbm0_to_dbfs
from agent.tones.plan import (
    KINDS,
    ToneSpec,
    ToneStep,
    load_tone_plans,
    parse_tone,
    plans_from_mapping,
)
from agent.tones.synth import level_dbfs, render


def test_parse_dual_tone_cadence_repeats():
    (spec,) = parse_tone("[440+480/2000,0/4000]", source="asterisk")
    assert spec.repeat
    assert spec.source == "asterisk"
    assert spec.steps == (ToneStep((440.0, 480.0), None, 2000), ToneStep((), None, 4000))
    assert spec.period_ms == 6000
    assert spec.has_cadence


def test_parse_am_step_keeps_carrier_and_modulation():
    (spec,) = parse_tone("[400*25/400,0/200,400*25/400,0/2000]", source="asterisk")
    assert spec.steps[0] == ToneStep((400.0,), 25.0, 400)
    assert len(spec.steps) == 4


def test_parse_alternatives_give_one_spec_each_in_step():
    specs = parse_tone("[480 || 400/500,0/500,620 || 400/500,0/500]", source="spandsp")
    assert [[s.freqs for s in spec.steps if s.is_tone] for spec in specs] == [
        [(480.0,), (620.0,)],
        [(400.0,), (400.0,)],
    ]


def test_parse_sit_without_brackets_plays_once():
    (spec,) = parse_tone("950/333,1400/333,1800/333,0/1000", source="spandsp")
    assert not spec.repeat
    assert [s.freqs for s in spec.steps] == [(950.0,), (1400.0,), (1800.0,), ()]


def test_parse_inner_bracket_group_is_flattened_once():
    (spec,) = parse_tone("[[425/200,0/200],425/200,0/600]", source="spandsp")
    assert spec.repeat
    assert [s.ms for s in spec.steps] == [200, 200, 200, 600]


def test_parse_step_without_duration_is_continuous():
    (spec,) = parse_tone("950/330,1400/330,1800/330,0", source="x")
    assert spec.steps[-1] == ToneStep((), None, 0)
    assert not spec.has_cadence


@pytest.mark.parametrize(
    "text",
    [
        "[425/1000,0/4000",
        "425/1000],0/4000",
        "[abc/100,0/100]",
        "[425/-5,0/100]",
        "[425/1000,,0/100]",
        "[425,0/100]",
        "[9000/100,0/100]",
        "[425 || 450 || 475/100,0 || 5/100]",
        "[25*400/100,0/100]",
    ],
)
def test_parse_rejects_bad_text(text):
    with pytest.raises(ValueError):
        parse_tone(text, source="x")


def test_bad_plan_names_country_and_field():
    data = {"countries": {"zz": {"name": "Nowhere", "busy": {"asterisk": "[425/abc,0/100]"}}}}
    with pytest.raises(ConfigError, match=r"countries\.zz\.busy\.asterisk"):
        plans_from_mapping(data)


def test_unknown_field_is_config_error():
    with pytest.raises(ConfigError, match=r"countries\.zz\.ring: unknown field"):
        plans_from_mapping({"countries": {"zz": {"ring": {"a": "[425/1,0/1]"}}}})


def test_bad_plan_file_is_one_line_config_error(tmp_path):
    bad = tmp_path / "plans.yaml"
    bad.write_text("countries:\n  xx:\n    busy: {asterisk: '[425/500,0/500'}\n")
    with pytest.raises(ConfigError) as exc:
        load_tone_plans(bad)
    assert "\n" not in str(exc.value)
    assert "countries.xx.busy.asterisk" in str(exc.value)
    with pytest.raises(ConfigError, match="no such config file"):
        load_tone_plans(tmp_path / "missing.yaml")


def test_shipped_plans_cover_many_countries_with_cadenced_tones():
    plans = load_tone_plans()
    assert len(plans) >= 40
    for cc in ("us", "uk", "de", "in", "cn", "fr", "jp", "br", "za", "au"):
        assert plans[cc].ringback and plans[cc].busy
    for plan in plans.values():
        for kind in ("ringback", "busy", "congestion"):
            for spec in plan.specs(kind):
                assert spec.repeat and spec.has_cadence, (plan.cc, kind)
                for step in spec.steps:
                    assert all(f >= 200 for f in step.freqs), (plan.cc, kind)
    assert {s.source for s in plans["us"].busy} == {"asterisk", "spandsp"}
    assert set(KINDS) == {"ringback", "busy", "congestion", "sit"}


def test_render_level_is_rms_of_on_parts():
    (spec,) = parse_tone("[480+620/500,0/500]", source="x")
    x = render(spec, duration_s=2.0, level_dbfs=-30.0)
    assert x.dtype == np.float32 and len(x) == 16000
    assert level_dbfs(x[:4000]) == pytest.approx(-30.0, abs=0.05)
    assert np.all(x[4000:8000] == 0)
    (am,) = parse_tone("[400*25/400,0/200]", source="x")
    assert level_dbfs(render(am, duration_s=0.4, level_dbfs=-12.0)) == pytest.approx(-12.0, abs=0.1)


def test_render_phase_starts_inside_the_cadence():
    (spec,) = parse_tone("[425/1000,0/4000]", source="x")
    x = render(spec, duration_s=5.0, phase_s=1.5)
    # 1.5 s into the cadence is silence until 5.0 s, i.e. the first 3.5 s of output.
    assert np.all(x[: int(3.5 * 8000)] == 0)
    assert np.abs(x[int(3.5 * 8000) + 10 :]).max() > 0


def test_render_one_shot_sit_then_silence():
    (spec,) = parse_tone("950/330,1400/330,1800/330", source="x")
    x = render(spec, duration_s=2.0, sr=8000)
    assert np.abs(x[: int(0.99 * 8000)]).max() > 0
    assert np.all(x[int(0.99 * 8000) + 1 :] == 0)


def test_render_frequency_is_where_the_spec_says():
    spec = ToneSpec(steps=(ToneStep((1100.0,), None, 1000),), source="x")
    x = render(spec, duration_s=1.0)
    spectrum = np.abs(np.fft.rfft(x))
    assert np.argmax(spectrum) == 1100


def test_dbm0_convention():
    assert dbm0_to_dbfs(0.0) == pytest.approx(-3.14)
