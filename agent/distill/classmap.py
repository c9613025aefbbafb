"""The map from a tagger's AudioSet classes to the four early-media classes.

``config/teacher_classmap.yaml`` lists every AudioSet display name under exactly one of
``announcement``, ``ringback``, ``music``, ``silence`` or ``ignore``. A teacher frame's
score for a target is the best score among its member classes (a forced choice among the
four: a ringback burst that YAMNet calls "Dial tone" still outranks a weak "Music").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.config import read_yaml
from agent.errors import ConfigError
from agent.labels import LABELS
from agent.paths import CONFIG_DIR

TARGETS: tuple[str, ...] = (*LABELS, "ignore")
DEFAULT_CLASSMAP = CONFIG_DIR / "teacher_classmap.yaml"


@dataclass(frozen=True)
class ClassMap:
    """Display name → target, as read from the YAML file."""

    target_of: dict[str, str]

    def members(self, class_names: list[str] | tuple[str, ...]) -> list[np.ndarray]:
        """For each of :data:`agent.labels.LABELS`, the indices of ``class_names`` mapped to it."""
        out = []
        for label in LABELS:
            idx = [i for i, name in enumerate(class_names) if self.target_of.get(name) == label]
            if not idx:
                raise ConfigError(f"teacher class map: no tagger class maps to {label!r}")
            out.append(np.asarray(idx, dtype=np.intp))
        return out

    def aggregate(self, probs: np.ndarray, class_names: list[str] | tuple[str, ...]) -> np.ndarray:
        """``(frames, n_classes)`` tagger probabilities → ``(frames, 4)`` best member score."""
        return np.stack([probs[:, idx].max(axis=1) for idx in self.members(class_names)], axis=1)


def load_classmap(path: str | Path | None = None) -> ClassMap:
    """Read and check the class map (each name once, targets from :data:`TARGETS`).

    Raises
    ------
    ConfigError
        Naming the target or display name that is wrong.
    """
    p = Path(path) if path is not None else DEFAULT_CLASSMAP
    data = read_yaml(p)
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of target -> list of class names")
    target_of: dict[str, str] = {}
    for target, names in data.items():
        if target not in TARGETS:
            raise ConfigError(f"{p}: {target}: unknown target (expected one of {TARGETS})")
        if not isinstance(names, list):
            raise ConfigError(f"{p}: {target}: expected a list of class names")
        for name in names:
            if not isinstance(name, str):
                raise ConfigError(f"{p}: {target}: class name {name!r} is not a string")
            if name in target_of:
                raise ConfigError(
                    f"{p}: {name!r} is mapped twice ({target_of[name]} and {target})"
                )
            target_of[name] = target
    return ClassMap(target_of=target_of)
