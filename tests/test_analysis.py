"""The per-call analyzer shared by `classify` and the live agent, on real components."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from agent.analysis import AnalysisComponents, CallAnalyzer
from agent.audio.g711 import ulaw_decode, ulaw_encode
from agent.audio.io import load_audio
from agent.debian import ASTERISK_EN
from agent.fingerprint import open_library
from agent.labels import Inferred, SecondResult, ToneEvent
from agent.settings import AgentConfig
from agent.tones.plan import load_tone_plans
from agent.tones.synth import render

PROMPTS = ASTERISK_EN


@pytest.fixture(scope="module")
def components() -> AnalysisComponents:
    cfg = AgentConfig()
    return AnalysisComponents.load(replace(cfg, fingerprint=replace(cfg.fingerprint,
                                                                    enabled=False)))


def _feed(analyzer: CallAnalyzer, x: np.ndarray, chunk: int = 2048) -> list[object]:
    events: list[object] = []
    for start in range(0, x.size, chunk):
        events += analyzer.push(x[start:start + chunk])
    return events


def test_busy_tone_is_decided_by_the_tone_detector(components):
    busy = render(load_tone_plans()["us"].specs("busy")[0], duration_s=4.0, level_dbfs=-20.0)
    analyzer = CallAnalyzer(components, call_id="t")
    events = _feed(analyzer, busy)
    assert any(isinstance(e, ToneEvent) and e.kind == "busy" for e in events)
    assert [e.sip_code for e in events if isinstance(e, Inferred)][-1] == 486
    assert len([e for e in events if isinstance(e, SecondResult)]) == 4


def test_a_failing_detector_is_switched_off_and_the_call_still_classified(
        components, monkeypatch):
    analyzer = CallAnalyzer(components, call_id="t")

    def broken(samples: np.ndarray) -> list[ToneEvent]:
        raise RuntimeError("detector bug")

    monkeypatch.setattr(analyzer.tones, "push", broken)
    noise = np.random.default_rng(1).normal(scale=1e-3, size=8000 * 6).astype(np.float32)
    _feed(analyzer, noise)
    assert analyzer.failures == ["tones"] and analyzer.tones is None
    assert len(analyzer.seconds) == 6
    assert analyzer.conclude().sip_code == 408


def test_library_announcement_is_identified_from_announcement_seconds(components, tmp_path):
    prompts = ["ss-noservice", "vm-isunavail", "all-circuits-busy-now", "cannot-complete-as-dialed"]
    audio = np.concatenate([load_audio(PROMPTS / f"{p}.wav") for p in prompts])
    library = open_library(tmp_path / "library.sqlite")
    entry = library.add(audio, sip_code=404, reason="Unallocated number")
    with_library = replace(components, library=library)
    analyzer = CallAnalyzer(with_library, call_id="t")
    looped = ulaw_decode(ulaw_encode(np.tile(audio, 2)[: 8000 * 9]))
    _feed(analyzer, looped)
    inferred = analyzer.conclude()
    assert (inferred.sip_code, inferred.source) == (404, "fingerprint")
    [match] = [e for e in inferred.evidence if e["detector"] == "fingerprint"]
    assert match["entry_id"] == entry
    library.close()
