"""Call-store write/read cost and long-poll wake latency.

Run: ``python bench/api_store.py``. Prints the SQLite call store's per-operation cost
(create, add a second, get by correlation id, ASR over all calls), how long a long poll
takes to answer after its call is decided, and whether 100 concurrent long polls are all
answered.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from agent.api.app import NOTIFIER, create_app
from agent.api.config import ApiConfig
from agent.labels import Inferred, SecondResult
from agent.store.calls import CallStore

N_CALLS = 2000


def _per_call(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    """Seconds per call of ``fn(i)`` over ``i in range(n)``."""
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t) / n


def store_costs(store: CallStore) -> None:
    t_create = _per_call(lambda i: store.create(f"c{i}", correlation_id=f"k{i}",
                                                carrier=f"car{i % 5}", route=f"r{i % 3}"),
                         N_CALLS)
    first = SecondResult(t=0, label="ringback", p={"ringback": 0.9, "silence": 0.1})
    t_second = _per_call(lambda i: store.add_second(f"c{i}", first), N_CALLS)
    for i in range(N_CALLS):
        for k in range(1, 4):
            store.add_second(f"c{i}", SecondResult(t=k, label="ringback", p={"ringback": 0.9}))
    t_get = _per_call(lambda i: store.get(f"k{i}"), N_CALLS)
    t = time.perf_counter()
    store.asr("carrier", datetime(2000, 1, 1))
    t_asr = time.perf_counter() - t
    print(f"create {t_create * 1e3:.3f} ms, add_second {t_second * 1e3:.3f} ms, "
          f"get-by-correlation (4 s) {t_get * 1e3:.3f} ms, "
          f"asr over {N_CALLS} calls {t_asr * 1e3:.1f} ms")


def _decide_later(store: CallStore, app, call_id: str, sent: dict[str, float]  # type: ignore[no-untyped-def]
                  ) -> threading.Timer:
    def decide() -> None:
        store.set_inferred(call_id, Inferred(486, "busy", 17, "tone"))
        sent["t"] = time.perf_counter()
        app[NOTIFIER].notify(call_id)

    timer = threading.Timer(0.05, decide)
    timer.start()
    return timer


async def long_polls(store: CallStore) -> None:
    app = create_app(store, config=ApiConfig(retention_days=0, poll_interval_s=10),
                     registry=CollectorRegistry())
    async with TestClient(TestServer(app)) as client:
        lags = []
        for i in range(30):
            sent: dict[str, float] = {}
            timer = _decide_later(store, app, f"c{i}", sent)
            resp = await client.get(f"/v1/calls/c{i}?wait=30")
            await resp.json()
            lags.append(time.perf_counter() - sent["t"])
            timer.join()
        print(f"long-poll wake after notify: median {statistics.median(lags) * 1e3:.2f} ms, "
              f"max {max(lags) * 1e3:.2f} ms (n=30)")

        async def poll(call_id: str) -> int:
            resp = await client.get(f"/v1/calls/{call_id}?wait=30")
            return (await resp.json())["inferred"]["sip_code"]

        ids = [f"c{100 + i}" for i in range(100)]
        tasks = [asyncio.create_task(poll(cid)) for cid in ids]
        await asyncio.sleep(0.5)
        t0 = time.perf_counter()

        def decide_all() -> None:
            for cid in ids:
                store.set_inferred(cid, Inferred(404, "x", 1, "fingerprint"))
                app[NOTIFIER].notify(cid)

        await asyncio.to_thread(decide_all)
        codes = await asyncio.gather(*tasks)
        print(f"100 concurrent long polls answered in {(time.perf_counter() - t0) * 1e3:.0f} ms "
              f"after the first decision; all 404: {set(codes) == {404}}")


def main() -> None:
    store = CallStore(Path(tempfile.mkdtemp()) / "calls.sqlite")
    store_costs(store)
    asyncio.run(long_polls(store))


if __name__ == "__main__":
    main()
