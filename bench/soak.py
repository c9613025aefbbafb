"""Soak: steady concurrent traffic through the real agent for minutes, not seconds.

A SIPp carrier answers every INVITE with 183 and ``--early-s`` of busy tone, then a generic
480; a SIPp dialer keeps ``--calls`` calls up at once for ``--minutes``. The agent runs
with rewrite on and ``--workers`` pjsua2 workers (behind Kamailio when more than one).

Every call the dialer placed is put in one bucket:

* **rewritten**: the dialer got 486 with ``X-Carrier-Final-Code: 480`` (relayed, decided);
  **rewritten to N**: another inferred code (a tone read as another country's);
* **relayed undecided**: the carrier's 480 came through untouched (no inference in time);
* **made up**: a final response the carrier never sent (408 timeout, 500, 503 ...);
* **lost**: no final response at all.

It also counts worker deaths (``child_died`` in the agent's log) and samples each agent
process's RSS every ``--sample-s`` seconds; the growth after warm-up is the RSS at the end
over the RSS when the first quarter of the run has passed.

Run: ``nice -n 5 python bench/soak.py --calls 30 --minutes 30 --workers 16``
     ``nice -n 5 python bench/soak.py --calls 100 --minutes 10 --workers 52``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.sip.early_media import early_media, usable_model, write_ulaw
from agent.sip.harness import (
    AgentProcess,
    classify_final,
    invite_final,
    parse_trace,
    steady_calls,
)
from bench.load import snapshot


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30, help="concurrent calls")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=0,
                        help="pjsua2 workers (default: enough for the calls, plus 1)")
    parser.add_argument("--analysts", type=int, default=2)
    parser.add_argument("--early-s", type=float, default=8.0)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    workers = args.workers or args.calls // 2 + 1
    root = Path(tempfile.mkdtemp(prefix="ema-soak-"))
    model = usable_model(root)
    audio = write_ulaw(root / "early.ul", early_media("busy", args.early_s + 1))
    agent = AgentProcess(workdir=root / "agent", model=model, rewrite=True, workers=workers,
                         extra_sip={"analysis_processes": args.analysts,
                                    "carrier_timeout_s": 30.0, "decision_timeout_ms": 1000})
    agent.start(timeout_s=300)
    assert agent.proc is not None
    print(f"agent: {workers} workers, {args.analysts} analysis processes; "
          f"{args.calls} concurrent calls for {args.minutes} min; work dir {root}")
    samples: list[tuple[float, dict[int, tuple[str, float, int]]]] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.monotonic() - t0, snapshot(agent.proc.pid)))
            stop.wait(args.sample_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        trace = steady_calls(agent, workdir=root / "calls", audio=audio, calls=args.calls,
                            minutes=args.minutes, early_s=args.early_s)
        time.sleep(3)
    finally:
        stop.set()
        sampler.join()
        events = agent.log_events()
        rc = agent.stop()
    by_call = defaultdict(list)
    for msg in parse_trace(trace.read_text(errors="replace")):
        by_call[msg.header("call-id") or ""].append(msg)
    buckets: Counter[str] = Counter()
    for msgs in by_call.values():
        final = invite_final(msgs)
        buckets[classify_final(final.status if final else None,
                               final.header("x-carrier-final-code") if final else None)] += 1
    deaths = [e for e in events if e.get("event") == "child_died"]
    print(f"calls placed: {len(by_call)}")
    for name, n in sorted(buckets.items()):
        print(f"  {name}: {n}")
    print(f"worker/analysis deaths: {len(deaths)} "
          f"{[(e.get('kind'), e.get('returncode')) for e in deaths]}")
    print(f"agent exit status: {rc}")
    rss_growth = rss_report(samples)
    if args.json:
        args.json.write_text(json.dumps({"calls": len(by_call), "buckets": dict(buckets),
                                         "deaths": len(deaths), "rss_growth": rss_growth,
                                         "exit": rc}, indent=1))
    lost = sum(n for k, n in buckets.items() if not k.startswith("rewritten"))
    return 1 if deaths or lost else 0


def rss_report(samples: list[tuple[float, dict[int, tuple[str, float, int]]]]
               ) -> dict[str, float]:
    """Print RSS per process kind over time; return each kind's growth after warm-up."""
    if len(samples) < 4:
        return {}
    totals: list[tuple[float, dict[str, int]]] = []
    for t, snap in samples:
        kinds: dict[str, int] = defaultdict(int)
        for kind, _, rss in snap.values():
            kinds[kind] += rss
        totals.append((t, kinds))
    warm = totals[len(totals) // 4]
    last = totals[-2]  # the very last sample may fall in the shutdown
    growth = {}
    for kind in sorted(last[1]):
        start = warm[1].get(kind, 0)
        if start:
            growth[kind] = 100.0 * (last[1][kind] - start) / start
    print("RSS (MiB, all processes of a kind) at warm-up / end, growth:")
    for kind, g in growth.items():
        print(f"  {kind:<10} {warm[1][kind] / 2**20:8.1f} / {last[1][kind] / 2**20:8.1f}  "
              f"{g:+.1f}%")
    step = max(1, len(totals) // 10)
    print("RSS over time (MiB): " + ", ".join(
        f"{t:.0f}s {sum(k.values()) / 2**20:.0f}" for t, k in totals[::step]))
    return growth


if __name__ == "__main__":
    sys.exit(main())
