"""``early-media-agent calls export``: the call store as CSV or JSON Lines on stdout or in a
file, the same bytes as the API's export; bad input is one line on stderr, exit 2."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from agent.api.app import create_app
from agent.api.config import ApiConfig
from agent.cli import main
from agent.labels import Inferred
from agent.store.calls import CallStore
from agent.store.export import CSV_COLUMNS

NOW = datetime.now(UTC).replace(microsecond=0)
SINCE = (NOW - timedelta(minutes=10)).isoformat()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "calls.sqlite"
    with CallStore(path) as store:
        store.create("a@gw", correlation_id="job-1", carrier="acme",
                     started_at=NOW - timedelta(minutes=5))
        store.set_inferred("a@gw", Inferred(404, "no such number", 1, "fingerprint", []))
        store.set_state("a@gw", "failed")
        store.create("b@gw", carrier="acme", started_at=NOW - timedelta(minutes=2))
        store.create("old@gw", started_at=NOW - timedelta(hours=2))
    return path


def api_export(path: Path, fmt: str) -> str:
    async def scenario() -> str:
        with CallStore(path) as store:
            app = create_app(store, config=ApiConfig(retention_days=0),
                             registry=CollectorRegistry())
            async with TestClient(TestServer(app, host="127.0.0.1")) as client:
                resp = await client.get("/v1/calls/export",
                                        params={"since": SINCE, "format": fmt})
                assert resp.status == 200
                return await resp.text()

    return asyncio.run(scenario())


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_to_stdout_is_what_the_api_serves(store_path: Path, fmt: str, capsys) -> None:
    assert main(["calls", "export", "--store", str(store_path), "--since", SINCE,
                 "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert out == api_export(store_path, fmt)
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [r["call_id"] for r in rows] == ["a@gw", "b@gw"]
        assert rows[0]["inferred_sip_code"] == "404"
    else:
        assert [json.loads(x)["call_id"] for x in out.splitlines()] == ["a@gw", "b@gw"]


def test_export_to_a_file_as_a_real_command(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "cdr.csv"
    epoch = str(int((NOW - timedelta(hours=3)).timestamp()))
    proc = subprocess.run([sys.executable, "-m", "agent", "calls", "export", "--store",
                           str(store_path), "--since", epoch, "--format", "csv", "--out",
                           str(out)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""
    with out.open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        assert [r["call_id"] for r in reader] == ["old@gw", "a@gw", "b@gw"]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "last tuesday"], "since: expected an ISO 8601 timestamp or epoch seconds"),
    (["--store", "{missing}"], "no call store here"),
    (["--store", "{garbage}"], "not a call store"),
    (["--out", "{nodir}"], "cannot write"),
])
def test_bad_input_is_one_line_and_exit_2(store_path: Path, tmp_path: Path, args: list[str],
                                         message: str) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"\x00not sqlite" * 400)
    paths = {"{missing}": str(tmp_path / "none.sqlite"), "{garbage}": str(garbage),
             "{nodir}": str(tmp_path / "no" / "such" / "dir.csv")}
    args = [paths.get(a, a) for a in args]
    if "--store" not in args:
        args += ["--store", str(store_path)]
    proc = subprocess.run([sys.executable, "-m", "agent", "calls", "export", *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_bad_format_is_refused_by_the_parser(store_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["calls", "export", "--store", str(store_path), "--format", "xml"])
    assert exc.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err
