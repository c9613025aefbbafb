"""The agent's log: one JSON object a line, whoever writes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HOME = Path(__file__).resolve().parents[1]
_WRITER = """
import sys
import structlog
from agent.logs import setup_logging
setup_logging()
log = structlog.get_logger("t")
for k in range(6000):
    log.info("line", who=sys.argv[1], k=k)
"""


def test_processes_sharing_an_unbuffered_stderr_never_split_a_line(tmp_path: Path) -> None:
    """The supervisor and its workers share one stderr; with PYTHONUNBUFFERED (usual in
    containers) a line and its newline written apart interleaved with the other process's
    lines (seen in a 30-minute soak's log)."""
    out = tmp_path / "agent.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(HOME)}
    with out.open("ab") as log:
        procs = [subprocess.Popen([sys.executable, "-c", _WRITER, who], stderr=log, env=env)
                 for who in ("a", "b", "c")]
        assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    lines = out.read_text().splitlines()
    assert len(lines) == 18000
    broken = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            broken.append(line)
    assert not broken, f"{len(broken)} lines are not one JSON object, e.g. {broken[0][:120]}"
