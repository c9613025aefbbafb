"""Call records as CDR files: CSV with a header row, or JSON Lines; shared by the API's
``GET /v1/calls/export`` and ``early-media-agent calls export``.

JSON Lines is one API ``Call`` object per line. CSV has the columns of
:data:`CSV_COLUMNS`, always in that order: the call's scalar fields, a few taken out of its
nested ones for spreadsheets (``inferred_sip_code``…), then every nested field as compact
JSON text, so nothing of the record is lost. A null is an empty cell. Pure functions.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from agent.errors import UserError
from agent.store.calls import CallRecord

FORMATS: tuple[str, ...] = ("csv", "jsonl")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
#: The CSV columns, in order; the last six are the nested fields as JSON text.
CSV_COLUMNS: tuple[str, ...] = (
    "call_id", "correlation_id", "carrier", "route", "state", "carrier_final_code",
    "inferred_sip_code", "inferred_reason", "inferred_q850_cause", "inferred_source",
    "decision_label", "fas_suspected", "started_at", "first_decided_at", "decided_at",
    "inferred", "decision", "decisions", "seconds", "evidence", "fas",
)
_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def parse_since(raw: str | None, *, default: datetime, name: str = "since") -> datetime:
    """``since`` as an ISO 8601 timestamp (naive is UTC) or epoch seconds; absent is ``default``.

    ``name`` is the parameter named in the error (the dashboard parses ``until`` too).

    Examples
    --------
    >>> parse_since("1700000000", default=datetime.now(UTC)).isoformat()
    '2023-11-14T22:13:20+00:00'
    """
    if raw is None or raw == "":
        return default
    # An unescaped '+' of a UTC offset arrives as a space after query decoding.
    text = raw.strip().replace(" ", "+")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        if not _NUMBER.match(text):
            raise UserError(f"{name}: expected an ISO 8601 timestamp or epoch seconds, "
                            f"got {raw!r}") from None
        try:
            return datetime.fromtimestamp(float(text), UTC)
        except (OverflowError, OSError, ValueError):
            raise UserError(f"{name}: epoch seconds out of range, got {raw!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_format(raw: str | None) -> str:
    """``format``: one of :data:`FORMATS`; absent is ``jsonl``."""
    if raw is None or raw == "":
        return "jsonl"
    if raw not in FORMATS:
        raise UserError(f"format: expected one of {', '.join(FORMATS)}, got {raw!r}")
    return raw


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


def csv_row(call: dict[str, Any]) -> dict[str, Any]:
    """The CSV cells of one API ``Call`` object, keyed by :data:`CSV_COLUMNS`."""
    inferred = call.get("inferred") or {}
    decision = call.get("decision") or {}
    fas = call.get("fas") or {}
    derived = {
        "inferred_sip_code": inferred.get("sip_code"),
        "inferred_reason": inferred.get("reason"),
        "inferred_q850_cause": inferred.get("q850_cause"),
        "inferred_source": inferred.get("source"),
        "decision_label": decision.get("label"),
        "fas_suspected": fas.get("suspected"),
    }
    return {col: _cell(derived[col] if col in derived else call.get(col))
            for col in CSV_COLUMNS}


def _csv_text(rows: Iterable[dict[str, Any]], *, header: bool) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS)
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def header(fmt: str) -> str:
    """What an export in ``fmt`` starts with: the CSV header row, or nothing."""
    return _csv_text((), header=True) if fmt == "csv" else ""


def render(calls: Iterable[CallRecord], fmt: str) -> str:
    """``calls`` as CSV rows (no header) or JSON lines."""
    bodies = (c.as_json() for c in calls)
    if fmt == "csv":
        return _csv_text((csv_row(b) for b in bodies), header=False)
    return "".join(json.dumps(b, separators=(",", ":"), ensure_ascii=False) + "\n"
                   for b in bodies)


def export(pages: Iterable[list[CallRecord]], fmt: str) -> Iterator[str]:
    """The whole export in ``fmt``: the header, then one chunk per page of calls."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if first := header(fmt):
        yield first
    for page in pages:
        yield render(page, fmt)
