"""``early-media-agent demo``: the whole agent on loopback, driven by real SIPp.

It starts the agent (one pjsua2 worker, SQLite stores in a fresh demo directory, final
responses rewritten), seeds the announcement library with two recorded announcements from
Debian's Asterisk prompts (French "all circuits are busy", Spanish "the number you have
dialled is not in service"; the unknown announcement is English), then places one call
per carrier behaviour: a SIPp carrier plays early media
with ``rtp_stream`` and fails with a generic code, a SIPp dialer places the call through
the agent. It prints what the carrier sent, what the dialer received and what the agent
inferred, and exits non-zero if any call came out other than expected.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.audio import SAMPLE_RATE
from agent.audio.io import load_audio
from agent.errors import UserError
from agent.paths import cache_dir
from agent.text_table import format_table


@dataclass(frozen=True)
class Scenario:
    """One demo call: what the carrier plays and answers, and what the agent should infer."""

    title: str
    audio: str | None  # early-media kind, or a library announcement's key
    carrier_code: int
    expected_code: int | None  # what the dialer should get from the rewriting agent
    carrier: str = "carrier_early_final.xml"


#: Library announcements: key → (SIP code, reason, language, Asterisk prompt under
#: /usr/share/asterisk/sounds). Carriers loop their announcements; so does the demo.
ANNOUNCEMENTS = {
    "circuits_busy_fr": (503, "All circuits busy", "fr",
                         "fr_CA_f_June/all-circuits-busy-now.wav"),
    "not_in_service_es": (404, "Unallocated number", "es",
                          "es_MX_f_Allison/ss-noservice.wav"),
}
SOUNDS = Path("/usr/share/asterisk/sounds")
#: The pause between two plays of a looped announcement.
LOOP_PAUSE_S = 0.8

SCENARIOS = (
    Scenario("library announcement (fr, all circuits busy) + 480", "circuits_busy_fr", 480, 503),
    Scenario("library announcement (es, not in service) + 503", "not_in_service_es", 503, 404),
    Scenario("unknown announcement + generic 503", "announcement", 503, 480),
    Scenario("ringback until the carrier gives up + 480", "ringback", 480, 480),
    Scenario("caller tune (music) + 487", "music", 487, 480),
    Scenario("silence + 408", "silence", 408, 408),
    Scenario("busy tone + generic 480", "busy", 480, 486),
    Scenario("SIT vacant code + announcement + generic 503", "sit_vc", 503, 404),
    Scenario("183 then 200 OK (answered)", "ringback", 200, 200, "carrier_answer.xml"),
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "demo",
        help="run the agent on loopback against SIPp carrier/dialer scenarios",
        description="Start the agent with embedded SQLite stores, seed a demo announcement "
        "library, and place one SIPp call per carrier behaviour through it.",
    )
    p.add_argument("--workdir", default=None,
                   help="where the demo keeps its stores and logs (default: a fresh "
                   "directory under the cache dir)")
    p.set_defaults(func=run)


def _announcement(prompt: str) -> np.ndarray:
    """One play of a recorded prompt and the pause before it repeats."""
    path = SOUNDS / prompt
    if not path.is_file():
        raise UserError(f"{path}: missing; install asterisk-core-sounds-en-wav, -es-wav and "
                        "-fr-wav (scripts/bootstrap.sh)")
    pause = np.zeros(int(LOOP_PAUSE_S * SAMPLE_RATE), np.float32)
    return np.concatenate([load_audio(path), pause])


def _looped(cycle: np.ndarray, seconds: float) -> np.ndarray:
    n = int(seconds * SAMPLE_RATE)
    return np.tile(cycle, -(-n // cycle.size))[:n]


def _seed_library(path: Path) -> dict[str, np.ndarray]:
    from agent.fingerprint import open_library

    audio: dict[str, np.ndarray] = {}
    library = open_library(path)
    try:
        for key, (code, reason, lang, prompt) in ANNOUNCEMENTS.items():
            cycle = _announcement(prompt)
            library.add(cycle, sip_code=code, reason=reason, lang=lang, name=key)
            audio[key] = _looped(cycle, 8.0)
    finally:
        library.close()
    return audio


def _row(scenario: Scenario, result: Any) -> tuple[list[str], bool]:
    inferred = result.record.get("inferred") or {}
    got = result.code
    ok = got == scenario.expected_code
    if scenario.expected_code == 200:
        ok = ok and result.record.get("state") in ("connected", "ended")
    # What drove the code (busy tone, SIT VC, library entry 3), not only its detector.
    code = (f"{inferred['sip_code']} ({inferred.get('basis') or inferred['source']})"
            if inferred else "-")
    return [scenario.title, str(scenario.carrier_code), str(got), code,
            result.record.get("state", "-"), "ok" if ok else "UNEXPECTED"], ok


def _call(agent: Any, scenario: Scenario, i: int, *, workdir: Path,
          spoken: dict[str, np.ndarray]) -> tuple[list[str], bool]:
    """Place one scenario's call and return its table row and whether it went as expected."""
    from agent.sip.early_media import early_media, write_ulaw
    from agent.sip.harness import place_call

    audio_path = None
    if scenario.audio is not None:
        samples = spoken.get(scenario.audio)
        if samples is None:
            samples = early_media(scenario.audio, 8.0, seed=i)
        audio_path = write_ulaw(workdir / f"call{i}.ul", samples)
    result = place_call(agent, workdir=workdir / f"call{i}", carrier=scenario.carrier,
                        audio=audio_path, early_ms=8000, final_code=scenario.carrier_code)
    return _row(scenario, result)


