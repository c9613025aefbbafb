"""False answer supervision: a carrier that answers (200 OK) but keeps playing its ringback
or an announcement, so the call is billed while nobody is there.

With ``fas.seconds`` > 0 the worker keeps recording the carrier's audio for that long after
the answer and the analysis goes on; :class:`FasCheck` reads what the analysis reports
about the audio after the answer. Ringback or an announcement (two classified seconds of
the same class, or a class decision), a ringback, busy, congestion or SIT tone, or a
library match make the call suspected. The call store keeps
``{"suspected": bool, "evidence": [...]}`` (null when the check did not run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.errors import ConfigError

#: The most seconds after an answer that may be analysed (the tap stops anyway at
#: ``sip.max_early_media_s`` of audio).
MAX_SECONDS = 60.0
#: Classes that, heard after an answer, say the carrier did not really connect.
SUSPECT_LABELS = frozenset({"ringback", "announcement"})
#: Tones that say the same.
SUSPECT_TONES = frozenset({"ringback", "busy", "congestion", "sit"})
#: Seconds of one suspect class that count (one second alone may be a misread).
MIN_SECONDS = 2


@dataclass(frozen=True)
class FasConfig:
    """The ``fas`` section: ``seconds`` of carrier audio analysed after a 200 OK, 0 = off."""

    seconds: float = 0.0

    def validate(self) -> None:
        if not 0 <= self.seconds <= MAX_SECONDS:
            raise ConfigError(f"seconds: expected 0 (off) to {MAX_SECONDS:g}, got {self.seconds}")


@dataclass
class FasCheck:
    """What one answered call's audio after the answer showed.

    ``answer_s`` is where the answer fell in the call's audio (seconds since early media
    began); events before it are early media and ignored.
    """

    answer_s: float
    evidence: list[dict[str, Any]] = field(default_factory=list)
    _seconds: dict[str, list[int]] = field(default_factory=dict)

    @property
    def suspected(self) -> bool:
        return bool(self.evidence)

    def as_json(self) -> dict[str, Any]:
        return {"suspected": self.suspected, "evidence": list(self.evidence)}

    def on_event(self, kind: str, data: dict[str, Any]) -> bool:
        """Take one analysis event (``AnalysisEvent.kind`` and ``data``); True if it added
        evidence."""
        item: dict[str, Any] | None = None
        if kind == "second" and data.get("label") in SUSPECT_LABELS \
                and float(data["t"]) >= self.answer_s:
            label = str(data["label"])
            seen = self._seconds.setdefault(label, [])
            seen.append(int(data["t"]))
            if len(seen) == MIN_SECONDS:
                item = {"detector": "classifier", "label": label, "at_s": float(seen[0]),
                        "seconds": MIN_SECONDS}
        elif kind == "decision" and data.get("label") in SUSPECT_LABELS \
                and float(data["at_s"]) >= self.answer_s:
            item = {"detector": "classifier", "decision": data["label"], "at_s": data["at_s"]}
        elif kind == "tone" and data.get("kind") in SUSPECT_TONES \
                and float(data.get("at_s", -1.0)) >= self.answer_s:
            item = dict(data)
        elif kind == "match" and float(data.get("at_s", -1.0)) >= self.answer_s:
            item = dict(data)
        if item is None:
            return False
        item["after_answer_s"] = round(float(item["at_s"]) - self.answer_s, 3)
        self.evidence.append(item)
        return True
