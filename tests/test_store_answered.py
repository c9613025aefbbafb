"""The call store's semantics of answered calls and decision times (issue 14, items 8, 9):
a 2xx ends the failure inference; ``decided_at`` is when the verdict was made, not when
the carrier's final response confirmed it; the schema step that adds ``first_decided_at``."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.labels import Decision, Inferred, SecondResult
from agent.store.calls import SCHEMA_VERSION, CallStore

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
RINGBACK = Inferred(480, "Temporarily unavailable (ringback)", 18, "classifier",
                    [{"detector": "classifier", "label": "ringback", "at_s": 3.0}])
UNALLOCATED = Inferred(404, "Unallocated number", 1, "fingerprint", [])


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_same_verdict_at_the_carrier_final_does_not_move_decided_at(store) -> None:
    store.create("c1", started_at=T0)
    assert store.set_inferred("c1", RINGBACK, decided_at=at(3))
    # The carrier's 480 at 9 s: the analyzer confirms with one more piece of evidence.
    confirmed = Inferred(480, RINGBACK.reason, 18, "classifier",
                         [*RINGBACK.evidence, {"detector": "carrier", "final_code": 480}])
    store.set_carrier_final("c1", 480)
    assert store.set_inferred("c1", confirmed, decided_at=at(9))
    body = store.get("c1").as_json()
    assert body["first_decided_at"] == body["decided_at"] == "2026-11-21T09:00:03.000Z"
    assert body["inferred"]["evidence"] == confirmed.evidence  # the richer evidence is kept


def test_a_changed_verdict_moves_decided_at_and_keeps_first_decided_at(store) -> None:
    store.create("c1", started_at=T0)
    store.set_inferred("c1", RINGBACK, decided_at=at(3))
    store.set_inferred("c1", UNALLOCATED, decided_at=at(21))
    rec = store.get("c1")
    assert rec.first_decided_at == at(3)
    assert rec.decided_at == at(21)
    assert rec.first_decided_at <= rec.decided_at
    assert rec.inferred.sip_code == 404


def test_an_answer_clears_the_inference_and_keeps_the_early_media_evidence(store) -> None:
    store.create("c1", carrier="acme", started_at=T0)
    store.add_second("c1", SecondResult(t=0, label="announcement", p={"announcement": 0.9}))
    store.add_evidence("c1", {"detector": "tone", "kind": "sit", "at_s": 0.8})
    store.add_decision("c1", Decision("announcement", 2.0))
    store.set_inferred("c1", RINGBACK, decided_at=at(3))
    dropped = store.set_answered("c1")
    assert dropped is not None and dropped.sip_code == 480
    rec = store.get("c1")
    assert (rec.state, rec.carrier_final_code, rec.inferred) == ("connected", 200, None)
    assert rec.answered
    assert rec.decided_at is None and rec.first_decided_at is None
    assert [s.label for s in rec.seconds] == ["announcement"]
    assert rec.evidence == [{"detector": "tone", "kind": "sit", "at_s": 0.8}]
    assert rec.decisions == [Decision("announcement", 2.0)]
    # A verdict arriving after the answer (analysis lags the SIP leg) is not stored.
    assert store.set_inferred("c1", UNALLOCATED, decided_at=at(5)) is False
    assert store.get("c1").inferred is None


def test_an_answered_call_counts_as_answered_and_in_no_inferred_code(store) -> None:
    for cid in ("answered", "failed"):
        store.create(cid, carrier="acme", started_at=T0)
        store.set_inferred(cid, RINGBACK, decided_at=at(3))
    store.set_answered("answered")
    store.set_carrier_final("failed", 480)
    [row] = store.asr("carrier", T0)
    assert (row.attempts, row.answered, row.inferred) == (2, 1, {480: 1})


def test_a_row_stored_answered_with_a_code_before_the_rule_is_not_counted(store) -> None:
    store.create("old", carrier="acme", started_at=T0)
    store.set_inferred("old", RINGBACK, decided_at=at(3))
    store.set_carrier_final("old", 200)  # what the agent did before set_answered
    [row] = store.asr("carrier", T0)
    assert (row.answered, row.inferred) == (1, {})


def test_set_answered_rejects_a_failure_code_and_an_unknown_call(store) -> None:
    store.create("c1")
    with pytest.raises(ValueError, match="2xx"):
        store.set_answered("c1", 486)
    with pytest.raises(KeyError):
        store.set_answered("ghost")
    with pytest.raises(KeyError):
        store.set_inferred("ghost", RINGBACK)


def test_a_version_1_store_gains_first_decided_at(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite"
    with CallStore(path) as store:
        store.create("v1@gw", started_at=T0)
        store.set_inferred("v1@gw", RINGBACK, decided_at=at(3))
    db = sqlite3.connect(path)  # back to the version-1 layout
    db.executescript("ALTER TABLE calls DROP COLUMN first_decided_at;"
                     " ALTER TABLE calls DROP COLUMN fas; PRAGMA user_version = 1;")
    db.close()
    with CallStore(path) as store:
        rec = store.get("v1@gw")
        assert rec.decided_at == at(3) and rec.first_decided_at is None
        store.set_inferred("v1@gw", UNALLOCATED, decided_at=at(7))
        assert store.get("v1@gw").first_decided_at == at(7)
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION


class _StaleVersion:
    """A connection whose first ``PRAGMA user_version`` answers 1: the view of a process
    that read the version just before another one migrated the file."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.stale = True

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql == "PRAGMA user_version" and self.stale:
            self.stale = False
            return self.db.execute("SELECT 1")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)


def test_two_processes_migrating_the_same_file_both_open_it(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite"
    store = CallStore(path)  # the first process has migrated it
    real = store._db
    store._db = _StaleVersion(real)  # type: ignore[assignment]
    try:
        store._migrate()  # the second: its ALTER TABLE fails, the version says done
    finally:
        store._db = real
    store.create("c1")
    assert store.set_inferred("c1", RINGBACK)
    store.close()


def test_the_fas_check_round_trips(store) -> None:
    store.create("c1")
    assert store.get("c1").as_json()["fas"] is None  # not checked
    check = {"suspected": True, "evidence": [{"detector": "classifier", "label": "ringback",
                                              "at_s": 6.0, "after_answer_s": 1.0}]}
    store.set_fas("c1", check)
    assert store.get("c1").fas == check
    with pytest.raises(KeyError):
        store.set_fas("ghost", check)
