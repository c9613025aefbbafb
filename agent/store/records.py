"""What the call store returns: one call's record and the ASR of a carrier or route.

Plain data with the JSON shapes of the HTTP API (``agent/api/openapi.yaml``); the store
(:mod:`agent.store.calls`) builds them, the API, the dashboard and the CDR export read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.labels import Decision, Inferred, SecondResult

STATES: tuple[str, ...] = ("early", "decided", "connected", "failed", "ended")
#: States after which nothing more will be decided for a call; a long poll stops waiting.
FINAL_STATES: frozenset[str] = frozenset({"connected", "failed", "ended"})
#: SQL condition of an answered call: the carrier sent a 2xx or the call reached
#: ``connected``. Shared by every statistic so ASR means one thing everywhere.
ANSWERED_SQL = "(state = 'connected' OR carrier_final_code BETWEEN 200 AND 299)"
#: SQL condition of a call whose inferred code counts in a statistic: the carrier did not
#: answer it (an answered call has none; rows stored before that rule are left out too).
UNANSWERED_SQL = "(carrier_final_code IS NULL OR carrier_final_code NOT BETWEEN 200 AND 299)"


def epoch_s(when: datetime | None) -> float:
    """Epoch seconds of ``when``; naive datetimes are taken as UTC, None is now."""
    if when is None:
        return datetime.now(UTC).timestamp()
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ts(when: datetime | None) -> float | None:
    return None if when is None else when.timestamp()


@dataclass(frozen=True, slots=True)
class CallRecord:
    """Everything stored about one call, as the API returns it."""

    call_id: str
    correlation_id: str | None
    carrier: str | None
    route: str | None
    state: str
    carrier_final_code: int | None
    inferred: Inferred | None
    seconds: list[SecondResult]
    evidence: list[dict[str, Any]]
    started_at: datetime
    decided_at: datetime | None
    decisions: list[Decision] = field(default_factory=list)
    first_decided_at: datetime | None = None
    fas: dict[str, Any] | None = None

    @property
    def answered(self) -> bool:
        """True if the carrier answered (2xx): no failure is inferred for such a call."""
        return self.carrier_final_code is not None and 200 <= self.carrier_final_code < 300

    @property
    def settled(self) -> bool:
        """True once a decision exists or the call reached a final state."""
        return self.inferred is not None or self.state in FINAL_STATES

    def as_json(self) -> dict[str, Any]:
        """The ``Call`` object of the HTTP API (see ``agent/api/openapi.yaml``).

        ``evidence`` at the top level is every detector event recorded for the call, in
        order; ``inferred.evidence`` is what the decision engine cited for its verdict.
        ``decisions`` is the class decision history, ``decision`` the last of it.
        ``first_decided_at`` is when a code was first inferred, ``decided_at`` when the
        current ``inferred`` was (a later verdict with the same code does not move it).
        """
        return {
            "call_id": self.call_id,
            "correlation_id": self.correlation_id,
            "carrier": self.carrier,
            "route": self.route,
            "state": self.state,
            "carrier_final_code": self.carrier_final_code,
            "inferred": self.inferred.as_json() if self.inferred is not None else None,
            "decision": self.decisions[-1].as_json() if self.decisions else None,
            "decisions": [d.as_json() for d in self.decisions],
            "seconds": [s.as_json() for s in self.seconds],
            "evidence": list(self.evidence),
            "started_at": _iso(self.started_at.timestamp()),
            "first_decided_at": _iso(_ts(self.first_decided_at)),
            "decided_at": _iso(_ts(self.decided_at)),
            "fas": self.fas,
        }


@dataclass(frozen=True, slots=True)
class AsrRow:
    """Answer seizure ratio of one carrier or route, with the codes inferred for its calls.

    ``inferred`` maps an inferred SIP code to how many calls got it.
    """

    key: str | None
    attempts: int
    answered: int
    inferred: dict[int, int] = field(default_factory=dict)

    @property
    def asr(self) -> float:
        return self.answered / self.attempts if self.attempts else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "attempts": self.attempts,
            "answered": self.answered,
            "asr": round(self.asr, 4),
            "inferred": {str(code): n for code, n in sorted(self.inferred.items())},
        }
