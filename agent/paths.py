"""Where the project's files live: shipped config and models, and per-user cache/data.

``EMA_HOME`` points at a checkout or install holding ``config/`` and ``models/``;
by default that is the directory above the package. Cache (the corpus) and data (the
announcement library, the call store) follow the XDG base-directory rules.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME = Path(os.environ.get("EMA_HOME", Path(__file__).resolve().parent.parent))
CONFIG_DIR = HOME / "config"
MODELS_DIR = HOME / "models"


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/early-media-agent`` (default ``~/.cache/early-media-agent``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "early-media-agent"


def data_dir() -> Path:
    """``$XDG_DATA_HOME/early-media-agent`` (default ``~/.local/share/early-media-agent``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "early-media-agent"
