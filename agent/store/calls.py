"""The call store: what the agent learnt about each call; the supervisor writes, the API reads.

One SQLite file (``data_dir()/calls.sqlite``) in WAL mode, so the supervisor can write from
one process while the HTTP API reads from another. :class:`CallStoreBackend` is the whole
interface the rest of the agent relies on; a PostgreSQL store would implement the same
methods. Times are stored as UTC epoch seconds and returned as aware UTC datetimes.

The file's ``PRAGMA user_version`` is its schema version: opening a file of an older
version migrates it in place (:data:`MIGRATIONS`); one of a newer version is refused.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from agent.errors import UserError
from agent.labels import Decision, Inferred, SecondResult
from agent.store.records import (  # noqa: F401 - STATES, FINAL_STATES: this module's API too
    ANSWERED_SQL,
    FINAL_STATES,
    STATES,
    UNANSWERED_SQL,
    AsrRow,
    CallRecord,
    epoch_s,
)

GROUP_BY: tuple[str, ...] = ("carrier", "route")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_id            TEXT PRIMARY KEY,
    correlation_id     TEXT,
    carrier            TEXT,
    route              TEXT,
    state              TEXT NOT NULL,
    carrier_final_code INTEGER,
    inferred           TEXT,
    inferred_code      INTEGER,
    started_at         REAL NOT NULL,
    decided_at         REAL
);
CREATE INDEX IF NOT EXISTS calls_correlation ON calls (correlation_id);
CREATE INDEX IF NOT EXISTS calls_started ON calls (started_at);
CREATE TABLE IF NOT EXISTS seconds (
    call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
    t       INTEGER NOT NULL,
    label   TEXT NOT NULL,
    p       TEXT NOT NULL,
    PRIMARY KEY (call_id, t)
);
CREATE TABLE IF NOT EXISTS evidence (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
    item    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS evidence_call ON evidence (call_id);
"""

#: Schema version → the statements that bring a file of the version before up to it.
#: Version 0 is a file made before versions were kept (the schema above less what
#: later versions add).
MIGRATIONS: dict[int, str] = {
    # The decision history: every class decision of a call, in order.
    1: """
CREATE TABLE IF NOT EXISTS decisions (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL REFERENCES calls (call_id) ON DELETE CASCADE,
    label   TEXT NOT NULL,
    at_s    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_call ON decisions (call_id);
""",
    # When the first code was inferred; decided_at is when the current one was.
    2: """
ALTER TABLE calls ADD COLUMN first_decided_at REAL;
""",
    # The false-answer-supervision check of an answered call (agent.sip.fas), as JSON.
    3: """
ALTER TABLE calls ADD COLUMN fas TEXT;
""",
    # The statistics (ASR, the dashboard's reports) read these columns over a time window:
    # from this index alone they take a tenth of the time of fetching every call's row
    # (100,000 calls over 7 days: 760 ms → 90 ms for ASR per carrier; bench/dashboard.py).
    4: """
CREATE INDEX IF NOT EXISTS calls_window
    ON calls (started_at, carrier, route, state, carrier_final_code, inferred_code);
""",
}
SCHEMA_VERSION = max(MIGRATIONS)


class CallStoreBackend(Protocol):
    """What the supervisor and the API need from a call store."""

    def create(
        self,
        call_id: str,
        *,
        correlation_id: str | None = None,
        carrier: str | None = None,
        route: str | None = None,
        started_at: datetime | None = None,
    ) -> bool: ...

    def add_second(self, call_id: str, second: SecondResult) -> None: ...

    def add_evidence(self, call_id: str, item: dict[str, Any]) -> None: ...

    def add_decision(self, call_id: str, decision: Decision) -> None: ...

    def set_inferred(
        self, call_id: str, inferred: Inferred, *, decided_at: datetime | None = None
    ) -> bool: ...

    def set_answered(self, call_id: str, code: int = 200) -> Inferred | None: ...

    def set_fas(self, call_id: str, fas: dict[str, Any]) -> None: ...

    def set_state(self, call_id: str, state: str) -> None: ...

    def set_carrier_final(self, call_id: str, code: int) -> None: ...

    def get(self, id: str) -> CallRecord | None: ...

    def list_since(self, since: datetime, *, limit: int = 100,
                   until: datetime | None = None) -> list[CallRecord]: ...

    def iter_since(self, since: datetime, *, page: int = 200) -> Iterator[list[CallRecord]]: ...

    def asr(self, by: str, since: datetime, until: datetime | None = None) -> list[AsrRow]: ...

    def prune(self, older_than: datetime) -> int: ...


