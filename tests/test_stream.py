"""The streaming rule and the streaming classifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.audio import SAMPLE_RATE
from agent.classify.model import InputLayout, StudentModel
from agent.classify.rule import RuleState, StreamRule, carry_over, load_classifier_config
from agent.classify.stream import StreamingClassifier
from agent.config import build
from agent.distill.train import TrainParams, fit
from agent.errors import ConfigError
from agent.features import extract_batch, seconds_of
from agent.features.context import context_batch, periodicity_batch
from agent.features.modulation import modulation_batch

LAYOUT = InputLayout(summary=True, periodicity=True, context=True, modulation=True)


def replay(labels: list[str], rule: StreamRule | None = None) -> RuleState:
    state = RuleState(rule)
    for t, label in enumerate(labels):
        state.push(t, label, 0.9)
    return state


def test_a_class_is_final_after_n_consistent_seconds() -> None:
    state = replay(["music", "silence", "music", "music"], StreamRule(confirm_seconds=2))
    assert state.decision is not None
    assert (state.decision.label, state.decision.at_s) == ("music", 4.0)
    assert replay(["music", "silence", "music"]).decision is None


def test_ringback_with_silent_gaps_stays_ringback() -> None:
    # US cadence: 2 s on, 4 s off; the off seconds look like silence.
    labels = ["ringback", "ringback", "silence", "silence", "silence", "silence",
              "ringback", "ringback", "silence", "silence"]
    state = replay(labels, StreamRule(confirm_seconds=3, ringback_gap_s=4))
    assert state.decision is not None and state.decision.label == "ringback"
    assert state.decision.at_s == 3.0
    assert state.effective == ["ringback"] * 10


def test_silence_long_after_ringback_is_silence() -> None:
    state = replay(["ringback"] + ["silence"] * 8, StreamRule(confirm_seconds=2,
                                                            ringback_gap_s=2))
    assert state.effective[3] == "silence"
    assert state.decision is not None and state.decision.label == "ringback"


def test_silence_needs_longer_than_a_cadence_gap() -> None:
    rule = StreamRule(silence_seconds=5, ringback_gap_s=4)
    state = replay(["silence"] * 4, rule)
    assert state.decision is None
    state = replay(["silence"] * 5, rule)
    assert state.decision is not None
    assert (state.decision.label, state.decision.at_s) == ("silence", 5.0)


def test_early_media_starting_inside_a_ringback_gap_is_ringback() -> None:
    labels = ["silence"] * 4 + ["ringback", "ringback"] + ["silence"] * 4
    state = replay(labels, StreamRule(silence_seconds=5, ringback_gap_s=4))
    assert state.decision is not None and state.decision.label == "ringback"


def test_announcement_overturns_an_earlier_decision() -> None:
    state = replay(["ringback", "ringback", "ringback", "announcement", "announcement"])
    assert state.decision is not None
    assert (state.decision.label, state.decision.at_s) == ("announcement", 5.0)


def test_nothing_overturns_an_announcement() -> None:
    state = replay(["announcement", "announcement", "music", "music", "music"])
    assert state.decision is not None and state.decision.label == "announcement"


def test_a_single_announcement_second_does_not_overturn_music() -> None:
    state = replay(["music", "music", "announcement", "music"])
    assert state.decision is not None and state.decision.label == "music"


@pytest.mark.parametrize(("label", "need"), [("announcement", 3), ("silence", 4),
                                             ("music", 2), ("ringback", 2)])
def test_each_class_settles_after_its_own_run_length(label: str, need: int) -> None:
    rule = StreamRule(confirm_seconds=2, announcement_seconds=3, silence_seconds=4,
                      ringback_gap_s=0)
    assert replay([label] * (need - 1), rule).decision is None
    state = replay([label] * need, rule)
    assert state.decision is not None
    assert (state.decision.label, state.decision.at_s) == (label, float(need))


def test_finish_prefers_any_announcement_then_the_majority() -> None:
    assert replay(["music", "announcement", "music"]).finish(3.0).label == "announcement"
    decision = replay(["music", "silence", "music"]).finish(3.2)
    assert decision is not None and (decision.label, decision.at_s) == ("music", 3.2)
    assert RuleState().finish(0.5) is None


def test_low_confidence_seconds_do_not_count() -> None:
    state = RuleState(StreamRule(confirm_seconds=2, min_probability=0.6))
    state.push(0, "music", 0.9)
    state.push(1, "music", 0.5)
    assert state.decision is None


def test_rule_config_is_validated_and_names_the_key() -> None:
    with pytest.raises(ConfigError, match="classifier.rule.confirm_seconds"):
        build(type(load_classifier_config()), {"rule": {"confirm_seconds": 0}}, "classifier")
    with pytest.raises(ConfigError, match="unknown"):
        build(StreamRule, {"confirm_secs": 2}, "rule")
    assert load_classifier_config().rule == StreamRule()
    with pytest.raises(ConfigError, match="classifier.rule.persistence"):
        build(type(load_classifier_config()), {"rule": {"persistence": 1.0}}, "classifier")
    with pytest.raises(ConfigError, match="classifier.rule.announcement_odds"):
        build(type(load_classifier_config()), {"rule": {"announcement_odds": 0.5}}, "classifier")
    assert build(StreamRule, {"announcement_odds": 0}, "rule").announcement_odds == 0


def test_the_decision_history_keeps_every_decision_in_order() -> None:
    state = replay(["ringback"] * 3 + ["announcement"] * 2 + ["silence"] * 6)
    assert [(d.label, d.at_s) for d in state.decisions] == [("ringback", 2.0),
                                                            ("announcement", 5.0)]
    assert state.decision == state.decisions[-1]
    assert state.announcement_since == 3


def push_with_odds(state: RuleState, seconds: list[tuple[str, float]]) -> None:
    """Push (carried label, the model's own announcement probability) per second."""
    for t, (label, announcement_p) in enumerate(seconds, start=len(state.effective)):
        state.push(t, label, 0.9, announcement_p)


def test_the_models_odds_overturn_a_class_the_carry_over_still_holds() -> None:
    # After 20 s of ringback the carried label stays ringback for two seconds the model
    # itself gives announcement at 5:1 and 6:1 (30:1 together, over 20:1).
    state = RuleState()
    push_with_odds(state, [("ringback", 0.0)] * 20 + [("ringback", 0.83), ("ringback", 0.86)])
    assert [(d.label, d.at_s) for d in state.decisions] == [("ringback", 2.0),
                                                            ("announcement", 22.0)]
    assert state.announcement_since == 20


def test_one_second_of_odds_does_not_overturn_however_strong() -> None:
    # Music that stops short reads as speech for one second: not an announcement.
    state = RuleState()
    push_with_odds(state, [("music", 0.0)] * 8 + [("music", 0.999)])
    assert state.decision is not None and state.decision.label == "music"
    assert state.finish(9.4).label == "music"


def test_odds_below_the_threshold_do_not_overturn() -> None:
    state = RuleState(StreamRule(announcement_odds=100.0))
    push_with_odds(state, [("ringback", 0.0)] * 5 + [("ringback", 0.8)] * 3)
    assert state.decision is not None and state.decision.label == "ringback"


def test_at_the_end_a_late_announcement_overrides_the_settled_class() -> None:
    # Two announcement seconds after the ringback, a music-like second between them, and
    # the carrier's final response before the rule could settle them.
    state = RuleState()
    push_with_odds(state, [("ringback", 0.0)] * 10 + [("announcement", 0.97), ("music", 0.01),
                                                      ("announcement", 0.99)])
    assert state.decision is not None and state.decision.label == "ringback"
    final = state.finish(13.6)
    assert final is not None and (final.label, final.at_s) == ("announcement", 13.6)
    assert [d.label for d in state.decisions] == ["ringback", "announcement"]
    assert state.finish(13.6) is final and len(state.decisions) == 2


def test_announcement_heard_before_the_class_came_back_does_not_count_at_the_end() -> None:
    state = RuleState()
    push_with_odds(state, [("music", 0.0)] * 4 + [("announcement", 0.7), ("music", 0.1)]
                   + [("announcement", 0.7)] + [("music", 0.1)] * 3)
    assert state.finish(10.0).label == "music"


def test_speech_like_seconds_where_music_starts_and_stops_are_not_an_announcement() -> None:
    # Ringback gives way to a caller tune: the second of the change and the last one
    # (the tune stops short) read as speech, the tune between them does not.
    state = RuleState()
    push_with_odds(state, [("ringback", 0.0)] * 10 + [("ringback", 0.96)]
                   + [("music", 0.0)] * 4 + [("music", 0.98)])
    assert state.finish(16.5).label == "ringback"
    assert [d.label for d in state.decisions] == ["ringback"]


def test_an_early_announcement_followed_by_silence_stays_announcement() -> None:
    state = RuleState()
    push_with_odds(state, [("announcement", 0.99)] * 4 + [("silence", 0.0)] * 12)
    assert [d.label for d in state.decisions] == ["announcement"]
    assert state.finish(16.0).label == "announcement"
    assert [d.label for d in state.decisions] == ["announcement"]


def test_without_a_settled_class_the_end_decision_joins_the_history() -> None:
    state = replay(["music", "silence", "music"])
    assert state.decisions == []
    assert state.finish(3.2).label == "music"
    assert [(d.label, d.at_s) for d in state.decisions] == [("music", 3.2)]


def test_carry_over_worked_example() -> None:
    # persistence 0.7, 4 classes: prior = 0.1 + 0.6 * previous.
    previous = [0.0, 0.0, 1.0, 0.0]
    got = carry_over(previous, [0.6, 0.0, 0.4, 0.0], 0.7)
    # 0.6 * 0.1 = 0.06 against 0.4 * 0.7 = 0.28: the music before outweighs one second.
    assert got == pytest.approx([0.06 / 0.34, 0.0, 0.28 / 0.34, 0.0])
    assert carry_over(None, [0.6, 0.0, 0.4, 0.0], 0.7) == [0.6, 0.0, 0.4, 0.0]


def test_carry_over_at_a_quarter_changes_nothing() -> None:
    p = [0.1, 0.2, 0.3, 0.4]
    assert carry_over([0.9, 0.05, 0.03, 0.02], p, 0.25) == pytest.approx(p)


def test_carry_over_outvotes_one_odd_second_but_follows_a_real_change() -> None:
    music, speech = [0.02, 0.01, 0.95, 0.02], [0.9, 0.02, 0.06, 0.02]
    carried, labels = None, []
    for probs in [music] * 4 + [speech] + [music] * 3 + [speech] * 3:
        carried = carry_over(carried, probs, 0.95)
        labels.append(max(range(4), key=carried.__getitem__))
    assert labels == [2] * 4 + [2] + [2] * 3 + [2, 0, 0]


@pytest.fixture(scope="module")
def tone_model() -> StudentModel:
    """A student trained on generated audio: 425 Hz tone → ringback, noise → silence,
    chirps → music, AM-modulated formants → announcement (source labels)."""
    rng = np.random.default_rng(11)
    t = np.arange(20 * SAMPLE_RATE) / SAMPLE_RATE
    signals = {
        1: (0.2 * np.sin(2 * np.pi * 425 * t) * ((t % 1.5) < 1.0)),
        3: 0.001 * rng.standard_normal(t.size),
        2: 0.2 * np.sin(2 * np.pi * (300 + 200 * (t % 0.5)) * t),
        0: 0.2 * np.sin(2 * np.pi * 700 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
        + 0.1 * np.sin(2 * np.pi * 1500 * t) * (np.sin(2 * np.pi * 3 * t) > 0),
    }
    xs, ys = [], []
    for label, x in signals.items():
        windows = seconds_of(x.astype(np.float32))
        feats = extract_batch(windows)
        xs.append(LAYOUT.assemble(feats, context_batch(feats), periodicity_batch(windows),
                       modulation_batch(feats)))
        ys.append(np.full(feats.shape[0], label))
    return StudentModel(fit(np.concatenate(xs), np.concatenate(ys), layout=LAYOUT,
                            params=TrainParams(num_rounds=30)))


def test_partial_pushes_give_the_same_seconds_as_one_push(tone_model: StudentModel) -> None:
    t = np.arange(5 * SAMPLE_RATE + 1234) / SAMPLE_RATE
    x = (0.2 * np.sin(2 * np.pi * 425 * t) * ((t % 1.5) < 1.0)).astype(np.float32)
    whole = StreamingClassifier(tone_model)
    assert len(whole.push(x)) == 5
    pieces = StreamingClassifier(tone_model)
    got = []
    for start in range(0, x.size, 160):  # 20 ms RTP packets
        got += pieces.push(x[start:start + 160])
    assert [r.t for r in got] == [0, 1, 2, 3, 4]
    assert [r.label for r in got] == [r.label for r in whole.seconds]
    for a, b in zip(got, whole.seconds, strict=True):
        assert a.p == pytest.approx(b.p)
    assert pieces.push(np.zeros(100, np.float32)) == []


def test_stream_context_matches_training_context(tone_model: StudentModel) -> None:
    rng = np.random.default_rng(3)
    x = (0.1 * rng.standard_normal(6 * SAMPLE_RATE)).astype(np.float32)
    windows = seconds_of(x)
    feats = extract_batch(windows)
    offline = tone_model.predict_proba(
        LAYOUT.assemble(feats, context_batch(feats), periodicity_batch(windows),
                       modulation_batch(feats))
    )
    carried, expected = None, []
    for row in offline.tolist():
        carried = carry_over(carried, row, StreamRule().persistence)
        expected.append(carried)
    sc = StreamingClassifier(tone_model)
    live = np.array([[r.p[k] for k in r.p] for r in sc.push(x)])
    np.testing.assert_allclose(live, expected, rtol=1e-5, atol=1e-7)
    off = StreamingClassifier(tone_model, rule=StreamRule(persistence=0.25))
    raw = np.array([[r.p[k] for k in r.p] for r in off.push(x)])
    np.testing.assert_allclose(raw, offline, rtol=1e-5, atol=1e-7)


def test_streaming_classifier_settles_on_the_tone(tone_model: StudentModel) -> None:
    t = np.arange(6 * SAMPLE_RATE) / SAMPLE_RATE
    x = (0.2 * np.sin(2 * np.pi * 425 * t) * ((t % 1.5) < 1.0)).astype(np.float32)
    sc = StreamingClassifier(tone_model, rule=StreamRule(confirm_seconds=2))
    sc.push(x)
    assert sc.decision is not None and sc.decision.label == "ringback"
    assert sc.finish() == sc.decision


def test_finish_on_a_short_stream_is_none(tone_model: StudentModel) -> None:
    sc = StreamingClassifier(tone_model)
    sc.push(np.zeros(4000, np.float32))
    assert sc.seconds == [] and sc.finish() is None


def test_shipped_classifier_config_loads(tmp_path: Path) -> None:
    p = tmp_path / "classifier.yaml"
    p.write_text("rule:\n  confirm_seconds: 3\n")
    assert load_classifier_config(p).rule.confirm_seconds == 3


def test_a_model_path_that_names_nothing_is_a_config_error_naming_the_key(tmp_path) -> None:
    import pytest

    from agent.classify.rule import ClassifierConfig
    from agent.config import build
    from agent.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^classifier\.model: no such file: "):
        build(ClassifierConfig, {"model": str(tmp_path / "none.txt")}, "classifier")
    model = tmp_path / "student.txt"
    model.write_text("tree\n")
    assert build(ClassifierConfig, {"model": str(model)}, "classifier").model == str(model)
