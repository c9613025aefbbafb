"""The training corpus: real audio from Debian packages, through a simulated telephone line.

- :mod:`agent.corpus.channel` — codecs and the random telephone channel (stable API).
- :mod:`agent.corpus.sources` — clean clips per class, cut from the packages' audio.
- :mod:`agent.corpus.speech` — announcements: one voice's prompts or Festival sentences.
- :mod:`agent.corpus.festival` — the Festival voices and :func:`render_text`.
- :mod:`agent.corpus.clip` — the clip every generator yields, and shared draws.
- :mod:`agent.corpus.build` — the resumable builder writing WAVs and the manifest.
- :mod:`agent.corpus.manifest` — reading the provenance manifest.
"""

from agent.corpus.channel import CODECS, apply_codec, telephone_channel
from agent.corpus.config import CorpusConfig
from agent.corpus.manifest import CorpusItem, SourceRef, load_manifest

__all__ = [
    "CODECS",
    "CorpusConfig",
    "CorpusItem",
    "SourceRef",
    "apply_codec",
    "load_manifest",
    "telephone_channel",
]
