"""Shared fixtures: audio is generated, never committed."""

from __future__ import annotations

import numpy as np
import pytest

from agent.audio import SAMPLE_RATE


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261121)


def sine(freq_hz: float, seconds: float, *, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (level * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
