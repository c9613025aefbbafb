"""The streaming early-media classifier: the distilled student and the per-second rule."""

from agent.classify.model import StudentModel
from agent.classify.stream import (
    ClassifierConfig,
    RuleState,
    StreamingClassifier,
    StreamRule,
    load_classifier_config,
)

__all__ = [
    "ClassifierConfig",
    "RuleState",
    "StreamRule",
    "StreamingClassifier",
    "StudentModel",
    "load_classifier_config",
]
