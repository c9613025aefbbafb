"""The SQLite library store: schema, generations, retention, concurrent writers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.errors import UserError
from agent.store.library import (
    SCHEMA_VERSION,
    DuplicateAudioError,
    NewEntry,
    SqliteLibraryStore,
    open_store,
)


def entry(n: int, kind: str = "known") -> NewEntry:
    return NewEntry(kind=kind, duration_s=3.0, audio_sha256=f"sha{n}",
                    fingerprints=bytes(8 * n), fingerprint_version="v", sip_code=486,
                    reason="busy", audio=b"\x7f" * 100 if kind == "unknown" else None)


def test_add_get_list_remove_round_trip(tmp_path: Path) -> None:
    store = open_store(tmp_path / "l.sqlite")
    a = store.add(entry(1))
    b = store.add(entry(2, kind="unknown"))
    assert store.get(a).sip_code == 486
    assert [e.id for e in store.list(kind="known")] == [a]
    assert [e.id for e in store.list()] == [a, b]
    assert [fid for fid, _, _ in store.fingerprints(kind="unknown")] == [b]
    assert store.audio(b) == b"\x7f" * 100 and store.audio(a) is None
    store.remove(a)
    with pytest.raises(UserError, match=f"no entry {a}"):
        store.get(a)
    assert list(store.fingerprints(kind="known")) == []


def test_writes_move_the_generation_of_the_kind_they_change(tmp_path: Path) -> None:
    store = open_store(tmp_path / "l.sqlite")
    known, unknown = store.generation("known"), store.generation("unknown")
    store.add(entry(1))
    assert store.generation("known") > known and store.generation("unknown") == unknown
    uid = store.add(entry(2, kind="unknown"))
    store.touch(uid, now=2e9)
    known = store.generation("known")
    store.prune_unknown(max_entries=0, max_age_s=1.0, now=2e9)
    assert store.generation("known") == known and store.generation("unknown") > unknown


def test_duplicate_hash_names_the_existing_entry(tmp_path: Path) -> None:
    store = open_store(tmp_path / "l.sqlite")
    first = store.add(entry(1))
    with pytest.raises(DuplicateAudioError, match=f"entry {first}"):
        store.add(entry(1))


def test_prune_drops_old_then_least_recently_heard(tmp_path: Path) -> None:
    store = open_store(tmp_path / "l.sqlite")
    ids = [store.add(entry(i, kind="unknown")) for i in range(4)]
    store.touch(ids[0], now=2e9)
    store.touch(ids[1], now=2e9 + 1)
    removed = store.prune_unknown(max_entries=1, max_age_s=3600, now=2e9 + 2)
    assert removed == 3
    assert [e.id for e in store.list(kind="unknown")] == [ids[1]]


def test_schema_from_a_newer_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    store = SqliteLibraryStore(path)
    store._db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                      (str(SCHEMA_VERSION + 1),))
    store.close()
    with pytest.raises(UserError, match="newer"):
        open_store(path)


def test_directory_and_unknown_scheme_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="directory"):
        open_store(tmp_path)
    with pytest.raises(UserError, match="unsupported"):
        open_store("mysql://host/db")


def test_sqlite_url_opens_a_file(tmp_path: Path) -> None:
    path = tmp_path / "u.sqlite"
    open_store(f"sqlite:///{path}").close()
    assert path.exists()


def test_two_processes_adding_at_once_both_land(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    open_store(path).close()
    script = textwrap.dedent(
        """
        import sys
        from agent.store.library import NewEntry, open_store
        store = open_store(sys.argv[1])
        for i in range(25):
            store.add(NewEntry(kind="known", duration_s=1.0,
                               audio_sha256=f"{sys.argv[2]}-{i}", fingerprints=b"x" * 800,
                               fingerprint_version="v", sip_code=404, reason="r"))
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(path), tag],
                         stderr=subprocess.PIPE, text=True)
        for tag in ("a", "b")
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    shas = {e.audio_sha256 for e in open_store(path).list()}
    assert shas == {f"{t}-{i}" for t in "ab" for i in range(25)}


def test_label_and_unlabel_move_an_entry_between_kinds_and_both_generations(
        tmp_path: Path) -> None:
    store = open_store(tmp_path / "l.sqlite")
    uid = store.add(entry(1, kind="unknown"))
    gens = store.generation("known"), store.generation("unknown")
    store.label(uid, sip_code=404, reason="vacant", q850_cause=1, carrier="acme")
    labelled = store.get(uid)
    assert (labelled.kind, labelled.sip_code, labelled.carrier) == ("known", 404, "acme")
    store.unlabel(uid, now=2e9)
    back = store.get(uid)
    assert (back.kind, back.sip_code, back.reason, back.q850_cause) == ("unknown", None, None,
                                                                        None)
    assert back.last_seen == 2e9 and back.carrier == "acme"
    assert store.generation("known") == gens[0] + 2 and store.generation("unknown") == gens[1] + 2
    with pytest.raises(UserError, match="no entry 99"):
        store.unlabel(99, now=2e9)
