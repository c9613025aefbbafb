"""The one feature extractor, shared by training, ``classify`` and the live agent."""

from agent.features.mel import (
    FRAMES_PER_SECOND_WINDOW,
    N_FEATURES,
    N_MELS,
    extract_batch,
    extract_second,
    seconds_of,
)

__all__ = [
    "FRAMES_PER_SECOND_WINDOW",
    "N_FEATURES",
    "N_MELS",
    "extract_batch",
    "extract_second",
    "seconds_of",
]
