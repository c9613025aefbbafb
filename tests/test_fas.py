"""False answer supervision (agent.sip.fas): the config key and what counts as evidence
after a 200 OK (the supervisor's side is in tests/test_supervisor_answered.py)."""

from __future__ import annotations

import pytest

from agent.config import build
from agent.errors import ConfigError
from agent.labels import Decision, LibraryMatch, SecondResult, ToneEvent
from agent.settings import AgentConfig
from agent.sip.fas import FasCheck, FasConfig


@pytest.mark.parametrize("seconds", [-1, 61, "x"])
def test_fas_seconds_out_of_range_names_the_key(seconds) -> None:
    with pytest.raises(ConfigError, match=r"^fas\.seconds: "):
        build(AgentConfig, {"fas": {"seconds": seconds}})


def test_fas_is_off_by_default() -> None:
    assert AgentConfig().fas == FasConfig(seconds=0.0)
    assert build(AgentConfig, {"fas": {"seconds": 5}}).fas.seconds == 5.0


def second(t: int, label: str) -> dict:
    return SecondResult(t=t, label=label, p={label: 0.9}).as_json()


def test_two_seconds_of_ringback_after_the_answer_are_evidence() -> None:
    check = FasCheck(answer_s=5.2)
    assert not check.on_event("second", second(4, "ringback"))  # early media
    assert not check.on_event("second", second(5, "ringback"))  # straddles the answer
    assert not check.on_event("second", second(6, "ringback"))
    assert not check.on_event("second", second(7, "silence"))
    assert check.on_event("second", second(8, "ringback"))
    assert not check.on_event("second", second(9, "ringback"))  # counted once
    assert check.as_json() == {"suspected": True, "evidence": [
        {"detector": "classifier", "label": "ringback", "at_s": 6.0, "seconds": 2,
         "after_answer_s": 0.8}]}


def test_speech_or_silence_after_the_answer_is_a_real_answer() -> None:
    check = FasCheck(answer_s=3.0)
    for t in range(3, 10):
        check.on_event("second", second(t, "music" if t % 2 else "silence"))
    assert check.as_json() == {"suspected": False, "evidence": []}


def test_tones_decisions_and_library_matches_after_the_answer_are_evidence() -> None:
    check = FasCheck(answer_s=3.0)
    before = ToneEvent(kind="ringback", start_s=0.0, detected_s=2.5).as_json()
    assert not check.on_event("tone", before)
    assert not check.on_event("tone", ToneEvent(kind="fax_ced", start_s=3, detected_s=4).as_json())
    assert check.on_event("tone", ToneEvent(kind="sit", start_s=3.1, detected_s=3.9).as_json())
    assert check.on_event("decision", Decision("announcement", 6.0).as_json())
    assert not check.on_event("decision", Decision("silence", 7.0).as_json())
    match = LibraryMatch(entry_id=3, sip_code=404, reason="unallocated", score=0.8,
                         detected_s=8.0).as_json()
    assert check.on_event("match", match)
    assert [e["detector"] for e in check.evidence] == ["tone", "classifier", "fingerprint"]
    assert [e["after_answer_s"] for e in check.evidence] == [0.9, 3.0, 5.0]
