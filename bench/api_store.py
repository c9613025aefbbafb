"""Call-store write/read cost and long-poll wake latency: `python bench/api_store.py`."""
import asyncio, statistics, tempfile, threading, time
from pathlib import Path
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from agent.api.app import NOTIFIER, create_app
from agent.api.config import ApiConfig
from agent.labels import Inferred, SecondResult
from agent.store.calls import CallStore

d = Path(tempfile.mkdtemp())
s = CallStore(d / "calls.sqlite")
n = 2000
t = time.perf_counter()
for i in range(n):
    s.create(f"c{i}", correlation_id=f"k{i}", carrier=f"car{i % 5}", route=f"r{i % 3}")
t_create = (time.perf_counter() - t) / n
t = time.perf_counter()
for i in range(n):
    s.add_second(f"c{i}", SecondResult(t=0, label="ringback", p={"ringback": 0.9, "silence": 0.1}))
t_second = (time.perf_counter() - t) / n
for i in range(n):
    for k in range(1, 4):
        s.add_second(f"c{i}", SecondResult(t=k, label="ringback", p={"ringback": 0.9}))
t = time.perf_counter()
for i in range(n):
    s.get(f"k{i}")
t_get = (time.perf_counter() - t) / n
t = time.perf_counter()
rows = s.asr("carrier", __import__("datetime").datetime(2000, 1, 1))
t_asr = time.perf_counter() - t
print(f"create {t_create*1e3:.3f} ms, add_second {t_second*1e3:.3f} ms, get-by-correlation (4 s) {t_get*1e3:.3f} ms, asr over {n} calls {t_asr*1e3:.1f} ms")

async def main():
    app = create_app(s, config=ApiConfig(retention_days=0, poll_interval_s=10), registry=CollectorRegistry())
    async with TestClient(TestServer(app)) as c:
        lags = []
        for i in range(30):
            cid = f"c{i}"
            sent = {}
            def decide():
                s.set_inferred(cid, Inferred(486, "busy", 17, "tone"))
                sent["t"] = time.perf_counter()
                app[NOTIFIER].notify(cid)
            timer = threading.Timer(0.05, decide); timer.start()
            r = await c.get(f"/v1/calls/{cid}?wait=30")
            await r.json()
            lags.append(time.perf_counter() - sent["t"]); timer.join()
        print(f"long-poll wake after notify: median {statistics.median(lags)*1e3:.2f} ms, max {max(lags)*1e3:.2f} ms (n=30)")
        # 100 concurrent long polls all woken
        async def one(i):
            r = await c.get(f"/v1/calls/c{100+i}?wait=30"); return (await r.json())["inferred"]["sip_code"]
        tasks = [asyncio.create_task(one(i)) for i in range(100)]
        await asyncio.sleep(0.5)
        t0 = time.perf_counter()
        def decide_all():
            for i in range(100):
                s.set_inferred(f"c{100+i}", Inferred(404, "x", 1, "fingerprint")); app[NOTIFIER].notify(f"c{100+i}")
        await asyncio.to_thread(decide_all)
        codes = await asyncio.gather(*tasks)
        print(f"100 concurrent long polls answered in {(time.perf_counter()-t0)*1e3:.0f} ms after the first decision; all 404: {set(codes)=={404}}")
asyncio.run(main())
