"""How long each dashboard page takes with many calls in the store.

Run: ``python bench/dashboard.py [--calls 100000]``. Fills a fresh SQLite call store
through its own API with calls spread over 7 days (three carriers, a share answered, a
share whose inferred code differs from the carrier's), then times each page over HTTP
(the median of five requests) for the default 24-hour window and for 7 days. Target
(issue 13): every page in at most 1 s with 100,000 calls.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import numpy as np
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from agent.api.app import create_app
from agent.api.config import ApiConfig
from agent.labels import Inferred
from agent.store.calls import CallStore

SPAN = timedelta(days=7)
CODES = (404, 480, 486, 503)


def fill(store: CallStore, n: int, now: datetime) -> str:
    """``n`` calls over :data:`SPAN` before ``now``; returns one Call-ID."""
    rng = np.random.default_rng(7)
    for i in range(n):
        call_id = f"c{i}@bench"
        store.create(call_id, carrier=f"carrier{i % 3}", route=f"route{i % 5}",
                     started_at=now - SPAN * float(rng.uniform()))
        if rng.uniform() < 0.4:
            store.set_answered(call_id, 200)
            continue
        really = int(rng.choice(CODES))
        store.set_inferred(call_id, Inferred(really, "bench", None, "classifier"))
        store.set_carrier_final(call_id, 480 if rng.uniform() < 0.5 else really)
        store.set_state(call_id, "failed")
    return "c0@bench"


async def time_pages(store: CallStore, call_id: str) -> None:
    app = create_app(store, config=ApiConfig(retention_days=0), registry=CollectorRegistry())
    pages = [f"/dashboard{w}" for w in ("", "?since=7d")]
    pages += [f"/dashboard/honesty{w}" for w in ("", "?since=7d")]
    pages.append(f"/dashboard/calls/{quote(call_id, safe='')}")
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        for url in pages:
            times = []
            for _ in range(5):
                t = time.perf_counter()
                resp = await client.get(url)
                await resp.read()
                assert resp.status == 200, url
                times.append(time.perf_counter() - t)
            print(f"{url:<40} {statistics.median(times) * 1000:8.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = CallStore(Path(tmp) / "calls.sqlite")
        t = time.perf_counter()
        call_id = fill(store, args.calls, datetime.now(UTC))
        print(f"filled {args.calls} calls in {time.perf_counter() - t:.0f} s")
        asyncio.run(time_pages(store, call_id))
        store.close()


if __name__ == "__main__":
    main()