def _print_table(rows: list[list[str]]) -> None:
    header = ["carrier behaviour", "carrier sent", "dialer got", "agent inferred", "state",
              "check"]
    print("\n".join(format_table(header, rows, wrap={3: 48})))


def run(args: argparse.Namespace) -> int:
    from agent.sip.harness import AgentProcess

    if shutil.which("sipp") is None:
        raise UserError("sipp is not installed; run scripts/bootstrap.sh first")
    base = Path(args.workdir) if args.workdir else cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="demo-", dir=base))
    library_path = workdir / "library.sqlite"
    print(f"demo: working in {workdir}", file=sys.stderr)
    spoken = _seed_library(library_path)

    # The carriers below answer after 8 s of early media: the agent's own carrier timeout
    # (8 s in the test harness) must not race them.
    agent = AgentProcess(workdir=workdir / "agent", model=None, rewrite=True,
                         extra_sip={"carrier_timeout_s": 30.0},
                         extra={"fingerprint": {"enabled": True, "library": str(library_path)}})
    agent.start()
    rows: list[list[str]] = []
    failures = 0
    try:
        for i, scenario in enumerate(SCENARIOS):
            print(f"demo: call {i + 1}/{len(SCENARIOS)}: {scenario.title}", file=sys.stderr)
            try:
                row, ok = _call(agent, scenario, i, workdir=workdir, spoken=spoken)
            except (UserError, OSError, RuntimeError, TimeoutError) as exc:
                # One call that cannot run must not hide the others' results.
                print(f"demo: call {i + 1} failed: {exc}", file=sys.stderr)
                row, ok = [scenario.title, str(scenario.carrier_code), "-", "-", "-",
                           f"ERROR: {exc}"[:60]], False
            rows.append(row)
            failures += not ok
    finally:
        agent.stop()
        _print_table(rows)
    from agent.fingerprint import open_library

    library = open_library(library_path)
    try:
        unknown = len(library.entries(kind="unknown"))
    finally:
        library.close()
    print(f"\nunknown announcements kept for labelling: {unknown} "
          f"(early-media-agent library --library {library_path} unknown list)")
    print(f"call store: {workdir / 'agent' / 'calls.sqlite'}; agent log: {agent.log_path}")
    return 1 if failures else 0
