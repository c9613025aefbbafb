"""Reading headers out of a raw SIP message (the text pjsua2 hands us as ``wholeMsg``)."""

from __future__ import annotations

import re

# RFC 3261 §7.3.3 compact forms of the headers we read.
_COMPACT = {"i": "call-id", "f": "from", "t": "to", "m": "contact", "c": "content-type",
            "l": "content-length", "v": "via"}


def _unfolded_head(msg: str) -> list[str]:
    head = re.split(r"\r?\n\r?\n", msg, maxsplit=1)[0]
    lines: list[str] = []
    for line in re.split(r"\r?\n", head):
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return lines


def start_line(msg: str) -> str:
    """The request or status line of ``msg`` ('' for an empty message)."""
    lines = _unfolded_head(msg)
    return lines[0].strip() if lines else ""


def header_values(msg: str, name: str) -> list[str]:
    """Every value of header ``name`` in ``msg``, in order (case-insensitive, compact forms).

    Values of repeated headers are returned one per header line; folded lines are joined.
    """
    want = name.lower()
    found = []
    for line in _unfolded_head(msg)[1:]:
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if _COMPACT.get(key, key) == want:
            found.append(value.strip())
    return found


def header_lines(msg: str) -> list[tuple[str, str]]:
    """Every header of ``msg`` as (name as written, value), in order; folded lines joined."""
    found = []
    for line in _unfolded_head(msg)[1:]:
        name, sep, value = line.partition(":")
        if sep:
            found.append((name.strip(), value.strip()))
    return found


def header(msg: str, name: str) -> str | None:
    """The first value of header ``name``, or None."""
    values = header_values(msg, name)
    return values[0] if values else None


def request_user(msg: str) -> str:
    """The user part of the Request-URI (the dialled number), '' if it has none."""
    parts = start_line(msg).split()
    if len(parts) < 2:
        return ""
    uri = parts[1]
    m = re.match(r"^(?:sips?|tel):([^@;>]+)@", uri)
    return m.group(1) if m else ""


def has_sdp(msg: str) -> bool:
    """Whether the message carries an SDP body."""
    ctype = (header(msg, "content-type") or "").lower()
    return ctype.startswith("application/sdp") and bool(re.search(r"\r?\n\r?\n\S", msg))


def clean(text: str) -> str:
    """``text`` as valid Unicode: bytes that were not UTF-8 become ``\\xNN`` escapes.

    pjsua2 hands over raw message bytes as ``str`` with surrogate escapes; such a string
    cannot be written to JSON lines or SQLite, so everything the worker reports passes here.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape")
        return raw.decode("utf-8", "backslashreplace")
