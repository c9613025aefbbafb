"""Reports over the call store for the dashboard: carrier honesty and activity over time.

Read-only SQL over :meth:`agent.store.calls.CallStore.read`, one statement per report, each
bounded by the ``started_at`` index to a time window ``[since, until)``.

The words, used the same way on every page:

- a call *failed* when the carrier's final response was 300 or above;
- it is *judged* when it failed and the agent inferred a code for it from the early media;
- its code *differs* when the inferred code is not the one the carrier sent: the carrier
  said 480 where its own announcement said the number does not exist (404).

*Answered* is :data:`agent.store.records.ANSWERED_SQL`, as in every ASR figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agent.store.calls import GROUP_BY, CallStore
from agent.store.records import ANSWERED_SQL, UNANSWERED_SQL, epoch_s

_FAILED = "carrier_final_code >= 300"
_JUDGED = f"({_FAILED} AND inferred_code IS NOT NULL)"
_DIFFERS = f"({_JUDGED} AND inferred_code != carrier_final_code)"
_WINDOW = "started_at >= ? AND started_at < ?"
#: Bucket widths a timeline may use, seconds; the narrowest that gives at most
#: :data:`MAX_BUCKETS` buckets is taken.
BUCKET_WIDTHS_S: tuple[int, ...] = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600,
                                    86400, 7 * 86400, 30 * 86400)
MAX_BUCKETS = 48


@dataclass(frozen=True, slots=True)
class HonestyRow:
    """How often one carrier's (or route's) failure codes differ from the inferred ones."""

    key: str | None
    attempts: int
    failed: int
    judged: int
    differs: int

    @property
    def share(self) -> float | None:
        """Differing share of the judged calls; None when none was judged."""
        return self.differs / self.judged if self.judged else None


@dataclass(frozen=True, slots=True)
class CodePair:
    """``calls`` failed calls of ``key`` where the carrier sent ``sent`` and the agent
    inferred ``really``."""

    key: str | None
    sent: int
    really: int
    calls: int


@dataclass(frozen=True, slots=True)
class Timeline:
    """Counts per time bucket: bucket ``i`` covers ``[start + i*width_s, start + (i+1)*width_s)``.

    ``attempts``, ``answered``, ``judged`` and ``differs`` map a carrier to one count per
    bucket; ``codes`` maps an inferred code (of calls not answered) to one count per bucket.
    """

    start: datetime
    width_s: int
    n: int
    attempts: dict[str | None, list[int]] = field(default_factory=dict)
    answered: dict[str | None, list[int]] = field(default_factory=dict)
    judged: dict[str | None, list[int]] = field(default_factory=dict)
    differs: dict[str | None, list[int]] = field(default_factory=dict)
    codes: dict[int, list[int]] = field(default_factory=dict)

    def edges(self) -> list[datetime]:
        """The start of every bucket and the end of the last, ``n + 1`` times."""
        t0 = self.start.timestamp()
        return [datetime.fromtimestamp(t0 + i * self.width_s, UTC) for i in range(self.n + 1)]

    def asr(self, key: str | None) -> list[float | None]:
        """ASR of ``key`` per bucket; None where it had no attempt."""
        return [a / n if n else None
                for a, n in zip(self.answered.get(key, []), self.attempts.get(key, []),
                                strict=True)]

    def differing_share(self, key: str | None) -> list[float | None]:
        """Differing share of ``key``'s judged calls per bucket; None where none was judged."""
        return [d / j if j else None
                for d, j in zip(self.differs.get(key, []), self.judged.get(key, []),
                                strict=True)]


def _window(since: datetime, until: datetime | None) -> tuple[float, float]:
    t1 = epoch_s(until) if until is not None else datetime.now(UTC).timestamp()
    return epoch_s(since), t1


def _check_by(by: str) -> None:
    if by not in GROUP_BY:
        raise ValueError(f"by: expected one of {', '.join(GROUP_BY)}, got {by!r}")


