"""The call store: round trips, lookups, ASR aggregation, pruning, and sharing across threads
and processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.errors import UserError
from agent.labels import Decision, Inferred, SecondResult, ToneEvent
from agent.store.calls import SCHEMA_VERSION, CallStore

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
BUSY = Inferred(
    sip_code=486, reason="busy tone", q850_cause=17, source="tone",
    evidence=[ToneEvent(kind="busy", start_s=0.4, detected_s=1.3, country="in").as_json()],
)


def test_a_created_call_is_early_with_nothing_inferred(store: CallStore) -> None:
    assert store.create("c1@dialer", correlation_id="job-1", carrier="acme", route="in-mob",
                        started_at=T0)
    rec = store.get("c1@dialer")
    assert rec is not None
    assert rec.as_json() == {
        "call_id": "c1@dialer", "correlation_id": "job-1", "carrier": "acme", "route": "in-mob",
        "state": "early", "carrier_final_code": None, "inferred": None, "decision": None,
        "decisions": [], "seconds": [], "evidence": [], "started_at": "2026-11-21T09:00:00.000Z",
        "first_decided_at": None, "decided_at": None, "fas": None,
    }


def test_seconds_evidence_inference_and_final_code_round_trip(store: CallStore) -> None:
    store.create("c1", started_at=T0)
    seconds = [
        SecondResult(t=1, label="silence", p={"silence": 0.91234567, "ringback": 0.08765433}),
        SecondResult(t=0, label="ringback", p={"ringback": 0.7, "music": 0.3}),
    ]
    for s in seconds:
        store.add_second("c1", s)
    tone = ToneEvent(kind="busy", start_s=0.5, detected_s=1.2).as_json()
    store.add_evidence("c1", tone)
    store.add_evidence("c1", {"detector": "classifier", "label": "silence", "at_s": 2.0})
    store.set_inferred("c1", BUSY, decided_at=T0 + timedelta(seconds=1.25))
    store.set_carrier_final("c1", 480)
    out = store.get("c1").as_json()
    assert out["seconds"] == [seconds[1].as_json(), seconds[0].as_json()]
    assert out["evidence"] == [tone, {"detector": "classifier", "label": "silence", "at_s": 2.0}]
    assert out["inferred"] == BUSY.as_json()
    assert out["decided_at"] == "2026-11-21T09:00:01.250Z"
    assert out["carrier_final_code"] == 480
    assert out["state"] == "decided"


def test_a_repeated_second_replaces_the_earlier_result(store: CallStore) -> None:
    store.create("c1")
    store.add_second("c1", SecondResult(t=0, label="music", p={"music": 0.6}))
    store.add_second("c1", SecondResult(t=0, label="ringback", p={"ringback": 0.9}))
    assert [s.label for s in store.get("c1").seconds] == ["ringback"]


def test_lookup_by_correlation_id_returns_the_latest_call_carrying_it(store: CallStore) -> None:
    store.create("first", correlation_id="job-9", started_at=T0)
    store.create("retry", correlation_id="job-9", started_at=T0 + timedelta(seconds=30))
    assert store.get("job-9").call_id == "retry"
    assert store.get("first").call_id == "first"
    assert store.get("job-10") is None


def test_creating_a_known_call_again_changes_nothing(store: CallStore) -> None:
    assert store.create("c1", carrier="acme")
    store.set_state("c1", "connected")
    assert not store.create("c1", carrier="other")
    rec = store.get("c1")
    assert (rec.carrier, rec.state) == ("acme", "connected")


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.add_second("ghost", SecondResult(t=0, label="music", p={})),
        lambda s: s.add_evidence("ghost", {"detector": "tone"}),
        lambda s: s.set_inferred("ghost", BUSY),
        lambda s: s.set_state("ghost", "ended"),
        lambda s: s.set_carrier_final("ghost", 503),
    ],
    ids=["add_second", "add_evidence", "set_inferred", "set_state", "set_carrier_final"],
)
def test_writes_to_an_unknown_call_raise_key_error(store: CallStore, write) -> None:
    with pytest.raises(KeyError, match="ghost"):
        write(store)


@pytest.mark.parametrize("state", ["ringing", "", "EARLY", None])
def test_set_state_rejects_unknown_states(store: CallStore, state) -> None:
    store.create("c1")
    with pytest.raises(ValueError, match="state"):
        store.set_state("c1", state)


@pytest.mark.parametrize("code", [99, 700, 0, -486, "486", 486.0, True])
def test_set_carrier_final_rejects_non_sip_codes(store: CallStore, code) -> None:
    store.create("c1")
    with pytest.raises(ValueError, match="code"):
        store.set_carrier_final("c1", code)


def test_inference_does_not_move_a_call_out_of_a_final_state(store: CallStore) -> None:
    store.create("c1")
    store.set_state("c1", "failed")
    store.set_inferred("c1", BUSY)
    assert store.get("c1").state == "failed"


def test_list_since_is_newest_first_filtered_and_limited(store: CallStore) -> None:
    for i in range(5):
        store.create(f"c{i}", started_at=T0 + timedelta(minutes=i))
    ids = [r.call_id for r in store.list_since(T0 + timedelta(minutes=1))]
    assert ids == ["c4", "c3", "c2", "c1"]
    assert [r.call_id for r in store.list_since(T0, limit=2)] == ["c4", "c3"]
    naive = (T0 + timedelta(minutes=3)).replace(tzinfo=None)
    assert [r.call_id for r in store.list_since(naive)] == ["c4", "c3"]
    with pytest.raises(ValueError, match="limit"):
        store.list_since(T0, limit=0)


def _fill_for_asr(store: CallStore) -> None:
    calls = [
        # call_id, carrier, route, final code, state, inferred code
        ("a1", "acme", "mob", 200, "connected", None),
        ("a2", "acme", "mob", 480, "failed", 486),
        ("a3", "acme", "fix", 503, "failed", 404),
        ("a4", "acme", "fix", 480, "failed", 486),
        ("b1", "beta", "mob", None, "connected", None),
        ("b2", "beta", "mob", None, "early", None),
        ("n1", None, "mob", 480, "failed", 480),
    ]
    for cid, carrier, route, code, state, inferred in calls:
        store.create(cid, carrier=carrier, route=route, started_at=T0)
        if code is not None:
            store.set_carrier_final(cid, code)
        if inferred is not None:
            store.set_inferred(cid, Inferred(inferred, "x", None, "fingerprint"))
        store.set_state(cid, state)
    store.create("old", carrier="acme", route="mob", started_at=T0 - timedelta(days=1))
    store.set_state("old", "connected")


def test_asr_per_carrier_counts_attempts_answers_and_inferred_codes(store: CallStore) -> None:
    _fill_for_asr(store)
    rows = {r.key: r for r in store.asr("carrier", T0)}
    assert set(rows) == {"acme", "beta", None}
    acme = rows["acme"]
    assert (acme.attempts, acme.answered, acme.inferred) == (4, 1, {486: 2, 404: 1})
    assert acme.asr == pytest.approx(0.25)
    assert (rows["beta"].attempts, rows["beta"].answered, rows["beta"].asr) == (2, 1, 0.5)
    assert rows[None].as_json() == {
        "key": None, "attempts": 1, "answered": 0, "asr": 0.0, "inferred": {"480": 1}
    }
    assert [r.key for r in store.asr("carrier", T0)][0] == "acme"


def test_asr_per_route_groups_by_route(store: CallStore) -> None:
    _fill_for_asr(store)
    rows = {r.key: r for r in store.asr("route", T0 - timedelta(days=2))}
    assert (rows["mob"].attempts, rows["mob"].answered) == (6, 3)
    fix = rows["fix"]
    assert (fix.attempts, fix.answered, fix.inferred) == (2, 0, {404: 1, 486: 1})


def test_asr_rejects_unknown_grouping(store: CallStore) -> None:
    with pytest.raises(ValueError, match="by"):
        store.asr("country", T0)


def test_prune_deletes_old_calls_with_their_seconds_and_evidence(store: CallStore) -> None:
    store.create("old", started_at=T0 - timedelta(days=40))
    store.add_second("old", SecondResult(t=0, label="music", p={"music": 1.0}))
    store.add_evidence("old", {"detector": "tone"})
    store.create("new", started_at=T0)
    assert store.prune(T0 - timedelta(days=30)) == 1
    assert store.get("old") is None and store.get("new") is not None
    store.create("old", started_at=T0)
    rec = store.get("old")
    assert rec.seconds == [] and rec.evidence == []


def test_file_store_uses_wal_and_is_visible_to_a_second_connection(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite"
    with CallStore(path) as writer, CallStore(path) as reader:
        writer.create("c1", correlation_id="k")
        writer.set_inferred("c1", BUSY)
        assert reader.get("k").inferred == BUSY
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_default_path_is_under_the_data_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    with CallStore() as s:
        assert Path(s.path) == tmp_path / "early-media-agent" / "calls.sqlite"
    assert Path(s.path).is_file()


def test_concurrent_writer_threads_lose_nothing(tmp_path: Path) -> None:
    store = CallStore(tmp_path / "calls.sqlite")

    def work(k: int) -> None:
        for i in range(25):
            cid = f"t{k}-{i}"
            store.create(cid)
            store.add_second(cid, SecondResult(t=0, label="silence", p={"silence": 1.0}))
            store.set_state(cid, "ended")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    calls = store.list_since(T0 - timedelta(days=1), limit=1000)
    assert len(calls) == 100
    assert all(c.state == "ended" and len(c.seconds) == 1 for c in calls)
    store.close()


def test_a_call_written_by_another_process_is_read_here(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite"
    reader = CallStore(path)
    code = textwrap.dedent(
        f"""
        from agent.labels import Inferred
        from agent.store.calls import CallStore
        s = CallStore({str(path)!r})
        s.create("p1", correlation_id="proc", carrier="acme")
        s.set_inferred("p1", Inferred(404, "unallocated number", 1, "fingerprint"))
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    rec = reader.get("proc")
    assert rec is not None and rec.inferred.sip_code == 404 and rec.state == "decided"
    reader.close()


