"""The shipped student on a voice it never heard.

``festvox-kdlpc16k`` (Festival's ``ked_diphone``, a male English diphone voice) is held
out of every corpus build (``holdout_voices``), so neither the shipped model nor any of
its leave-one-voice-out folds learnt from it. Rendered here, through a telephone channel,
its speech must still read as an announcement.
"""

from __future__ import annotations

import numpy as np
import pytest

from agent.audio import SAMPLE_RATE
from agent.classify.model import MODEL_FILE, StudentModel
from agent.classify.rule import load_classifier_config
from agent.classify.stream import StreamingClassifier
from agent.corpus.channel import telephone_channel
from agent.corpus.config import CorpusConfig
from agent.corpus.festival import FESTIVAL_VOICES, render_text
from agent.paths import MODELS_DIR

HELD_OUT = "ked_diphone"
SENTENCES = (
    "The number you have dialled does not exist. Please check the number and dial again.",
    "The subscriber you are calling is switched off or out of coverage area.",
)


def test_the_held_out_voice_is_held_out_of_the_default_corpus() -> None:
    assert FESTIVAL_VOICES[HELD_OUT].package in CorpusConfig().holdout_voices


@pytest.mark.parametrize("codec", ["ulaw", "gsm"])
def test_a_voice_never_heard_is_called_announcement_on_most_seconds(codec: str) -> None:
    speech = np.concatenate([render_text(s, voice=HELD_OUT) for s in SENTENCES])
    # Only the codec is fixed; level, noise floor and packet loss are drawn as the corpus
    # draws them, from a fixed seed.
    channel = CorpusConfig(codec_weights={codec: 1.0})
    audio, _ = telephone_channel(speech, rng=np.random.default_rng(3), config=channel)
    stream = StreamingClassifier(StudentModel.load(MODELS_DIR / MODEL_FILE),
                                 rule=load_classifier_config().rule)
    stream.push(audio)
    labels = [s.label for s in stream.seconds]
    assert len(labels) == audio.size // SAMPLE_RATE >= 6
    assert labels.count("announcement") / len(labels) >= 0.8, labels
    decision = stream.decision or stream.finish()
    assert decision is not None and decision.label == "announcement"
