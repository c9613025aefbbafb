"""Announcements through the live agent: a library announcement gets its own code, an
unknown one the configured default and a new unknown-library entry."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from agent.audio.io import load_audio
from agent.fingerprint import open_library
from agent.sip.early_media import write_ulaw
from agent.sip.harness import AgentProcess, place_call


def _speak(text: str, path: Path, voice: str = "en-gb") -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True,
                   capture_output=True)
    return load_audio(path)


@pytest.fixture(scope="module")
def library_agent(e2e_root: Path, model_path: Path, workers: int):
    root = e2e_root / f"library-{workers}"
    root.mkdir()
    library_path = root / "library.sqlite"
    busy = _speak("The subscriber you have called is busy. Please try again later.",
                  root / "busy.wav")
    library = open_library(library_path)
    library.add(busy, sip_code=486, reason="User busy", lang="en", name="busy")
    library.close()
    agent = AgentProcess(workdir=root / "agent", model=model_path, rewrite=True,
                         workers=workers, extra={"fingerprint": {"enabled": True,
                                                "library": str(library_path)}})
    agent.start()
    yield agent, library_path, busy
    assert agent.stop() == 0


def test_library_announcement_behind_a_generic_503_becomes_its_code(library_agent, tmp_path):
    agent, _, busy = library_agent
    audio = write_ulaw(tmp_path / "busy.ul", busy)
    result = place_call(agent, workdir=tmp_path / "call", carrier="carrier_early_final.xml",
                        audio=audio, early_ms=7000, final_code=503, final_cause=41)
    assert result.code == 486
    assert result.final.header("x-carrier-final-code") == "503"
    inferred = result.record["inferred"]
    assert (inferred["sip_code"], inferred["source"]) == (486, "fingerprint")


def test_unknown_announcement_gets_the_default_and_is_kept_for_labelling(
        library_agent, tmp_path):
    agent, library_path, _ = library_agent
    other = _speak("All circuits to this destination are engaged. This call cannot be "
                   "completed as dialled. Please hang up and try again.", tmp_path / "o.wav")
    audio = write_ulaw(tmp_path / "other.ul", other)
    result = place_call(agent, workdir=tmp_path / "call", carrier="carrier_early_final.xml",
                        audio=audio, early_ms=7000, final_code=503, final_cause=41)
    inferred = result.record["inferred"]
    assert (inferred["sip_code"], inferred["source"]) == (480, "classifier")
    assert result.code == 480
    library = open_library(library_path)
    try:
        assert len(library.entries(kind="unknown")) == 1
    finally:
        library.close()
