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


def test_frame_bytes_reads_a_byte_vector_like_the_slow_copy():
    import pjsua2 as pj

    from agent.sip.tap import frame_bytes

    for n in (0, 1, 160, 320, 1920):
        vec = pj.ByteVector(n)
        for i in range(n):
            vec[i] = (i * 37 + 11) % 256
        assert frame_bytes(vec) == bytes(vec)


def test_wav_header_describes_mono_pcm16_that_audio_io_reads(tmp_path):
    from agent.audio.io import load_audio
    from agent.sip.tap import wav_header

    pcm = (np.sin(np.arange(800) * 0.3) * 10000).astype("<i2")
    path = tmp_path / "t.wav"
    path.write_bytes(wav_header(pcm.nbytes) + pcm.tobytes())
    assert len(wav_header(0)) == WAV_HEADER_BYTES
    assert np.allclose(load_audio(path), pcm / 32768.0, atol=1e-4)


_TAP_SCRIPT = r"""
import sys, time
import pjsua2 as pj
from agent.sip.tap import FrameTap

ep = pj.Endpoint()
ep.libCreate()
cfg = pj.EpConfig()
cfg.uaConfig.threadCnt = 0
cfg.logConfig.level = 0
cfg.logConfig.consoleLevel = 0
cfg.medConfig.clockRate = 8000
cfg.medConfig.sndClockRate = 8000
cfg.medConfig.channelCount = 1
ep.libInit(cfg)
ep.audDevManager().setNullDev()
ep.libStart()
tap = FrameTap(sys.argv[1])
tone = pj.ToneGenerator()
tone.createToneGenerator(8000, 1)
desc = pj.ToneDesc()
desc.freq1, desc.freq2, desc.on_msec, desc.off_msec, desc.volume = 1000, 0, 10000, 0, 0
descs = pj.ToneDescVector()
descs.append(desc)
tone.play(descs, True)
tone.startTransmit(tap)
deadline = time.monotonic() + 0.6
while time.monotonic() < deadline:
    ep.libHandleEvents(20)
tap.close()
print(tap.written, flush=True)
tap = None
tone = None
ep.libDestroy()
"""


def test_frame_tap_writes_the_bridge_frames_as_a_wav_the_analysis_side_reads(tmp_path):
    """A real pjsua2 conference bridge (null sound device clock) feeds a 1 kHz tone."""
    import subprocess
    import sys

    from agent.audio.io import load_audio

    path = tmp_path / "tap.wav"
    run = subprocess.run([sys.executable, "-c", _TAP_SCRIPT, str(path)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    written = int(run.stdout.split()[-1])
    assert written > 0 and written % 320 == 0  # whole 20 ms frames
    x = load_audio(path)  # the closed tap is a valid WAV with its sizes filled in
    assert x.size * 2 == written
    tail = WavTail(path)
    assert tail.read().size == x.size
    tail.close()
    start = int(np.argmax(np.abs(x) > 0.01))
    voiced = x[start:start + 800]
    assert voiced.size == 800
    spectrum = np.abs(np.fft.rfft(voiced))
    assert abs(np.argmax(spectrum) * 8000 / 800 - 1000) <= 10
