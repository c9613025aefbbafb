"""The announcement library's persistent store: one interface, an SQLite implementation.

:class:`LibraryStore` is everything :class:`agent.fingerprint.Library` needs from storage:
entries with their metadata, an opaque fingerprint blob and optional audio per entry, and
a ``generation`` counter per kind of entry that every write affecting that kind's
fingerprints bumps, so that readers in other processes know when to reload their in-memory
index (and recording an unknown announcement does not reload the index of known ones).
Nothing here knows how fingerprints are computed,
so a PostgreSQL implementation (one table per SQLite table, ``bytea`` blobs, the counters
in rows updated in the same transaction) fits behind the same methods.

The SQLite file is opened in WAL mode with a busy timeout, every write runs in a
``BEGIN IMMEDIATE`` transaction (two processes adding at once both land), the schema has a
version, and the file is checked on open: a damaged or foreign file is reported in one line
and never modified.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import UserError

SCHEMA_VERSION = 1
KINDS = ("known", "unknown")
_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True, slots=True)
class Entry:
    """One announcement of the library.

    ``kind`` is ``known`` (has a SIP code, used for matching) or ``unknown`` (heard on
    calls, matched nothing; ``count`` says how often, ``last_seen`` when last).
    Times are Unix seconds.
    """

    id: int
    kind: str
    sip_code: int | None
    reason: str | None
    q850_cause: int | None
    carrier: str | None
    lang: str | None
    name: str | None
    duration_s: float
    added_at: float
    audio_sha256: str
    count: int = 1
    last_seen: float = 0.0
    call_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "sip_code": self.sip_code, "reason": self.reason,
            "q850_cause": self.q850_cause, "carrier": self.carrier, "lang": self.lang,
            "name": self.name, "duration_s": round(self.duration_s, 3),
            "added_at": self.added_at, "audio_sha256": self.audio_sha256,
            "count": self.count, "last_seen": self.last_seen, "call_id": self.call_id,
        }


@dataclass(frozen=True, slots=True)
class NewEntry:
    """What a caller supplies to add an entry (the store assigns id and times)."""

    kind: str
    duration_s: float
    audio_sha256: str
    fingerprints: bytes
    fingerprint_version: str
    sip_code: int | None = None
    reason: str | None = None
    q850_cause: int | None = None
    carrier: str | None = None
    lang: str | None = None
    name: str | None = None
    call_id: str | None = None
    audio: bytes | None = None


class DuplicateAudioError(UserError):
    """The same audio is already in the library; ``existing_id`` names the entry."""

    def __init__(self, message: str, existing_id: int):
        super().__init__(message)
        self.existing_id = existing_id


class LibraryStore(ABC):
    """Storage of library entries; implementations must be safe for concurrent processes."""

    location: str

    @abstractmethod
    def add(self, new: NewEntry) -> int:
        """Insert an entry; raise :class:`DuplicateAudioError` if ``audio_sha256`` exists."""

    @abstractmethod
    def remove(self, entry_id: int) -> None:
        """Delete an entry with its fingerprints and audio; UserError if there is none."""

    @abstractmethod
    def get(self, entry_id: int) -> Entry:
        """One entry; UserError if there is none."""

    @abstractmethod
    def list(self, *, kind: str | None = None) -> list[Entry]:
        """Entries of one kind (or all), by id."""

    @abstractmethod
    def fingerprints(self, *, kind: str) -> Iterator[tuple[int, str, bytes]]:
        """(entry id, fingerprint version, fingerprint blob) of every entry of ``kind``."""

    @abstractmethod
    def set_fingerprints(self, entry_id: int, *, version: str, data: bytes) -> None:
        """Replace an entry's fingerprints (after the hashing parameters changed)."""

    @abstractmethod
    def audio(self, entry_id: int) -> bytes | None:
        """The µ-law audio stored with an entry, if any."""

    @abstractmethod
    def label(self, entry_id: int, *, sip_code: int, reason: str,
              q850_cause: int | None = None, carrier: str | None = None) -> None:
        """Make an entry known with this code, reason, Q.850 cause and carrier: an unknown
        one is labelled, a known one edited."""

    @abstractmethod
    def unlabel(self, entry_id: int, *, now: float) -> None:
        """Turn a known entry back into an unknown one, its code, reason and cause cleared
        and ``last_seen`` set to ``now`` (so the unknown retention does not drop it at once)."""

    @abstractmethod
    def touch(self, entry_id: int, *, now: float, call_id: str | None = None) -> int:
        """Count one more hearing of an unknown entry; returns the new count."""

    @abstractmethod
    def prune_unknown(self, *, max_entries: int, max_age_s: float, now: float) -> int:
        """Drop unknown entries unheard for ``max_age_s`` and all but the ``max_entries``
        most recently heard; returns how many were dropped."""

    @abstractmethod
    def generation(self, kind: str) -> int:
        """A counter that moves whenever entries of ``kind`` or their fingerprints change
        (cheap to call often)."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""


def _row_to_entry(row: sqlite3.Row) -> Entry:
    return Entry(
        id=row["id"], kind=row["kind"], sip_code=row["sip_code"], reason=row["reason"],
        q850_cause=row["q850_cause"], carrier=row["carrier"], lang=row["lang"],
        name=row["name"], duration_s=row["duration_s"], added_at=row["added_at"],
        audio_sha256=row["audio_sha256"], count=row["count"], last_seen=row["last_seen"],
        call_id=row["call_id"],
    )


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('known', 'unknown')),
    sip_code INTEGER,
    reason TEXT,
    q850_cause INTEGER,
    carrier TEXT,
    lang TEXT,
    name TEXT,
    duration_s REAL NOT NULL,
    added_at REAL NOT NULL,
    audio_sha256 TEXT NOT NULL UNIQUE,
    count INTEGER NOT NULL DEFAULT 1,
    last_seen REAL NOT NULL,
    call_id TEXT
);
CREATE INDEX IF NOT EXISTS entries_kind_seen ON entries (kind, last_seen);
CREATE TABLE IF NOT EXISTS fingerprints (
    entry_id INTEGER PRIMARY KEY REFERENCES entries (id) ON DELETE CASCADE,
    version TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audio (
    entry_id INTEGER PRIMARY KEY REFERENCES entries (id) ON DELETE CASCADE,
    ulaw BLOB NOT NULL
);
"""


