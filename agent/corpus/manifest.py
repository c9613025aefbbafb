"""The corpus's provenance manifest: one JSON object per audio file, one file per line.

Every file names the Debian package and path its audio was cut from, where, and every
transform applied, so a result can always be traced back to real, licensed audio.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import UserError
from agent.labels import LABELS

MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class SourceRef:
    """A stretch of source audio: the package that ships it, the file, and where in it."""

    package: str
    path: str
    start_s: float
    duration_s: float


@dataclass(frozen=True)
class CorpusItem:
    """One corpus file.

    ``label`` is the true class of its source; ``group`` is shared by files cut from the
    same source audio, so a grouped train/test split never tests on audio it trained on.
    ``path`` is relative to the corpus directory.

    ``voice`` says who or what made the sound, and its part before the first ``/`` is the
    voice family a leave-one-out evaluation holds out (:func:`voice_family`):

    - announcements: ``<debian-package>/<speaker>`` (``asterisk-core-sounds-en-wav/
      en_US_f_Allison``, ``festvox-czech-dita/czech_dita``); one file, one voice;
    - music: the source package; ``vocals`` marks songs with singing;
    - ringback: ``agent.tones/<country>``; silence: ``synthetic/<kind>``.

    ``engine`` is ``human``, ``festival``, ``music``, ``tone`` or ``synthetic``.
    """

    id: str
    label: str
    group: str
    path: str
    duration_s: float
    sources: tuple[SourceRef, ...] = ()
    transforms: dict[str, Any] = field(default_factory=dict)
    voice: str = ""
    engine: str = ""
    vocals: bool = False

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["sources"] = [asdict(s) for s in self.sources]
        return d


def voice_family(voice: str) -> str:
    """The family of a voice: its package (the part before the first ``/``)."""
    return voice.split("/", 1)[0]


def voice_families(items: Sequence[CorpusItem], *,
                   label: str | None = None) -> dict[str, list[str]]:
    """Voice families of a manifest (of one class if ``label`` is given), each with its
    voices, sorted."""
    out: dict[str, set[str]] = {}
    for it in items:
        if label is None or it.label == label:
            out.setdefault(voice_family(it.voice), set()).add(it.voice)
    return {fam: sorted(out[fam]) for fam in sorted(out)}


def _derived_voice(label: str, sources: tuple[SourceRef, ...],
                   mix: dict[str, Any]) -> tuple[str, str]:
    """Voice and engine of an item from a manifest written before they were recorded.

    Such corpora spoke announcements only with the Asterisk prompt voices, whose speaker
    is the directory under ``sounds/``.
    """
    first = sources[0] if sources else SourceRef("unknown", "", 0.0, 0.0)
    if label == "announcement":
        parts = Path(first.path).parts
        speaker = (parts[parts.index("sounds") + 1] if "sounds" in parts[:-1]
                   else Path(first.path).parent.name)
        return f"{first.package}/{speaker}", "human"
    if label == "music":
        return first.package, "music"
    if label == "ringback":
        country = mix.get("country") or first.path.split("/", 1)[0]
        return f"{first.package}/{country}", "tone"
    kind = mix.get("kind") or first.path.rsplit("/", 1)[-1]
    return f"{first.package}/{kind}", "synthetic"


def _item_from_json(obj: Any, where: str) -> CorpusItem:
    if not isinstance(obj, dict):
        raise UserError(f"{where}: expected a JSON object")
    try:
        sources = tuple(
            SourceRef(
                package=str(s["package"]),
                path=str(s["path"]),
                start_s=float(s["start_s"]),
                duration_s=float(s["duration_s"]),
            )
            for s in obj.get("sources", [])
        )
        label = str(obj["label"])
        transforms = dict(obj.get("transforms", {}))
        if label not in LABELS:
            raise UserError(f"{where}: unknown label {label!r}")
        voice, engine = str(obj.get("voice", "")), str(obj.get("engine", ""))
        if not voice or not engine:
            voice, engine = _derived_voice(label, sources, dict(transforms.get("mix", {})))
        return CorpusItem(
            id=str(obj["id"]),
            label=label,
            group=str(obj["group"]),
            path=str(obj["path"]),
            duration_s=float(obj["duration_s"]),
            sources=sources,
            transforms=transforms,
            voice=voice,
            engine=engine,
            vocals=bool(obj.get("vocals", False)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{where}: bad manifest entry ({type(exc).__name__}: {exc})") from None


def load_manifest(directory: str | Path) -> list[CorpusItem]:
    """Read ``<directory>/manifest.jsonl``.

    Parameters
    ----------
    directory : str or Path
        A corpus directory written by ``early-media-agent corpus build``.

    Returns
    -------
    list of CorpusItem
        In the order the files were built.

    Raises
    ------
    UserError
        When the manifest is missing, or a line is not valid JSON or lacks a field
        (the message names the line).
    """
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise UserError(f"{path}: no corpus manifest (run: early-media-agent corpus build)")
    items = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{where}: corrupt manifest line ({exc.msg})") from None
            item = _item_from_json(obj, where)
            if item.id in seen:
                raise UserError(f"{where}: duplicate id {item.id!r}")
            seen.add(item.id)
            items.append(item)
    return items


def append_item(directory: str | Path, item: CorpusItem) -> None:
    """Append one line to the manifest with a single write, flushed to disk.

    One ``write`` on an ``O_APPEND`` file lands whole, so a build killed at any moment
    leaves a manifest of complete lines that a resumed build can trust.
    """
    line = json.dumps(item.as_json(), separators=(",", ":"), sort_keys=True) + "\n"
    fd = os.open(Path(directory) / MANIFEST, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def rewrite_manifest(directory: str | Path, items: list[CorpusItem]) -> None:
    """Replace the manifest with ``items`` atomically (written aside, then renamed)."""
    path = Path(directory) / MANIFEST
    tmp = path.with_suffix(".part")
    tmp.write_text("".join(json.dumps(it.as_json(), separators=(",", ":"), sort_keys=True)
                           + "\n" for it in items), encoding="utf-8")
    os.replace(tmp, path)
