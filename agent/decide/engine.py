"""One decision engine for the live agent and ``classify``.

A :class:`CallDecision` receives the call's evidence as it happens (the streaming
classifier's settled class, DSP tone events, fingerprint-library matches, the fingerprint
matcher giving up) and keeps one current :class:`~agent.labels.Inferred`. The precedence
is fixed and documented in ``config/sip_codes.yaml``: a library match beats a tone, which
beats the classifier, which beats a DSP ringback cadence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import build, read_yaml
from agent.errors import ConfigError
from agent.labels import LABELS, Decision, Inferred, LibraryMatch, ToneEvent
from agent.paths import CONFIG_DIR


@dataclass(frozen=True)
class Outcome:
    """A SIP response the agent may infer: code, reason text and Q.850 cause."""

    sip_code: int
    reason: str
    q850_cause: int | None = None

    def validate(self) -> None:
        if not 400 <= self.sip_code <= 699:
            raise ConfigError(f"sip_code: {self.sip_code} is not a SIP failure code (400-699)")
        if self.q850_cause is not None and not 1 <= self.q850_cause <= 127:
            raise ConfigError(f"q850_cause: {self.q850_cause} is not a Q.850 cause (1-127)")
        if not self.reason.strip():
            raise ConfigError("reason: must not be empty")


@dataclass(frozen=True)
class DecisionTable:
    """``config/sip_codes.yaml`` as typed data."""

    classes: dict[str, Outcome]
    tones: dict[str, Outcome]
    sit: dict[str, Outcome]
    q850_for_sip: dict[int, int] = field(default_factory=dict)

    def validate(self) -> None:
        missing = [label for label in LABELS if label not in self.classes]
        if missing:
            raise ConfigError(f"classes.{missing[0]}: required class mapping is missing")
        unknown = sorted(set(self.classes) - set(LABELS))
        if unknown:
            raise ConfigError(f"classes.{unknown[0]}: not a classifier label {LABELS}")
        for kind in ("busy", "congestion"):
            if kind not in self.tones:
                raise ConfigError(f"tones.{kind}: required tone mapping is missing")

    def q850_for(self, sip_code: int) -> int | None:
        return self.q850_for_sip.get(sip_code)


def load_table(path: str | Path | None = None) -> DecisionTable:
    """Read and validate the class/tone → SIP code table (default ``config/sip_codes.yaml``)."""
    p = Path(path) if path is not None else CONFIG_DIR / "sip_codes.yaml"
    return build(DecisionTable, read_yaml(p), prefix=p.name)


@dataclass(frozen=True)
class DecideConfig:
    """The ``decide`` section of the agent config."""

    sip_codes: str = ""  # path of the table; empty = the shipped config/sip_codes.yaml

    def table(self) -> DecisionTable:
        return load_table(self.sip_codes or None)


_RANK = {"fingerprint": 4, "tone": 3, "classifier": 2, "ringback_tone": 1}


def tone_basis(event: ToneEvent) -> str:
    """A tone event in words: ``busy tone``, ``SIT VC``.

    Not the matched country: many countries share one cadence, so it names a plan that
    fits, not where the call went (the evidence keeps it).
    """
    if event.kind == "sit":
        return f"SIT {event.sit_code}" if event.sit_code else "SIT"
    return f"{event.kind.replace('_', ' ')} tone"


class CallDecision:
    """The evidence of one call and the SIP code it currently implies.

    Feed it with :meth:`on_classifier`, :meth:`on_tone`, :meth:`on_match` and
    :meth:`on_matcher_gave_up` as the events happen; read :attr:`inferred`. An
    announcement settled by the classifier stays undecided while the fingerprint lookup
    is still trying (``fingerprint_pending``), since its code depends on which
    announcement it is.
    """

    def __init__(self, table: DecisionTable, *, fingerprint_enabled: bool = True) -> None:
        self._table = table
        self._fingerprint_enabled = fingerprint_enabled
        self._matcher_done = not fingerprint_enabled
        self._class: Decision | None = None
        self._best: tuple[int, Inferred] | None = None
        self.evidence: list[dict[str, Any]] = []

    @property
    def inferred(self) -> Inferred | None:
        """The current inference, or None while the evidence is not yet conclusive."""
        if self._best is not None:
            return self._best[1]
        return None

    def _offer(self, rank: int, inferred: Inferred) -> bool:
        if self._best is None or rank > self._best[0]:
            self._best = (rank, inferred)
            return True
        return False

    def _from_outcome(self, outcome: Outcome, source: str, basis: str) -> Inferred:
        return Inferred(
            sip_code=outcome.sip_code,
            reason=outcome.reason,
            q850_cause=outcome.q850_cause,
            source=source,
            evidence=self.evidence,
            basis=basis,
        )

    def on_classifier(self, decision: Decision) -> bool:
        """The streaming classifier settled (or changed) its class. True if inference changed."""
        if self._class is not None and self._class.label == decision.label:
            return False
        self._class = decision
        self.evidence.append(
            {"detector": "classifier", "label": decision.label, "at_s": round(decision.at_s, 3)}
        )
        if self._best is not None and self._best[0] == _RANK["classifier"]:
            self._best = None  # the class changed (announcement has priority): re-derive
        return self._apply_class()

    def _apply_class(self) -> bool:
        if self._class is None:
            return False
        label = self._class.label
        if label == "announcement" and not self._matcher_done:
            return False
        basis = f"class {label}"
        if label == "announcement" and self._fingerprint_enabled:
            basis += ", not in the library"
        return self._offer(_RANK["classifier"], self._from_outcome(self._table.classes[label],
                                                                   "classifier", basis))

    def on_matcher_gave_up(self, at_s: float) -> bool:
        """The fingerprint lookup found no library announcement; fall back to the class."""
        if self._matcher_done:
            return False
        self._matcher_done = True
        self.evidence.append({"detector": "fingerprint", "match": None, "at_s": round(at_s, 3)})
        return self._apply_class()

    def on_tone(self, event: ToneEvent) -> bool:
        """A DSP tone event. Busy, congestion and SIT decide; ringback only corroborates."""
        if event.kind == "sit":
            outcome = self._table.sit.get(event.sit_code or "ITU") or self._table.sit.get("ITU")
            rank = _RANK["tone"]
        elif event.kind in ("busy", "congestion"):
            outcome = self._table.tones[event.kind]
            rank = _RANK["tone"]
        elif event.kind == "ringback":
            outcome = self._table.tones.get("ringback", self._table.classes["ringback"])
            rank = _RANK["ringback_tone"]
        else:  # fax tones and anything new: evidence only
            outcome, rank = None, 0
        self.evidence.append(event.as_json())
        if outcome is None:
            return False
        return self._offer(rank, self._from_outcome(outcome, "tone", tone_basis(event)))

    def on_match(self, match: LibraryMatch) -> bool:
        """A fingerprint-library match: the announcement's own code wins."""
        self._matcher_done = True
        self.evidence.append(match.as_json())
        q850 = match.q850_cause if match.q850_cause is not None else self._table.q850_for(
            match.sip_code)
        return self._offer(
            _RANK["fingerprint"],
            Inferred(sip_code=match.sip_code, reason=match.reason, q850_cause=q850,
                     source="fingerprint", evidence=self.evidence,
                     basis=f"library entry {match.entry_id} (score {match.score:.2f})"),
        )

    def conclude(self, at_s: float) -> Inferred | None:
        """The stream ended (carrier's final answer, or end of file): settle what is pending."""
        if not self._matcher_done:
            self.on_matcher_gave_up(at_s)
        return self.inferred
