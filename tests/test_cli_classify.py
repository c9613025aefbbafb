"""``classify --format table``: aligned columns, per-second runs, and what drove the code.

The table tests run the real model and tone detectors on generated early media.
"""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pytest

from agent.audio.io import write_wav
from agent.classify.cli import TABLE_HEADER, runs_text, second_runs
from agent.cli import main
from agent.sip.early_media import early_media
from agent.text_table import format_table, wrap_cell


def column_gaps(lines: list[str]) -> list[tuple[int, int]]:
    """The spans between the columns, read from the rule of dashes under the header."""
    rule = lines[1]
    assert set(rule) <= {"-", " "}, rule
    spans = [m.span() for m in re.finditer(r"-+", rule)]
    return [(a[1], b[0]) for a, b in zip(spans, spans[1:], strict=False)]


def assert_aligned(lines: list[str]) -> None:
    """Every line keeps to the columns: nothing is written into the gaps between them."""
    gaps = column_gaps(lines)
    assert gaps, lines
    for line in lines:
        for a, b in gaps:
            assert line[a:b].strip() == "", f"{line!r} crosses the gap at {a}-{b}"


def seconds(labels: str) -> list[dict[str, object]]:
    names = {"R": "ringback", "A": "announcement", "M": "music", "S": "silence"}
    return [{"t": t, "label": names[c]} for t, c in enumerate(labels)]


def test_runs_summarise_the_per_second_strip():
    strip = seconds("R" * 20 + "A" * 12 + "S" * 212)
    assert second_runs(strip) == [("ringback", 0, 20), ("announcement", 20, 32),
                                  ("silence", 32, 244)]
    assert runs_text(strip) == "ringback 0-20s, announcement 20-32s, silence 32-244s"


def test_runs_beyond_the_cap_are_counted_not_printed():
    text = runs_text(seconds("RM" * 50), max_runs=4)
    assert text == "ringback 0-1s, music 1-2s, ringback 2-3s, +97 runs (--format jsonl)"


def test_a_long_cell_wraps_at_its_items_and_keeps_inside_the_width():
    lines = wrap_cell("ringback 0-20s, announcement 20-32s, silence 32-244s", 24)
    assert lines == ["ringback 0-20s,", "announcement 20-32s,", "silence 32-244s"]
    assert wrap_cell("480 Temporarily unavailable (unrecognised announcement)", 30) == [
        "480 Temporarily unavailable", "(unrecognised announcement)"]


def test_table_columns_line_up_across_rows_and_continuation_lines():
    rows = [["a.wav", "8.0s", "ringback 0-8s"],
            ["a-much-longer-name.wav", "244.0s",
             "ringback 0-20s, announcement 20-32s, silence 32-244s"]]
    lines = format_table(["file", "duration", "per second"], rows, wrap={2: 20}, right=[1])
    assert len(lines) == 2 + 1 + 3
    assert_aligned(lines)
    assert lines[2].split()[1] == "8.0s" and lines[3].index("244.0s") < lines[2].index("8.0s")


@pytest.fixture(scope="module")
def table_output(tmp_path_factory) -> str:
    """``classify`` (default table format) of a 244-s call and of a busy tone."""
    folder = tmp_path_factory.mktemp("classify")
    long_call = np.concatenate([early_media("ringback", 20.0), early_media("silence", 224.0)])
    write_wav(folder / "long.wav", long_call)
    write_wav(folder / "busy.wav", early_media("busy", 8.0))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["classify", "--no-library", str(folder / "long.wav"),
                     str(folder / "busy.wav")]) == 0
    return out.getvalue()


def test_classify_table_is_aligned_and_a_244_s_file_reads_as_runs(table_output):
    lines = table_output.splitlines()
    assert lines[0].split() == [w for h in TABLE_HEADER for w in h.split()]
    assert_aligned(lines)
    long_row = next(line for line in lines if "long.wav" in line)
    assert "244.0s" in long_row and "ringback 0-" in long_row
    assert "R" * 20 not in table_output
    assert max(len(line) for line in lines) < 100 + len(long_row.split()[0])


def test_classify_table_names_the_busy_tone_beside_its_486(table_output):
    busy_row = next(line for line in table_output.splitlines() if "busy.wav" in line)
    gaps = column_gaps(table_output.splitlines())
    because = busy_row[gaps[-1][1]:].strip()
    assert "486 User busy" in busy_row
    assert because == "busy tone"
