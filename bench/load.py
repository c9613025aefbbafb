"""Load: ≥ 100 concurrent calls with 8 s of early media each through the real agent.

Starts the agent with ``--workers`` pjsua2 worker processes (2 bridged calls each) behind
Kamailio, ``--analysts`` analysis processes, rewrite mode on; a SIPp carrier plays a busy
tone then fails every call with a generic 480, a SIPp dialer places ``--calls`` calls at
once. Checks that every call was relayed (the dialer got the rewritten 486), classified
(seconds in the API) and decided, and reports:

- decision lag (decision time minus the time the audio it needed had arrived): p50/p99;
- agent CPU per call (% of one core) and where it goes (workers, analysis, supervisor,
  Kamailio), from /proc of every agent process;
- RSS per process kind.

Run: ``nice -n 10 python bench/load.py --calls 100 --workers 50``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

# The SIPp harness lives with the e2e tests; make the checkout importable when run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.sip.early_media import early_media, usable_model, write_ulaw
from agent.sip.harness import AgentProcess, place_calls

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    kids = [int(x) for x in text.split()]
    return kids + [g for k in kids for g in _children(k)]


def _kind(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "gone"
    if "agent.sip.worker" in cmd:
        return "worker"
    if "agent.media.analyst" in cmd:
        return "analysis"
    if "kamailio" in cmd:
        return "kamailio"
    return "supervisor"


def _cpu_rss(pid: int) -> tuple[float, int]:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except OSError:
        return 0.0, 0
    return (int(fields[11]) + int(fields[12])) / TICK, rss


def snapshot(root: int) -> dict[int, tuple[str, float, int]]:
    """pid → (kind, CPU seconds so far, RSS bytes) for the agent and all its descendants."""
    out = {}
    for pid in [root, *_children(root)]:
        cpu, rss = _cpu_rss(pid)
        out[pid] = (_kind(pid), cpu, rss)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--analysts", type=int, default=2)
    parser.add_argument("--early-s", type=float, default=8.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ema-load-"))
    model = usable_model(root)
    audio = write_ulaw(root / "early.ul", early_media("busy", args.early_s + 1))
    agent = AgentProcess(workdir=root / "agent", model=model, rewrite=True,
                         workers=args.workers,
                         extra_sip={"analysis_processes": args.analysts,
                                    "carrier_timeout_s": 60.0, "decision_timeout_ms": 1000})
    t0 = time.monotonic()
    agent.start(timeout_s=300)
    print(f"model: {model}")
    print(f"agent up with {args.workers} workers in {time.monotonic() - t0:.1f} s")
    assert agent.proc is not None
    before = snapshot(agent.proc.pid)
    peak_rss: dict[int, int] = defaultdict(int)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for pid, (_, _, rss) in snapshot(agent.proc.pid).items():
                peak_rss[pid] = max(peak_rss[pid], rss)
            stop.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t_calls = time.monotonic()
    try:
        results = place_calls(agent, workdir=root / "calls", carrier="carrier_early_final.xml",
                              audio=audio, calls=args.calls, final_code=480,
                              early_ms=int(args.early_s * 1000), timeout_s=120)
        wall = time.monotonic() - t_calls
        after = snapshot(agent.proc.pid)
    finally:
        stop.set()
        sampler.join()
        agent.stop()
    codes = [r.code for r in results]
    rewritten = [r for r in results
                 if r.code == 486 and r.final.header("x-carrier-final-code") == "480"]
    classified = [r for r in results if r.record.get("seconds")]
    decided = [r for r in results if r.record.get("inferred")]
    events = agent.log_events()
    lags = np.array([e["lag_s"] for e in events
                     if e.get("event") == "code_inferred" and e.get("lag_s") is not None])
    print(f"calls placed: {args.calls}, answered by the dialer with a final: "
          f"{sum(c is not None for c in codes)}, of which rewritten 480 -> 486: {len(rewritten)}")
    print(f"classified (seconds in the API): {len(classified)}, decided: {len(decided)}")
    others = [r.final.first_line for r in results if r not in rewritten and r.final]
    print(f"dropped (no final response): {sum(c is None for c in codes)}; "
          f"not rewritten: {others}")
    if lags.size:
        print(f"decision lag: n={lags.size} p50={np.percentile(lags, 50):.3f} s "
              f"p99={np.percentile(lags, 99):.3f} s max={lags.max():.3f} s")
    cpu: dict[str, float] = defaultdict(float)
    rss: dict[str, list[int]] = defaultdict(list)
    for pid, (kind, c1, _) in after.items():
        c0 = before.get(pid, (kind, 0.0, 0))[1]
        cpu[kind] += c1 - c0
        rss[kind].append(peak_rss.get(pid, 0))
    total = sum(cpu.values())
    call_seconds = args.calls * wall
    print(f"wall time of the call batch: {wall:.1f} s; agent CPU: {total:.1f} s "
          f"= {100 * total / wall:.0f}% of one core")
    print(f"agent CPU per concurrent call: {100 * total / call_seconds:.2f}% of one core")
    audio_s = sum(len(r.record.get("seconds") or []) for r in results)
    if audio_s:
        print(f"analysis CPU per classified second of audio: {1000 * cpu['analysis'] / audio_s:.1f}"
              f" ms -> one analysis process keeps up with ~{audio_s / cpu['analysis']:.0f}"
              " concurrent calls per core")
    for kind in sorted(cpu):
        sizes = np.array(rss[kind]) / 2**20
        print(f"  {kind:<10} CPU {cpu[kind]:6.1f} s ({100 * cpu[kind] / max(total, 1e-9):4.1f}%)"
              f"  processes {len(sizes):3d}  peak RSS each: median {np.median(sizes):.1f} MiB,"
              f" max {sizes.max():.1f} MiB, total {sizes.sum():.0f} MiB")


if __name__ == "__main__":
    main()
