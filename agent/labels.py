"""The four early-media classes and the typed events the parts of the agent exchange."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LABELS: tuple[str, ...] = ("announcement", "ringback", "music", "silence")
LABEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(LABELS)}


@dataclass(slots=True)
class SecondResult:
    """The classifier's verdict on one second of early media starting at ``t`` seconds.

    Not frozen: a frozen dataclass sets each field through ``object.__setattr__``, which
    made building one cost 1.0 µs instead of 0.4 µs, a thirtieth of a classified second.
    Nothing changes one after it is made.
    """

    t: int
    label: str
    p: dict[str, float]

    def as_json(self) -> dict[str, Any]:
        return {"t": self.t, "label": self.label, "p": {k: round(v, 4) for k, v in self.p.items()}}


@dataclass(frozen=True, slots=True)
class Decision:
    """What the streaming rule settled on, and at which second of audio."""

    label: str
    at_s: float

    def as_json(self) -> dict[str, Any]:
        return {"label": self.label, "at_s": round(self.at_s, 3)}


@dataclass(frozen=True, slots=True)
class ToneEvent:
    """A call-progress tone recognised by the DSP detectors.

    ``kind`` is one of ``ringback``, ``busy``, ``congestion``, ``sit``, ``fax_cng``,
    ``fax_ced``. ``start_s`` is when the tone began in the stream, ``detected_s`` when the
    detector became sure. ``sit_code`` is ``IC``, ``VC``, ``RO``, ``NC``, ``IO`` or ``ITU``
    for SIT, else None. ``country`` is the tone-plan zone that matched, if any.
    """

    kind: str
    start_s: float
    detected_s: float
    country: str | None = None
    sit_code: str | None = None
    score: float = 1.0

    def as_json(self) -> dict[str, Any]:
        return {
            "detector": "tone",
            "kind": self.kind,
            "start_s": round(self.start_s, 3),
            "at_s": round(self.detected_s, 3),
            "country": self.country,
            "sit_code": self.sit_code,
            "score": round(self.score, 3),
        }


@dataclass(frozen=True, slots=True)
class LibraryMatch:
    """An announcement identified in the fingerprint library."""

    entry_id: int
    sip_code: int
    reason: str
    score: float
    detected_s: float
    q850_cause: int | None = None
    carrier: str | None = None
    lang: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "detector": "fingerprint",
            "entry_id": self.entry_id,
            "sip_code": self.sip_code,
            "reason": self.reason,
            "score": round(self.score, 3),
            "at_s": round(self.detected_s, 3),
        }


@dataclass(frozen=True, slots=True)
class Inferred:
    """The SIP failure code the agent infers for a call, with its evidence.

    ``basis`` says in words what drove the code (``busy tone``, ``SIT VC``, ``class
    ringback``, ``library entry 12``): the class decision alone can disagree with the code
    (a busy tone is ringback-like audio to the classifier, yet it means 486).
    """

    sip_code: int
    reason: str
    q850_cause: int | None
    source: str  # classifier | tone | fingerprint
    evidence: list[dict[str, Any]] = field(default_factory=list)
    basis: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "sip_code": self.sip_code,
            "reason": self.reason,
            "q850_cause": self.q850_cause,
            "source": self.source,
            "basis": self.basis,
            "evidence": list(self.evidence),
        }
