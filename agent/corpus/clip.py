"""A clean clip of one class before the telephone channel, and the draws every source shares.

The per-class generators (:mod:`agent.corpus.sources`, :mod:`agent.corpus.speech`) yield
:class:`Clip` objects; the builder sends each through the channel and writes it with the
clip's provenance and voice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent.audio import SAMPLE_RATE
from agent.corpus.manifest import SourceRef
from agent.errors import UserError


@dataclass
class Clip:
    """Audio of one known class before the telephone channel.

    ``voice`` names who or what made the sound (see :class:`agent.corpus.manifest.CorpusItem`)
    and ``engine`` how: ``human``, ``festival``, ``music``, ``tone`` or ``synthetic``.
    """

    index: int
    label: str
    group: str
    samples: np.ndarray
    sources: list[SourceRef]
    voice: str
    engine: str
    mix: dict[str, Any] = field(default_factory=dict)
    keep_level: bool = False
    vocals: bool = False

    @property
    def id(self) -> str:
        """Stable name: class and number in the class's sequence."""
        return f"{self.label}-{self.index:05d}"

    @property
    def duration_s(self) -> float:
        return self.samples.size / SAMPLE_RATE


def draw(rng: np.random.Generator, pair: list[float]) -> float:
    """Uniform in a config ``[min, max]`` range."""
    return float(rng.uniform(pair[0], pair[1]))


def seconds(n: int) -> float:
    """Samples at 8 kHz as seconds, rounded for the manifest."""
    return round(n / SAMPLE_RATE, 4)


def noise_like(rng: np.random.Generator, n: int, dbfs: float) -> np.ndarray:
    """White noise of ``n`` samples at ``dbfs`` RMS."""
    x = rng.standard_normal(n).astype(np.float32)
    return x * np.float32(10.0 ** (dbfs / 20.0))


def package_files(directory: Path, pattern: str, package: str) -> list[Path]:
    """Files under ``directory`` matching ``pattern``, sorted; a missing or empty directory
    is a :class:`UserError` naming the package to install."""
    if not directory.is_dir():
        raise UserError(f"{directory}: missing; install the Debian package {package} "
                        f"(apt-get install {package})")
    files = sorted(p for p in directory.rglob(pattern) if p.is_file())
    if not files:
        raise UserError(f"{directory}: no {pattern} files; reinstall {package}")
    return files