class SqliteLibraryStore(LibraryStore):
    """:class:`LibraryStore` in one SQLite file (WAL, busy timeout, checked on open).

    Parameters
    ----------
    path : str or Path
        The database file; created (with its directory) if missing.
    busy_timeout_s : float
        How long a writer waits for another process's transaction.
    check : bool
        Run SQLite's ``quick_check`` on open.
    """

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 30.0, check: bool = True):
        self.path = Path(path)
        self.location = str(self.path)
        self._lock = threading.RLock()
        self._refuse_foreign_file()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                str(self.path), timeout=busy_timeout_s, isolation_level=None,
                check_same_thread=False,
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._wal(busy_timeout_s)
            self._db.execute("PRAGMA foreign_keys = ON")
            if check:
                result = self._db.execute("PRAGMA quick_check").fetchone()[0]
                if result != "ok":
                    raise sqlite3.DatabaseError(f"integrity check failed: {result}")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None

    def _wal(self, busy_timeout_s: float) -> None:
        """Switch to WAL. Changing the journal mode takes an exclusive lock that SQLite
        does not wait for through the busy handler, so two processes opening a new file at
        once see "database is locked": that is contention, not damage; wait and retry."""
        import time

        deadline = time.monotonic() + busy_timeout_s
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _refuse_foreign_file(self) -> None:
        if self.path.is_dir():
            raise UserError(f"{self.path}: is a directory, not a library file")
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open("rb") as fh:
                head = fh.read(len(_SQLITE_MAGIC))
            if head != _SQLITE_MAGIC:
                raise UserError(
                    f"{self.path}: not a library database (no SQLite header); "
                    "left untouched — move it away or pass another --library"
                )

    def _damaged(self, exc: Exception) -> UserError:
        return UserError(
            f"{self.path}: library database is damaged ({exc}); left untouched — "
            "restore a backup or move it away"
        )

    def _migrate(self) -> None:
        with self._write(()) as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise UserError(
                    f"{self.path}: library schema version {row[0]} is newer than this "
                    f"program's ({SCHEMA_VERSION}); upgrade early-media-agent"
                )
            for kind in KINDS:
                db.execute("INSERT OR IGNORE INTO meta VALUES (?, '0')", (f"generation:{kind}",))

    class _Tx:
        def __init__(self, store: SqliteLibraryStore, kinds: tuple[str, ...]):
            self.store = store
            self.kinds = kinds

        def __enter__(self) -> sqlite3.Connection:
            self.store._lock.acquire()
            try:
                self.store._db.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.store._lock.release()
                raise
            return self.store._db

        def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
            try:
                if exc_type is None:
                    for kind in self.kinds:
                        self.store._db.execute(
                            "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = ?",
                            (f"generation:{kind}",),
                        )
                    self.store._db.execute("COMMIT")
                else:
                    self.store._db.execute("ROLLBACK")
            finally:
                self.store._lock.release()

    def _write(self, kinds: tuple[str, ...] = KINDS) -> SqliteLibraryStore._Tx:
        """A write transaction that takes SQLite's write lock up front and bumps the
        generation of ``kinds``."""
        return SqliteLibraryStore._Tx(self, kinds)

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise self._damaged(exc) from None

    def add(self, new: NewEntry) -> int:
        if new.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {new.kind!r}")
        now = time.time()
        try:
            with self._write((new.kind,)) as db:
                row = db.execute(
                    "SELECT id FROM entries WHERE audio_sha256 = ?", (new.audio_sha256,)
                ).fetchone()
                if row is not None:
                    raise DuplicateAudioError(
                        f"the same audio is already in the library as entry {row[0]}", row[0]
                    )
                cur = db.execute(
                    "INSERT INTO entries (kind, sip_code, reason, q850_cause, carrier, lang, "
                    "name, duration_s, added_at, audio_sha256, count, last_seen, call_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                    (new.kind, new.sip_code, new.reason, new.q850_cause, new.carrier, new.lang,
                     new.name, new.duration_s, now, new.audio_sha256, now, new.call_id),
                )
                entry_id = int(cur.lastrowid or 0)
                db.execute(
                    "INSERT INTO fingerprints VALUES (?, ?, ?)",
                    (entry_id, new.fingerprint_version, new.fingerprints),
                )
                if new.audio is not None:
                    db.execute("INSERT INTO audio VALUES (?, ?)", (entry_id, new.audio))
                return entry_id
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None

    def remove(self, entry_id: int) -> None:
        with self._write() as db:
            cur = db.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
            if cur.rowcount == 0:
                raise UserError(f"library has no entry {entry_id}")

    def get(self, entry_id: int) -> Entry:
        rows = self._read("SELECT * FROM entries WHERE id = ?", (entry_id,))
        if not rows:
            raise UserError(f"library has no entry {entry_id}")
        return _row_to_entry(rows[0])

    def list(self, *, kind: str | None = None) -> list[Entry]:
        if kind is None:
            rows = self._read("SELECT * FROM entries ORDER BY id")
        else:
            rows = self._read("SELECT * FROM entries WHERE kind = ? ORDER BY id", (kind,))
        return [_row_to_entry(r) for r in rows]

    def fingerprints(self, *, kind: str) -> Iterator[tuple[int, str, bytes]]:
        rows = self._read(
            "SELECT f.entry_id, f.version, f.data FROM fingerprints f "
            "JOIN entries e ON e.id = f.entry_id WHERE e.kind = ? ORDER BY f.entry_id",
            (kind,),
        )
        for r in rows:
            yield int(r[0]), str(r[1]), bytes(r[2])

    def set_fingerprints(self, entry_id: int, *, version: str, data: bytes) -> None:
        with self._write() as db:
            db.execute("UPDATE fingerprints SET version = ?, data = ? WHERE entry_id = ?",
                       (version, data, entry_id))

    def audio(self, entry_id: int) -> bytes | None:
        rows = self._read("SELECT ulaw FROM audio WHERE entry_id = ?", (entry_id,))
        return bytes(rows[0][0]) if rows else None

    def label(self, entry_id: int, *, sip_code: int, reason: str,
              q850_cause: int | None = None, carrier: str | None = None) -> None:
        with self._write() as db:
            cur = db.execute(
                "UPDATE entries SET kind = 'known', sip_code = ?, reason = ?, q850_cause = ?, "
                "carrier = ? WHERE id = ?",
                (sip_code, reason, q850_cause, carrier, entry_id),
            )
            if cur.rowcount == 0:
                raise UserError(f"library has no entry {entry_id}")

    def unlabel(self, entry_id: int, *, now: float) -> None:
        with self._write() as db:
            cur = db.execute(
                "UPDATE entries SET kind = 'unknown', sip_code = NULL, reason = NULL, "
                "q850_cause = NULL, last_seen = ? WHERE id = ?", (now, entry_id))
            if cur.rowcount == 0:
                raise UserError(f"library has no entry {entry_id}")

    def touch(self, entry_id: int, *, now: float, call_id: str | None = None) -> int:
        with self._write(()) as db:
            db.execute(
                "UPDATE entries SET count = count + 1, last_seen = ?, "
                "call_id = COALESCE(?, call_id) WHERE id = ?",
                (now, call_id, entry_id),
            )
            row = db.execute("SELECT count FROM entries WHERE id = ?", (entry_id,)).fetchone()
            if row is None:
                raise UserError(f"library has no entry {entry_id}")
            return int(row[0])

    def prune_unknown(self, *, max_entries: int, max_age_s: float, now: float) -> int:
        with self._write(("unknown",)) as db:
            old = db.execute(
                "DELETE FROM entries WHERE kind = 'unknown' AND last_seen < ?",
                (now - max_age_s,),
            ).rowcount
            extra = db.execute(
                "DELETE FROM entries WHERE id IN (SELECT id FROM entries WHERE kind = 'unknown' "
                "ORDER BY last_seen DESC, id DESC LIMIT -1 OFFSET ?)",
                (max_entries,),
            ).rowcount
            return int(old + extra)

    def generation(self, kind: str) -> int:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (f"generation:{kind}",))
        return int(rows[0][0]) if rows else 0

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_store(location: str | Path, *, check: bool = True) -> LibraryStore:
    """Open the store named by a file path or a URL.

    Parameters
    ----------
    location : str or Path
        A path (``.sqlite`` file) or ``sqlite:///path``; ``postgresql://`` is reserved for
        a multi-node deployment and needs the ``psycopg`` package.
    check : bool
        Check the database's integrity on open.

    Raises
    ------
    UserError
        Damaged or foreign file, newer schema, unsupported URL scheme.
    """
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise UserError(
                "postgresql:// libraries need the 'psycopg' package, which is not installed"
            ) from None
        raise UserError("postgresql:// libraries are not implemented yet; use an SQLite path")
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///"):]
    elif "://" in text:
        raise UserError(f"{text}: unsupported library URL (use a file path or postgresql://)")
    return SqliteLibraryStore(text, check=check)
