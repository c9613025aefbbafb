"""Plain-text tables for the command line: aligned columns, long cells wrapped in place.

A cell longer than its column's limit is wrapped at its ", " separators onto continuation
lines that stay inside the column, so a table of per-second runs or decision histories
stays a table at 100 columns instead of one line per file that runs off the terminal.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

SEPARATOR = ", "


def wrap_cell(text: str, width: int) -> list[str]:
    """Split ``text`` at ``", "`` into lines of at most ``width`` characters.

    An item longer than ``width`` is broken at its spaces (a word longer than ``width``
    stays whole). Each line that ends an item keeps its comma, so the reader sees the
    list goes on.

    Examples
    --------
    >>> wrap_cell("ringback 0-20s, announcement 20-32s, silence 32-244s", 36)
    ['ringback 0-20s, announcement 20-32s,', 'silence 32-244s']
    """
    items = text.split(SEPARATOR)
    lines: list[str] = []
    line = ""
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else "")
        if line and len(line) + 1 + len(piece) <= width:
            line = f"{line} {piece}"
            continue
        if line:
            lines.append(line)
        parts = textwrap.wrap(piece, width, break_long_words=False,
                              break_on_hyphens=False) or [""]
        lines += parts[:-1]
        line = parts[-1]
    lines.append(line)
    return lines


def format_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    wrap: Mapping[int, int] | None = None,
    right: Sequence[int] = (),
) -> list[str]:
    """The lines of an aligned table: header, a rule of dashes, then the rows.

    Parameters
    ----------
    header : sequence of str
        Column titles.
    rows : sequence of sequence of str
        One cell per column.
    wrap : mapping of int to int, optional
        Column index → widest line of that column; longer cells wrap onto continuation
        lines (see :func:`wrap_cell`).
    right : sequence of int
        Columns aligned to the right (numbers).

    Examples
    --------
    >>> print("\\n".join(format_table(["file", "s"], [["a.wav", "8.0"]], right=[1])))
    file     s
    -----  ---
    a.wav  8.0
    """
    limits = dict(wrap or {})
    cells = [[wrap_cell(c, limits[i]) if i in limits else [c] for i, c in enumerate(r)]
             for r in rows]
    widths = [len(h) for h in header]
    for row in cells:
        for i, lines in enumerate(row):
            widths[i] = max(widths[i], *(len(x) for x in lines))

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if i in right else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths, strict=True))).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    for row in cells:
        height = max(len(lines) for lines in row)
        for k in range(height):
            out.append(line([lines[k] if k < len(lines) else "" for lines in row]))
    return out
