"""The dashboard's reports over the call store: carrier honesty, "sent X, really Y" pairs,
counts per time bucket, and the until bound of the store's own window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent.labels import Inferred
from agent.store import queries
from agent.store.calls import CallStore

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _call(store: CallStore, cid: str, carrier: str | None, *, sent: int | None,
          inferred: int | None = None, minutes: float = 0.0, route: str = "r1") -> None:
    store.create(cid, carrier=carrier, route=route, started_at=T0 + timedelta(minutes=minutes))
    if inferred is not None:
        store.set_inferred(cid, Inferred(inferred, "why", None, "fingerprint"))
    if sent == 200:
        store.set_answered(cid, 200)
    elif sent is not None:
        store.set_carrier_final(cid, sent)
        store.set_state(cid, "failed")


@pytest.fixture
def traffic(store: CallStore) -> CallStore:
    _call(store, "a1", "acme", sent=480, inferred=404, minutes=1)
    _call(store, "a2", "acme", sent=480, inferred=404, minutes=2)
    _call(store, "a3", "acme", sent=486, inferred=486, minutes=3)   # honest
    _call(store, "a4", "acme", sent=200, minutes=4)
    _call(store, "a5", "acme", sent=503, minutes=5)                 # failed, not judged
    _call(store, "z1", "zeta", sent=503, inferred=480, minutes=70)
    _call(store, "z2", "zeta", sent=None, inferred=486, minutes=71)  # still early
    _call(store, "n1", None, sent=200, minutes=72)
    return store


def test_honesty_counts_failed_judged_and_differing_calls_per_carrier(traffic) -> None:
    rows = {r.key: r for r in queries.honesty(traffic, "carrier", T0)}
    assert rows["acme"] == queries.HonestyRow("acme", attempts=5, failed=4, judged=3, differs=2)
    assert rows["acme"].share == pytest.approx(2 / 3)
    assert rows["zeta"] == queries.HonestyRow("zeta", attempts=2, failed=1, judged=1, differs=1)
    assert rows[None].judged == 0 and rows[None].share is None
    assert [r.key for r in queries.honesty(traffic, "carrier", T0)][:2] == ["acme", "zeta"]


def test_honesty_by_route_and_a_bad_grouping() -> None:
    store = CallStore(":memory:")
    _call(store, "c", "acme", sent=480, inferred=404, route="in-mob")
    assert [(r.key, r.differs) for r in queries.honesty(store, "route", T0)] == [("in-mob", 1)]
    with pytest.raises(ValueError, match="by: expected one of carrier, route"):
        queries.honesty(store, "number", T0)


def test_code_pairs_are_the_differing_calls_most_frequent_first(traffic) -> None:
    pairs = queries.code_pairs(traffic, T0)
    assert pairs == [queries.CodePair("acme", 480, 404, 2), queries.CodePair("zeta", 503, 480, 1)]
    assert queries.code_pairs(traffic, T0, key="zeta") == pairs[1:]
    assert queries.code_pairs(traffic, T0, limit=1) == pairs[:1]


def test_the_window_is_since_inclusive_until_exclusive(traffic) -> None:
    first_hour = dict(since=T0, until=T0 + timedelta(minutes=60))
    assert {r.key for r in queries.honesty(traffic, "carrier", **first_hour)} == {"acme"}
    assert queries.code_pairs(traffic, **first_hour) == [queries.CodePair("acme", 480, 404, 2)]
    assert [c.call_id for c in traffic.list_since(T0 + timedelta(minutes=3),
                                                  until=T0 + timedelta(minutes=5))] == ["a4", "a3"]
    asr = {r.key: r for r in traffic.asr("carrier", T0, T0 + timedelta(minutes=60))}
    assert set(asr) == {"acme"} and asr["acme"].attempts == 5 and asr["acme"].answered == 1


@pytest.mark.parametrize(("span", "width"), [
    (timedelta(hours=1), 300), (timedelta(hours=24), 1800), (timedelta(days=7), 6 * 3600),
    (timedelta(minutes=5), 60), (timedelta(days=3650), 30 * 86400),
])
def test_bucket_width_keeps_a_timeline_within_its_bucket_count(span, width) -> None:
    assert queries.bucket_width(span.total_seconds()) == width


def test_timeline_counts_each_carrier_and_code_in_its_bucket(traffic) -> None:
    tl = queries.timeline(traffic, T0, T0 + timedelta(hours=2))
    assert (tl.start, tl.width_s, tl.n) == (T0, 300, 24)
    assert len(tl.edges()) == 25 and tl.edges()[-1] == T0 + timedelta(hours=2)
    assert tl.attempts["acme"][0] == 4 and tl.attempts["acme"][1] == 1
    assert sum(tl.attempts["zeta"]) == 2 and tl.attempts["zeta"][14] == 2
    assert tl.answered["acme"][0] == 1 and tl.asr("acme")[0] == 0.25 and tl.asr("acme")[2] is None
    assert tl.differing_share("acme")[0] == pytest.approx(2 / 3)
    assert tl.codes[404][0] == 2 and tl.codes[486] == [1] + [0] * 13 + [1] + [0] * 9


def test_timeline_of_one_carrier_and_answered_calls_have_no_code(traffic) -> None:
    tl = queries.timeline(traffic, T0, T0 + timedelta(hours=2), carrier="zeta")
    assert set(tl.attempts) == {"zeta"}
    assert {code: sum(v) for code, v in tl.codes.items()} == {480: 1, 486: 1}


def test_the_reports_read_a_window_from_an_index_not_from_the_calls_rows(traffic) -> None:
    plan = " ".join(r[3] for r in traffic.read(
        "EXPLAIN QUERY PLAN SELECT carrier, COUNT(*), SUM(inferred_code != carrier_final_code)"
        " FROM calls WHERE started_at >= ? AND started_at < ? GROUP BY carrier", (0.0, 1e12)))
    assert "COVERING INDEX calls_window" in plan
