"""Announcement fingerprinting: landmark hashes, the library of known announcements, lookup.

Public API: :func:`open_library` → :class:`Library` (``match``, ``add``, ``remove``,
``record_unknown``, ``label_unknown``), :class:`StreamingMatcher` for live calls,
:class:`FingerprintConfig`, and :func:`fingerprint` (pure numpy landmark hashing).
"""

from agent.fingerprint.config import FingerprintConfig
from agent.fingerprint.landmarks import LandmarkParams, Landmarks, fingerprint
from agent.fingerprint.library import Library, open_library
from agent.fingerprint.streaming import StreamingMatcher

__all__ = [
    "FingerprintConfig",
    "LandmarkParams",
    "Landmarks",
    "Library",
    "StreamingMatcher",
    "fingerprint",
    "open_library",
]
