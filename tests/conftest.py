"""Shared fixtures: audio is generated, never committed."""

from __future__ import annotations

import numpy as np
import pytest

from agent.audio import SAMPLE_RATE
from agent.store.calls import CallStore


@pytest.fixture
def store() -> CallStore:
    """An empty call store in memory (tests that need one filled override it)."""
    s = CallStore(":memory:")
    yield s
    s.close()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261121)


def sine(freq_hz: float, seconds: float, *, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (level * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
