"""The early-media tap reader: a growing PCM16 WAV read in pieces, as a worker writes it."""

from __future__ import annotations

import numpy as np

from agent.labels import Inferred, SecondResult
from agent.media.analyst import event_message
from agent.media.tap import WAV_HEADER_BYTES, WavTail


def test_tail_returns_each_appended_stretch_once_and_waits_for_half_samples(tmp_path):
    path = tmp_path / "call.wav"
    tail = WavTail(path)
    assert tail.read().size == 0  # the recorder has not created the file yet
    rng = np.random.default_rng(0)
    pcm = (rng.uniform(-1, 1, 8000) * 32000).astype("<i2")
    raw = pcm.tobytes()
    with path.open("wb") as f:
        f.write(b"\0" * WAV_HEADER_BYTES)
        f.flush()
        got = []
        for start, stop in ((0, 1001), (1001, 1001), (1001, 9000), (9000, len(raw))):
            f.write(raw[start:stop])
            f.flush()
            got.append(tail.read())
    assert [g.size for g in got] == [500, 0, 4000, 3500]
    assert np.array_equal(np.concatenate(got), pcm.astype(np.float32) / 32768.0)
    assert tail.samples_read == 8000
    tail.close()


def test_tail_respects_max_samples(tmp_path):
    path = tmp_path / "call.wav"
    path.write_bytes(b"\0" * WAV_HEADER_BYTES + np.arange(100, dtype="<i2").tobytes())
    tail = WavTail(path)
    assert tail.read(max_samples=30).size == 30
    assert tail.read().size == 70
    tail.close()


def test_event_lag_counts_from_when_the_needed_audio_had_arrived():
    second = SecondResult(t=1, label="ringback", p={"ringback": 1.0})
    msg = event_message("c", second, audio_s=2.0, t0=100.0, now=102.25)
    assert (msg.kind, msg.lag_s, msg.data["label"]) == ("second", 0.25, "ringback")
    inferred = Inferred(sip_code=486, reason="User busy", q850_cause=17, source="tone")
    early = event_message("c", inferred, audio_s=3.0, t0=100.0, now=102.0)
    assert (early.kind, early.lag_s) == ("inferred", 0.0)