def test_the_decision_history_round_trips_in_order(store: CallStore) -> None:
    store.create("c1", correlation_id="job-1", started_at=T0)
    history = [Decision("ringback", 2.0), Decision("announcement", 21.0)]
    for d in history:
        store.add_decision("c1", d)
    rec = store.get("job-1")
    assert rec.decisions == history
    assert rec.as_json()["decisions"] == [{"label": "ringback", "at_s": 2.0},
                                          {"label": "announcement", "at_s": 21.0}]
    assert rec.as_json()["decision"] == {"label": "announcement", "at_s": 21.0}
    with pytest.raises(KeyError):
        store.add_decision("nobody", history[0])


# The schema of a calls.sqlite written before the decision history (user_version 0).
SCHEMA_BEFORE_DECISIONS = """
CREATE TABLE calls (
    call_id TEXT PRIMARY KEY, correlation_id TEXT, carrier TEXT, route TEXT,
    state TEXT NOT NULL, carrier_final_code INTEGER, inferred TEXT, inferred_code INTEGER,
    started_at REAL NOT NULL, decided_at REAL
);
CREATE INDEX calls_correlation ON calls (correlation_id);
CREATE INDEX calls_started ON calls (started_at);
CREATE TABLE seconds (
    call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
    t INTEGER NOT NULL, label TEXT NOT NULL, p TEXT NOT NULL, PRIMARY KEY (call_id, t)
);
CREATE TABLE evidence (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE, item TEXT NOT NULL
);
CREATE INDEX evidence_call ON evidence (call_id);
INSERT INTO calls (call_id, correlation_id, state, carrier_final_code, inferred_code,
                   started_at) VALUES ('old@gw', 'job-9', 'failed', 480, NULL, 1795251600.0);
INSERT INTO seconds VALUES ('old@gw', 0, 'ringback', '{"ringback": 0.99}');
INSERT INTO evidence (call_id, item) VALUES ('old@gw', '{"detector": "carrier"}');
"""


def test_a_store_written_before_the_decision_history_opens_and_migrates(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA_BEFORE_DECISIONS)
    old.close()
    with CallStore(path) as store:
        rec = store.get("job-9")
        assert rec is not None and (rec.state, rec.carrier_final_code) == ("failed", 480)
        assert [s.label for s in rec.seconds] == ["ringback"]
        assert rec.evidence == [{"detector": "carrier"}] and rec.decisions == []
        store.add_decision("old@gw", Decision("ringback", 2.0))
    with CallStore(path) as again:  # a migrated file opens as it is
        assert again.get("old@gw").decisions == [Decision("ringback", 2.0)]
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION


def test_a_store_from_a_newer_program_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite"
    CallStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(UserError, match="newer than this program") as err:
        CallStore(path)
    assert "\n" not in str(err.value)