class CallStore:
    """SQLite implementation of :class:`CallStoreBackend`.

    Parameters
    ----------
    path : str or Path or None
        The database file, ``":memory:"`` for a private in-memory store, or None for
        ``agent.paths.data_dir() / "calls.sqlite"`` (its directory is created).
    busy_timeout_s : float
        How long a statement waits for another process's write lock before failing.

    Notes
    -----
    One connection guarded by a lock serves all threads of a process; WAL mode lets a
    reader in another process see committed calls without blocking the writer. Writes
    to an unknown call raise :class:`KeyError`.

    Examples
    --------
    >>> store = CallStore(":memory:")
    >>> store.create("a@host", correlation_id="job-7", carrier="acme")
    True
    >>> store.get("job-7").state
    'early'
    """

    def __init__(self, path: str | Path | None = None, *, busy_timeout_s: float = 5.0) -> None:
        if path is None:
            from agent.paths import data_dir

            path = data_dir() / "calls.sqlite"
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, timeout=busy_timeout_s, check_same_thread=False, isolation_level=None
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA foreign_keys = ON")
        with self._lock:
            self._migrate()

    def _migrate(self) -> None:
        """Create the schema, or bring an older file's up to :data:`SCHEMA_VERSION`."""
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            self._db.close()
            raise UserError(
                f"{self.path}: call store schema version {version} is newer than this "
                f"program's ({SCHEMA_VERSION}); upgrade early-media-agent")
        self._db.executescript(_SCHEMA)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            # One transaction per step, the version with it. Two processes may open an old
            # file at once: the second one's ALTER TABLE fails on the column the first one
            # added, and the version it then reads says the step is done.
            try:
                self._db.executescript(f"BEGIN IMMEDIATE; {MIGRATIONS[target]}"
                                       f" PRAGMA user_version = {target}; COMMIT;")
            except sqlite3.OperationalError:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if self._db.execute("PRAGMA user_version").fetchone()[0] < target:
                    raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> CallStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE takes the write lock up front so a
        concurrent writer waits on the busy timeout instead of failing mid-transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _update(self, call_id: str, sql: str, params: tuple[Any, ...]) -> None:
        with self._tx() as db:
            if db.execute(sql, (*params, call_id)).rowcount == 0:
                raise KeyError(f"call {call_id!r} is not in the store")

    def _require(self, db: sqlite3.Connection, call_id: str) -> None:
        if db.execute("SELECT 1 FROM calls WHERE call_id = ?", (call_id,)).fetchone() is None:
            raise KeyError(f"call {call_id!r} is not in the store")

    def create(
        self,
        call_id: str,
        *,
        correlation_id: str | None = None,
        carrier: str | None = None,
        route: str | None = None,
        started_at: datetime | None = None,
    ) -> bool:
        """Record a new call in state ``early``.

        Returns
        -------
        bool
            False if ``call_id`` was already stored (it is left unchanged), so a
            retransmitted INVITE does not reset a call.
        """
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO calls (call_id, correlation_id, carrier, route, state, started_at)"
                " VALUES (?, ?, ?, ?, 'early', ?) ON CONFLICT (call_id) DO NOTHING",
                (call_id, correlation_id, carrier, route, epoch_s(started_at)),
            )
            return cur.rowcount == 1

    def add_second(self, call_id: str, second: SecondResult) -> None:
        """Store the classifier's result for one second; a repeated ``t`` replaces it."""
        with self._tx() as db:
            self._require(db, call_id)
            db.execute(
                "INSERT OR REPLACE INTO seconds (call_id, t, label, p) VALUES (?, ?, ?, ?)",
                (call_id, int(second.t), second.label, json.dumps(second.p)),
            )

    def add_evidence(self, call_id: str, item: dict[str, Any]) -> None:
        """Append one detector event (e.g. ``ToneEvent.as_json()``) to the call's timeline."""
        with self._tx() as db:
            self._require(db, call_id)
            db.execute(
                "INSERT INTO evidence (call_id, item) VALUES (?, ?)", (call_id, json.dumps(item))
            )

    def add_decision(self, call_id: str, decision: Decision) -> None:
        """Append a class decision to the call's decision history."""
        with self._tx() as db:
            self._require(db, call_id)
            db.execute("INSERT INTO decisions (call_id, label, at_s) VALUES (?, ?, ?)",
                       (call_id, decision.label, float(decision.at_s)))

    def set_inferred(
        self, call_id: str, inferred: Inferred, *, decided_at: datetime | None = None
    ) -> bool:
        """Record the inferred code; a call still ``early`` becomes ``decided``.

        ``decided_at`` (default now) becomes the call's ``decided_at`` only if the verdict
        (code, reason, cause, source) differs from the stored one: confirming the same code
        at the carrier's final response does not move it. ``first_decided_at`` is set once.

        Returns
        -------
        bool
            False, and nothing stored, if the carrier answered the call (2xx): an answered
            call has no inferred failure.
        """
        when = epoch_s(decided_at)
        with self._tx() as db:
            row = db.execute(
                "SELECT inferred, carrier_final_code, decided_at FROM calls WHERE call_id = ?",
                (call_id,)).fetchone()
            if row is None:
                raise KeyError(f"call {call_id!r} is not in the store")
            if row["carrier_final_code"] is not None and 200 <= row["carrier_final_code"] < 300:
                return False
            same = (row["inferred"] is not None and row["decided_at"] is not None
                    and _verdict(json.loads(row["inferred"])) == _verdict(inferred.as_json()))
            db.execute(
                "UPDATE calls SET inferred = ?, inferred_code = ?, decided_at = ?,"
                " first_decided_at = COALESCE(first_decided_at, ?),"
                " state = CASE state WHEN 'early' THEN 'decided' ELSE state END"
                " WHERE call_id = ?",
                (json.dumps(inferred.as_json()), inferred.sip_code,
                 row["decided_at"] if same else when, when, call_id),
            )
            return True

    def set_answered(self, call_id: str, code: int = 200) -> Inferred | None:
        """The carrier answered with ``code`` (2xx): the call is ``connected``.

        A 200 OK ends the failure inference: ``inferred`` and its times are cleared (the
        seconds, evidence and decision history stay), so the call counts as answered and
        in no inferred-code statistic. Returns the inference that was dropped, if any.
        """
        if not 200 <= code < 300:
            raise ValueError(f"code: expected a 2xx answer, got {code!r}")
        with self._tx() as db:
            row = db.execute("SELECT inferred FROM calls WHERE call_id = ?",
                             (call_id,)).fetchone()
            if row is None:
                raise KeyError(f"call {call_id!r} is not in the store")
            db.execute(
                "UPDATE calls SET carrier_final_code = ?, state = 'connected', inferred = NULL,"
                " inferred_code = NULL, decided_at = NULL, first_decided_at = NULL"
                " WHERE call_id = ?", (code, call_id))
        return None if row["inferred"] is None else _inferred(json.loads(row["inferred"]))

    def set_fas(self, call_id: str, fas: dict[str, Any]) -> None:
        """Record the false-answer-supervision check, ``{"suspected", "evidence"}``."""
        self._update(call_id, "UPDATE calls SET fas = ? WHERE call_id = ?", (json.dumps(fas),))

    def set_state(self, call_id: str, state: str) -> None:
        """Move the call to ``state``, one of :data:`STATES`."""
        if state not in STATES:
            raise ValueError(f"state: expected one of {', '.join(STATES)}, got {state!r}")
        self._update(call_id, "UPDATE calls SET state = ? WHERE call_id = ?", (state,))

    def set_carrier_final(self, call_id: str, code: int) -> None:
        """Record the final SIP response code the carrier actually sent."""
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 699:
            raise ValueError(f"code: expected a SIP status code 100..699, got {code!r}")
        self._update(call_id, "UPDATE calls SET carrier_final_code = ? WHERE call_id = ?", (code,))

    def get(self, id: str) -> CallRecord | None:
        """The call whose Call-ID is ``id``, else the latest call with that correlation id."""
        with self._lock:
            row = self._db.execute("SELECT * FROM calls WHERE call_id = ?", (id,)).fetchone()
            if row is None:
                row = self._db.execute(
                    "SELECT * FROM calls WHERE correlation_id = ?"
                    " ORDER BY started_at DESC LIMIT 1",
                    (id,),
                ).fetchone()
            return None if row is None else self._record(row)

    def list_since(self, since: datetime, *, limit: int = 100,
                   until: datetime | None = None) -> list[CallRecord]:
        """Calls started at or after ``since`` (and before ``until``), newest first, at most
        ``limit``."""
        if limit < 1:
            raise ValueError(f"limit: expected a positive integer, got {limit!r}")
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM calls WHERE started_at >= ? AND started_at < ?"
                " ORDER BY started_at DESC LIMIT ?", (*_window(since, until), limit),
            ).fetchall()
            return [self._record(r) for r in rows]

    def iter_since(self, since: datetime, *, page: int = 200) -> Iterator[list[CallRecord]]:
        """Every call started at or after ``since``, oldest first, ``page`` calls at a time.

        The store is locked only while a page is read, so an export of any size lets the
        supervisor write between pages; a call stored meanwhile behind the last page read
        is not returned.
        """
        if page < 1:
            raise ValueError(f"page: expected a positive integer, got {page!r}")
        after: tuple[float, str] = (epoch_s(since), "")
        op = ">="
        while True:
            with self._lock:
                rows = self._db.execute(
                    f"SELECT * FROM calls WHERE (started_at, call_id) {op} (?, ?)"
                    " ORDER BY started_at, call_id LIMIT ?", (*after, page)).fetchall()
                records = [self._record(r) for r in rows]
            if not records:
                return
            yield records
            after, op = (rows[-1]["started_at"], rows[-1]["call_id"]), ">"

    def asr(self, by: str, since: datetime, until: datetime | None = None) -> list[AsrRow]:
        """ASR per carrier or per route over calls started at or after ``since`` (and
        before ``until``).

        A call counts as answered if the carrier sent a 2xx or the call reached
        ``connected``; an answered call is in no inferred-code count. Rows are ordered by
        attempts, most first.
        """
        if by not in GROUP_BY:
            raise ValueError(f"by: expected one of {', '.join(GROUP_BY)}, got {by!r}")
        window = _window(since, until)
        with self._lock:
            totals = self._db.execute(
                f"SELECT {by} AS k, COUNT(*) AS attempts, SUM({ANSWERED_SQL}) AS answered"
                f" FROM calls WHERE started_at >= ? AND started_at < ? GROUP BY {by}",
                window,
            ).fetchall()
            codes = self._db.execute(
                f"SELECT {by} AS k, inferred_code AS code, COUNT(*) AS n FROM calls"
                " WHERE started_at >= ? AND started_at < ? AND inferred_code IS NOT NULL"
                f" AND {UNANSWERED_SQL}"
                f" GROUP BY {by}, inferred_code",
                window,
            ).fetchall()
        inferred: dict[str | None, dict[int, int]] = {}
        for r in codes:
            inferred.setdefault(r["k"], {})[r["code"]] = r["n"]
        rows = [
            AsrRow(r["k"], r["attempts"], r["answered"] or 0, inferred.get(r["k"], {}))
            for r in totals
        ]
        return sorted(rows, key=lambda r: (-r.attempts, r.key or ""))

    def read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """The rows of one read-only statement (the reports of :mod:`agent.store.queries`)."""
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def prune(self, older_than: datetime) -> int:
        """Delete calls started before ``older_than``; returns how many went."""
        with self._tx() as db:
            cur = db.execute("DELETE FROM calls WHERE started_at < ?", (epoch_s(older_than),))
            return cur.rowcount

    def _record(self, row: sqlite3.Row) -> CallRecord:
        call_id = row["call_id"]
        seconds = [
            SecondResult(t=s["t"], label=s["label"], p=json.loads(s["p"]))
            for s in self._db.execute(
                "SELECT t, label, p FROM seconds WHERE call_id = ? ORDER BY t", (call_id,)
            )
        ]
        evidence = [
            json.loads(e["item"])
            for e in self._db.execute(
                "SELECT item FROM evidence WHERE call_id = ? ORDER BY seq", (call_id,)
            )
        ]
        decisions = [
            Decision(label=d["label"], at_s=d["at_s"])
            for d in self._db.execute(
                "SELECT label, at_s FROM decisions WHERE call_id = ? ORDER BY seq", (call_id,)
            )
        ]
        inferred = None if row["inferred"] is None else _inferred(json.loads(row["inferred"]))
        return CallRecord(
            call_id=call_id,
            correlation_id=row["correlation_id"],
            carrier=row["carrier"],
            route=row["route"],
            state=row["state"],
            carrier_final_code=row["carrier_final_code"],
            inferred=inferred,
            seconds=seconds,
            evidence=evidence,
            started_at=datetime.fromtimestamp(row["started_at"], UTC),
            decided_at=_datetime(row["decided_at"]),
            decisions=decisions,
            first_decided_at=_datetime(row["first_decided_at"]),
            fas=None if row["fas"] is None else json.loads(row["fas"]),
        )


def _window(since: datetime, until: datetime | None) -> tuple[float, float]:
    return epoch_s(since), float("inf") if until is None else epoch_s(until)


def _datetime(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _inferred(d: dict[str, Any]) -> Inferred:
    return Inferred(sip_code=d["sip_code"], reason=d["reason"], q850_cause=d["q850_cause"],
                    source=d["source"], evidence=d["evidence"], basis=d.get("basis", ""))


def _verdict(d: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two inferences the same decision (their cited evidence may grow)."""
    return d["sip_code"], d["reason"], d["q850_cause"], d["source"]
