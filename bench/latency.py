"""Latency of the live agent: first classified second after the first early-media packet.

Starts the real agent (one worker), places calls one after another with SIPp (a carrier
playing early media, a dialer), and reads the agent's JSON log:

- ``first_second_classified.since_media_s``: from the moment the worker saw the carrier's
  early media start (the 183 with SDP; SIPp's first RTP packet follows it by 9-58 ms, so
  this is an upper bound) to the supervisor having the first second's class;
- ``code_inferred.lag_s``: decision time minus the time the audio it needed had arrived.

Target: first classified second <= 1.2 s. Run: ``nice -n 10 python bench/latency.py --calls 10``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

# The SIPp harness lives with the e2e tests; make the checkout importable when run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.sip.early_media import early_media, usable_model, write_ulaw
from agent.sip.harness import AgentProcess, place_call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--kind", default="ringback")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ema-latency-"))
    model = usable_model(root)
    audio = write_ulaw(root / "early.ul", early_media(args.kind, 4.0))
    agent = AgentProcess(workdir=root / "agent", model=model, rewrite=False)
    agent.start()
    try:
        for i in range(args.calls):
            place_call(agent, workdir=root / f"call{i}", carrier="carrier_early_final.xml",
                       audio=audio, early_ms=2500, final_code=480)
    finally:
        agent.stop()
    events = agent.log_events()
    first = [e["since_media_s"] for e in events if e.get("event") == "first_second_classified"]
    lags = [e["lag_s"] for e in events if e.get("event") == "code_inferred"
            and e.get("lag_s") is not None]
    print(f"model: {model}")
    for name, xs in (("first classified second after early media (s)", first),
                     ("decision lag (s)", lags)):
        if not xs:
            print(f"{name}: no samples")
            continue
        a = np.array(xs)
        print(f"{name}: n={len(a)} median={statistics.median(a):.3f} "
              f"p95={np.percentile(a, 95):.3f} max={a.max():.3f}")


if __name__ == "__main__":
    main()
