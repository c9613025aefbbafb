"""The B2BUA call state machine and the SIP config's validation."""

from __future__ import annotations

import pytest

from agent.config import build
from agent.errors import ConfigError
from agent.sip.config import SipConfig
from agent.sip.states import CallState as S
from agent.sip.states import Event as E
from agent.sip.states import InvalidTransition, advance, is_open


def run(*events: E) -> S:
    state = S.IDLE
    for event in events:
        state = advance(state, event)
    return state


@pytest.mark.parametrize(
    ("events", "final"),
    [
        ((E.PROGRESS, E.EARLY_MEDIA, E.CLASSIFIED, E.FINAL), S.FINAL),
        ((E.PROGRESS, E.EARLY_MEDIA, E.ANSWERED, E.BYE), S.ENDED),
        ((E.EARLY_MEDIA, E.CANCEL), S.CANCELLED),
        ((E.FINAL,), S.FINAL),  # carrier fails before any provisional
        ((E.PROGRESS, E.CLASSIFIED, E.PROGRESS), S.CLASSIFIED),  # a late 180 keeps the verdict
        ((E.ANSWERED, E.CLASSIFIED), S.CONNECTED),  # a late inference does not undo an answer
    ],
)
def test_call_paths_end_in_expected_state(events, final):
    assert run(*events) == final


@pytest.mark.parametrize(
    ("events", "bad"),
    [
        ((E.FINAL,), E.ANSWERED),
        ((E.CANCEL,), E.ANSWERED),
        ((E.ANSWERED,), E.FINAL),
        ((E.ANSWERED, E.BYE), E.PROGRESS),
        ((), E.BYE),
    ],
)
def test_impossible_transitions_raise(events, bad):
    with pytest.raises(InvalidTransition):
        advance(run(*events), bad)


def test_only_pre_answer_states_are_open():
    assert {s for s in S if is_open(s)} == {S.IDLE, S.EARLY, S.CLASSIFIED}


def test_sip_config_defaults_are_valid_and_single_worker_binds_listen_port():
    cfg = build(SipConfig, {}, "sip")
    assert cfg.workers == 2 and cfg.calls_in_worker() == 2 and cfg.pjsua_slots() == 4
    lone = build(SipConfig, {"workers": 1}, "sip")
    assert lone.worker_port(0) == lone.listen_port
    # A lone worker keeps a slot free to answer overflow itself (503, not pjsua's 486).
    assert lone.calls_in_worker() == 1 and lone.pjsua_slots() == 3
    pool = build(SipConfig, {"workers": 3, "worker_base_port": 6000}, "sip")
    assert [pool.worker_port(i) for i in range(3)] == [6000, 6001, 6002]


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"carrier": "no-port"}, "carrier"),
        ({"codecs": ["G729"]}, "codecs"),
        ({"workers": 0}, "workers"),
        ({"calls_per_worker": 3}, "calls_per_worker"),
        ({"timeout_code": 200}, "timeout_code"),
        ({"listen_port": 70000}, "listen_port"),
        ({"rtp_ports_per_worker": 2}, "rtp_ports_per_worker"),
        ({"bogus": 1}, "bogus"),
        ({"workers": 2, "worker_base_port": 20010, "rtp_port_base": 20000}, "rtp_port_base"),
    ],
)
def test_bad_sip_config_names_the_key(section, key):
    with pytest.raises(ConfigError, match=rf"sip\.{key}"):
        build(SipConfig, section, "sip")