def honesty(store: CallStore, by: str, since: datetime,
            until: datetime | None = None) -> list[HonestyRow]:
    """Per carrier (or route): attempts, failed, judged and differing calls in the window.

    Rows are ordered by differing calls, then attempts, most first.
    """
    _check_by(by)
    rows = store.read(
        f"SELECT {by} AS k, COUNT(*) AS attempts, SUM({_FAILED}) AS failed,"
        f" SUM({_JUDGED}) AS judged, SUM({_DIFFERS}) AS differs"
        f" FROM calls WHERE {_WINDOW} GROUP BY {by}", _window(since, until))
    out = [HonestyRow(r["k"], r["attempts"], r["failed"] or 0, r["judged"] or 0,
                      r["differs"] or 0) for r in rows]
    return sorted(out, key=lambda r: (-r.differs, -r.attempts, r.key or ""))


def code_pairs(store: CallStore, since: datetime, until: datetime | None = None, *,
               by: str = "carrier", key: str | None = None, limit: int = 20) -> list[CodePair]:
    """The most frequent "sent X, really Y" pairs among differing calls, most first.

    ``key`` keeps one carrier's (or route's) calls only; None keeps all.
    """
    _check_by(by)
    where = f"{_WINDOW} AND {_DIFFERS}"
    params: tuple[float | str, ...] = _window(since, until)
    if key is not None:
        where, params = f"{where} AND {by} = ?", (*params, key)
    rows = store.read(
        f"SELECT {by} AS k, carrier_final_code AS sent, inferred_code AS really,"
        f" COUNT(*) AS n FROM calls WHERE {where} GROUP BY {by}, sent, really"
        " ORDER BY n DESC, k, sent, really LIMIT ?", (*params, limit))
    return [CodePair(r["k"], r["sent"], r["really"], r["n"]) for r in rows]


def bucket_width(span_s: float) -> int:
    """The narrowest of :data:`BUCKET_WIDTHS_S` that cuts ``span_s`` into at most
    :data:`MAX_BUCKETS` buckets."""
    for width in BUCKET_WIDTHS_S:
        if span_s / width <= MAX_BUCKETS:
            return width
    return BUCKET_WIDTHS_S[-1]


def timeline(store: CallStore, since: datetime, until: datetime | None = None, *,
             carrier: str | None = None) -> Timeline:
    """Attempts, answered, judged and differing calls per carrier, and inferred codes, per
    time bucket; buckets start at a multiple of their width (whole hours, days).

    ``carrier`` restricts every count to that carrier's calls; None counts all.
    """
    t0, t1 = _window(since, until)
    width = bucket_width(max(t1 - t0, 1.0))
    start = math.floor(t0 / width) * width
    n = max(1, math.ceil((t1 - start) / width))
    where = _WINDOW
    params: tuple[float | str, ...] = (t0, t1)
    if carrier is not None:
        where, params = f"{where} AND carrier = ?", (*params, carrier)
    bucket = f"CAST((started_at - {start!r}) / {width} AS INTEGER)"
    per_carrier = store.read(
        f"SELECT {bucket} AS b, carrier AS k, COUNT(*) AS attempts,"
        f" SUM({ANSWERED_SQL}) AS answered, SUM({_JUDGED}) AS judged,"
        f" SUM({_DIFFERS}) AS differs FROM calls WHERE {where} GROUP BY b, k", params)
    per_code = store.read(
        f"SELECT {bucket} AS b, inferred_code AS code, COUNT(*) AS n FROM calls"
        f" WHERE {where} AND inferred_code IS NOT NULL AND {UNANSWERED_SQL}"
        " GROUP BY b, code", params)
    out = Timeline(start=datetime.fromtimestamp(start, UTC), width_s=width, n=n)
    for r in per_carrier:
        for name, table in (("attempts", out.attempts), ("answered", out.answered),
                            ("judged", out.judged), ("differs", out.differs)):
            table.setdefault(r["k"], [0] * n)[min(r["b"], n - 1)] += r[name] or 0
    for r in per_code:
        out.codes.setdefault(r["code"], [0] * n)[min(r["b"], n - 1)] += r["n"]
    return out
