"""Faults: kill -9 a worker mid-call, kill -9 the analysis process, kill -9 and restart the
agent, ≥ 1,000 malformed SIP messages of ≥ 20 kinds, bursts of INVITEs beyond capacity,
RTP garbage. Each prints tried / survived / lost (see agent/sip/faults.py).

Targets: malformed messages → 0 process deaths; a killed worker → every affected dialer
has a final response within 2 s and every carrier leg a CANCEL; restart → 0 finished
records lost.

Run: ``nice -n 5 python bench/faults.py`` (3 workers behind Kamailio)
     ``nice -n 5 python bench/faults.py --workers 1``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.sip import faults
from agent.sip.early_media import early_media, usable_model, write_ulaw
from agent.sip.harness import AgentProcess


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kills", type=int, default=5, help="rounds of the worker kill")
    parser.add_argument("--malformed", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ema-faults-"))
    model = usable_model(root)
    busy = write_ulaw(root / "busy.ul", early_media("busy", 9.0))
    ring = write_ulaw(root / "ring.ul", early_media("ringback", 9.0))
    agent = AgentProcess(workdir=root / "agent", model=model, rewrite=True, workers=args.workers)
    agent.start(timeout_s=300)
    print(f"agent: {args.workers} worker(s){' behind Kamailio' if args.workers > 1 else ''}; "
          f"work dir {root}")
    results = []
    try:
        calls = agent.capacity
        kills = [faults.kill_worker_mid_call(agent, workdir=root / f"kill{i}", audio=ring,
                                             calls=calls) for i in range(args.kills)]
        total = faults.FaultResult(kills[0].name)
        delays: list[float] = []
        for k in kills:
            total.tried += k.tried
            total.survived += k.survived
            total.lost += k.lost
            total.notes += [n for n in k.notes if not n.startswith("affected")]
            delays += k.values.get("delays_s", [])
        if delays:
            total.notes.append(f"{len(delays)} calls on killed workers; their final response "
                               f"{min(delays):.2f}-{max(delays):.2f} s after the kill")
        results.append(total)
        results.append(faults.kill_analysis_mid_call(agent, workdir=root / "analysis",
                                                     audio=busy, calls=calls))
        results.append(faults.invite_burst(agent, workdir=root / "burst", audio=busy))
        results.append(faults.rtp_garbage(agent, workdir=root / "rtp", audio=busy, calls=calls))
        # Last before the restart: malformed INVITEs that parse start calls to a carrier
        # that is not there, and hold call slots for a while.
        results.append(faults.malformed_flood(agent, count=args.malformed, seed=args.seed,
                                              workdir=root / "flood", audio=busy))
        results.append(faults.restart_agent(agent, workdir=root / "restart", audio=busy,
                                            calls=calls))
    finally:
        agent.stop()
    for r in results:
        print(r.line())
    return 1 if any(r.lost for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
