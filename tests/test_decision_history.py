"""Decisions that change while a call goes on, and their history on every path out:
the analyzer, ``classify --format jsonl``, and the live path analyst → supervisor → store.

Real model, real tone detectors, real Asterisk prompts and rendered ringback; nothing mocked.
"""

from __future__ import annotations

import json
import socket
from dataclasses import replace

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from agent.analysis import AnalysisComponents, CallAnalyzer
from agent.api.metrics import AgentMetrics
from agent.audio import SAMPLE_RATE
from agent.audio.g711 import ulaw_decode, ulaw_encode
from agent.audio.io import load_audio, write_wav
from agent.debian import ASTERISK_EN
from agent.fingerprint import open_library
from agent.labels import Decision
from agent.media.analyst import Analyst
from agent.media.tap import WAV_HEADER_BYTES
from agent.settings import AgentConfig
from agent.sip import messages as m
from agent.sip.supervisor import Supervisor
from agent.store.calls import CallStore
from agent.tones.plan import load_tone_plans
from agent.tones.synth import render

PROMPTS = ["vm-isunavail", "ss-noservice", "all-circuits-busy-now", "cannot-complete-as-dialed"]
RINGBACK_S = 12.5


@pytest.fixture(scope="module")
def components() -> AnalysisComponents:
    cfg = AgentConfig()
    return AnalysisComponents.load(replace(cfg, fingerprint=replace(cfg.fingerprint,
                                                                    enabled=False)))


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return np.concatenate([load_audio(ASTERISK_EN / f"{p}.wav") for p in PROMPTS])


def telephone(x: np.ndarray) -> np.ndarray:
    return ulaw_decode(ulaw_encode(x))


def ringback_then(announcement: np.ndarray, country: str = "uk") -> np.ndarray:
    """12.5 s of a country's ringback, then the announcement: the carrier gave up ringing."""
    ringback = render(load_tone_plans()[country].ringback[0], duration_s=RINGBACK_S,
                      level_dbfs=-20.0)
    return telephone(np.concatenate([ringback, announcement]))


def analyse(components: AnalysisComponents, x: np.ndarray) -> CallAnalyzer:
    analyzer = CallAnalyzer(components, call_id="t")
    for start in range(0, x.size, 2048):
        analyzer.push(x[start:start + 2048])
    analyzer.conclude()
    return analyzer


@pytest.mark.parametrize("country", ["uk", "us", "in"])
def test_the_history_turns_from_ringback_to_announcement_when_the_recording_starts(
        components, speech, country):
    analyzer = analyse(components, ringback_then(speech[: 6 * SAMPLE_RATE], country))
    labels = [d.label for d in analyzer.decisions]
    assert labels == ["ringback", "announcement"]
    ringback, announcement = analyzer.decisions
    assert ringback.at_s < RINGBACK_S < announcement.at_s
    assert analyzer.class_decision == announcement
    assert analyzer.inferred is not None and analyzer.inferred.source == "classifier"
    assert analyzer.inferred.reason.startswith("Temporarily unavailable")


def test_an_early_announcement_followed_by_silence_stays_announcement(components, speech):
    noise = np.random.default_rng(0).normal(scale=3e-4, size=10 * SAMPLE_RATE)
    analyzer = analyse(components, telephone(np.concatenate(
        [speech[: 5 * SAMPLE_RATE], noise.astype(np.float32)])))
    assert [d.label for d in analyzer.decisions] == ["announcement"]
    assert analyzer.decisions[0].at_s <= 5.0


def test_an_announcement_after_ringback_starts_the_library_lookup(components, speech, tmp_path):
    library = open_library(tmp_path / "library.sqlite")
    library.add(speech, sip_code=404, reason="Unallocated number")
    analyzer = analyse(replace(components, library=library), ringback_then(speech))
    announcement = analyzer.decisions[-1]
    assert announcement.label == "announcement"
    # The lookup heard the announcement from the first second of its evidence on.
    assert analyzer.lookup_seconds[0] <= announcement.at_s - 2
    assert analyzer.lookup_seconds[0] >= int(RINGBACK_S)
    inferred = analyzer.conclude()
    assert (inferred.sip_code, inferred.source) == (404, "fingerprint")
    library.close()


def test_classify_jsonl_carries_the_decision_history(speech, tmp_path, capsys):
    from agent.cli import main

    path = tmp_path / "ringback-then-announcement.wav"
    write_wav(path, ringback_then(speech[: 6 * SAMPLE_RATE]))
    assert main(["classify", "--format", "jsonl", "--no-library", str(path)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [d["label"] for d in record["decisions"]] == ["ringback", "announcement"]
    assert record["decision"] == record["decisions"][-1]
    assert all(set(d) == {"label", "at_s"} for d in record["decisions"])


def test_the_live_path_carries_the_history_from_analysis_to_the_store(
        components, speech, tmp_path):
    """Analysis process → messages → supervisor → call store, as in the running agent
    (without the SIP workers: the tap file stands in for the carrier's RTP)."""
    x = ringback_then(speech[: 6 * SAMPLE_RATE])
    tap = tmp_path / "tap.wav"
    tap.write_bytes(b"\0" * WAV_HEADER_BYTES
                    + (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    ours, theirs = socket.socketpair()
    analyst = Analyst(components, theirs, max_audio_s=60.0)
    analyst.on_message(m.Track(call_id="c1", path=str(tap), t=0.0))
    analyst.pump(analyst.calls["c1"])
    analyst.finalize("c1", 480)
    theirs.close()
    decoder = m.Decoder()
    received = []
    while chunk := ours.recv(1 << 16):
        received += decoder.feed(chunk)
    ours.close()

    cfg = AgentConfig()
    store = CallStore(":memory:")
    supervisor = Supervisor(cfg, "unused.yaml", store=store,
                            metrics=AgentMetrics(CollectorRegistry()), notifier=None)
    worker, analysis = supervisor.workers[0], supervisor.analysts[0]
    supervisor.on_message(worker, m.CallStarted(call_id="c1", correlation_id="job-1",
                                                from_uri="sip:d@h", to_uri="sip:123@h",
                                                source="127.0.0.1", t=0.0))
    supervisor.on_message(worker, m.CarrierFinal(call_id="c1", code=480, reason=None, t=18.0,
                                                 wait=False))
    for msg in received:
        supervisor.on_message(analysis, msg)
    record = store.get("job-1")
    assert record is not None
    assert [d.label for d in record.decisions] == ["ringback", "announcement"]
    sent = [Decision(**msg.data) for msg in received
            if isinstance(msg, m.AnalysisEvent) and msg.kind == "decision"]
    assert record.decisions == sent
    body = record.as_json()
    assert body["decision"] == body["decisions"][-1] == sent[-1].as_json()
    assert body["inferred"]["source"] == "classifier"
    store.close()
