"""Benchmark the announcement library on audio nobody here wrote.

References: Asterisk prompts (en/es/fr; several distinct prompts concatenated per entry,
each prompt in one entry only) and espeak-ng renderings of distinct templated announcement
texts in many voices. Queries: 3-s and 2-s excerpts from random offsets of the looping
announcement, with line noise at 15 dB SNR, through each telephone codec
(``agent.corpus.channel.apply_codec``). Announcements not in the library measure false
matches. Prints top-1 accuracy, false-match rate, lookup latency, index build speed and size.

    nice -n 10 python bench/fingerprint.py --entries 1000
    nice -n 10 python bench/fingerprint.py --entries 10000

Generated audio is cached under ``agent.paths.cache_dir()/"bench"/"fingerprint"``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from agent import paths
from agent.audio import SAMPLE_RATE
from agent.audio.io import load_audio
from agent.corpus.channel import apply_codec
from agent.fingerprint.config import FingerprintConfig
from agent.fingerprint.index import HashIndex
from agent.fingerprint.landmarks import fingerprint
from agent.fingerprint.library import Library, score
from agent.store.library import SqliteLibraryStore

CODECS = ("ulaw", "alaw", "gsm", "amr-nb", "opus-8k", "opus-16k")
PROMPT_DIRS = ("en_US_f_Allison", "es_MX_f_Allison", "fr_CA_f_June")
ENTRY_SECONDS = 6.0
CACHE = paths.cache_dir() / "bench" / "fingerprint"

# Texts are strings of pseudo-words built from these syllables: two entries then share at
# most a word, never a phrase, even when they happen to get the same voice and speed (a
# templated sentence would make the "distinct" entries share seconds of identical audio).
ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "sh", "ch",
          "br", "tr", "kl", "st"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ou"]


def _voices() -> list[str]:
    """espeak-ng voices that actually speak (a few listed ones fail to load)."""
    cache = CACHE / "voices.json"
    if cache.exists():
        return list(json.loads(cache.read_text()))
    out = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True,
                         check=True).stdout.splitlines()[1:]
    voices = []
    for name in (line.split()[1] for line in out if len(line.split()) > 1):
        probe = subprocess.run(["espeak-ng", "--stdout", "-v", name, "1 2 3"],
                               capture_output=True, check=False)
        if probe.returncode == 0 and len(probe.stdout) > 1000:
            voices.append(name)
    CACHE.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(voices))
    return voices


def _trim(x: np.ndarray) -> np.ndarray:
    """Cut leading and trailing silence (10-ms frames 45 dB under the loudest)."""
    frames = x[: x.size // 80 * 80].reshape(-1, 80)
    if frames.size == 0:
        return x
    e = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
    on = np.nonzero(e > e.max() - 45)[0]
    return x[on[0] * 80 : (on[-1] + 1) * 80] if on.size else x[:0]


def asterisk_entries() -> list[tuple[str, np.ndarray]]:
    """Groups of distinct Asterisk prompts, ≥ ENTRY_SECONDS each, with 0.3-s pauses."""
    cache = CACHE / "asterisk.npz"
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        return [(str(n), z[f"a{i}"].astype(np.float32) / 32767) for i, n in enumerate(z["names"])]
    root = Path("/usr/share/asterisk/sounds")
    files = sorted(
        f for d in PROMPT_DIRS for f in (root / d).rglob("*.wav")
        if "silence" not in f.parts
    )
    rng = np.random.default_rng(7)
    files = [files[i] for i in rng.permutation(len(files))]
    seen: set[str] = set()
    groups: list[tuple[str, np.ndarray]] = []
    parts: list[np.ndarray] = []
    names: list[str] = []
    gap = np.zeros(int(0.3 * SAMPLE_RATE), np.float32)
    for f in files:
        x = _trim(load_audio(f))
        digest = hashlib.sha1(np.round(x * 1000).astype(np.int16).tobytes()).hexdigest()
        if x.size < 0.4 * SAMPLE_RATE or digest in seen:
            continue  # beeps, and the few prompts shipped twice under two names
        seen.add(digest)
        parts += [x, gap]
        names.append(f"{f.parent.name}/{f.stem}")
        if sum(p.size for p in parts) >= ENTRY_SECONDS * SAMPLE_RATE:
            groups.append(("asterisk:" + "+".join(names), np.concatenate(parts)))
            parts, names = [], []
    groups = _drop_repeated_prompts(groups)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cache, names=np.array([g[0] for g in groups]),
             **{f"a{i}": np.round(g[1] * 32767).astype(np.int16) for i, g in enumerate(groups)})
    return groups


def _drop_repeated_prompts(groups: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """Drop groups sharing a recording with an earlier group (some prompts are shipped
    twice under different names, e.g. ``invalid`` and ``pbx-invalid``)."""
    lms = [fingerprint(x) for _, x in groups]
    index = HashIndex(enumerate(lms))
    keep: list[int] = []
    for i, lm in enumerate(lms):
        hits = [c for c in index.query(lm, top=4) if c.entry_id != i]
        if not any(c.entry_id in keep and c.evidence >= 16 for c in hits):
            keep.append(i)
    return [groups[i] for i in keep]


def _espeak_text(rng: np.random.Generator) -> str:
    words = []
    for _ in range(int(rng.integers(12, 17))):
        n = int(rng.integers(2, 4))
        words.append("".join(ONSETS[int(rng.integers(len(ONSETS)))]
                             + VOWELS[int(rng.integers(len(VOWELS)))] for _ in range(n)))
    cut = len(words) // 2
    return " ".join(words[:cut]).capitalize() + ". " + " ".join(words[cut:]).capitalize() + "."


def _espeak(args: tuple[int, str, str, int]) -> np.ndarray:
    i, voice, text, speed = args
    path = CACHE / "espeak-pseudo" / f"{i:06d}.npy"
    if path.exists():
        return np.load(path).astype(np.float32) / 32767
    # A few voice+variant pairs crash espeak-ng (e.g. kl+m3): fall back to the plain voice.
    for v in (voice, voice.split("+")[0], "en"):
        proc = subprocess.run(["espeak-ng", "--stdout", "-v", v, "-s", str(speed), text],
                              capture_output=True, check=False)
        if proc.returncode == 0 and len(proc.stdout) > 1000:
            break
    wav = proc.stdout
    x, sr = sf.read(io.BytesIO(wav), dtype="float32")
    x = soxr.resample(x, sr, SAMPLE_RATE).astype(np.float32)
    x = 0.5 * x / (np.abs(x).max() + 1e-9)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.round(x * 32767).astype(np.int16))
    return x


def espeak_entries(n: int) -> list[tuple[str, np.ndarray]]:
    """``n`` distinct pseudo-word texts, each in one of the voices (cycled) and variants."""
    voices = _voices()
    rng = np.random.default_rng(11)
    variants = ["", "+m3", "+f2", "+f4", "+m7"]
    jobs = []
    for i in range(n):
        voice = voices[i % len(voices)] + variants[(i // len(voices)) % len(variants)]
        jobs.append((i, voice, _espeak_text(rng), int(rng.integers(130, 200))))
    with ThreadPoolExecutor(max_workers=2) as pool:
        audio = list(pool.map(_espeak, jobs))
    return [(f"espeak:{j[1]}:{j[0]}", a) for j, a in zip(jobs, audio, strict=True)]


def excerpt(x: np.ndarray, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """``seconds`` of the announcement played in a loop, from a random point of the loop."""
    n = int(seconds * SAMPLE_RATE)
    looped = np.tile(x, n // x.size + 2)
    start = int(rng.integers(0, x.size))
    return looped[start : start + n]


def channel(x: np.ndarray, codec: str, rng: np.random.Generator, snr_db: float) -> np.ndarray:
    """White line noise at ``snr_db`` (relative to the excerpt's power), then the codec."""
    p = float(np.mean(x**2)) + 1e-12
    noisy = x + rng.standard_normal(x.size).astype(np.float32) * np.sqrt(p / 10 ** (snr_db / 10))
    return apply_codec(np.clip(noisy, -1, 1).astype(np.float32), codec)


def build_library(db: Path, refs: list[tuple[str, np.ndarray]], index_codecs: str,
                  ref_seconds: float) -> tuple[Library, list[int], HashIndex]:
    """Build the bench library from scratch, printing build speed and index size."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    lib = Library(SqliteLibraryStore(db), config=FingerprintConfig())
    sample = refs[:200]
    t = time.perf_counter()
    for _, x in sample:
        lib.fingerprint_looped(x)
    fp_speed = sum(x.size for _, x in sample) / SAMPLE_RATE / (time.perf_counter() - t)
    t = time.perf_counter()
    codecs = [c for c in index_codecs.split(",") if c]
    ids = [lib.add(x, sip_code=480, reason=name[:40], name=name, keep_audio=False,
                   check_similar=False, variants=[apply_codec(x, c) for c in codecs])
           for name, x in refs]
    t_add = time.perf_counter() - t
    lib.close()
    t = time.perf_counter()
    lib = Library(SqliteLibraryStore(db), config=FingerprintConfig())
    index = lib._index("known")
    t_load = time.perf_counter() - t
    postings = index.postings
    print(f"fingerprinting: {fp_speed:.0f}× real time "
          f"({postings / (ref_seconds + len(refs) * 3.0):.0f} hashes/s of audio incl. loop)")
    print(f"store: {len(refs)} adds in {t_add:.1f} s (incl. fingerprinting, one transaction "
          f"each); reopen + index load {t_load:.2f} s; end-to-end build "
          f"{ref_seconds / (t_add + t_load):.0f}× real time")
    print(f"index: {postings} postings, {index.nbytes / 1e6:.1f} MB in memory = "
          f"{index.nbytes / 1e6 / (ref_seconds / 3600):.1f} MB per hour of reference audio; "
          f"file {db.stat().st_size / 1e6:.1f} MB")
    return lib, ids, index


def _dump_row(seconds: float, codec: str, ok: bool, cands: list, n_landmarks: int) -> list:
    """One query's row of the ``--dump`` file (the score calibration's input): length,
    codec, right?, then the best candidate's votes, blocks, evidence and query blocks,
    the query's landmark count and the runner-up's evidence."""
    best = cands[0] if cands else None
    return [seconds, codec, ok, best.count if best else 0, best.blocks if best else 0,
            n_landmarks, best.evidence if best else 0, best.query_blocks if best else 0,
            cands[1].evidence if len(cands) > 1 else 0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=200, help="per codec and query length")
    ap.add_argument("--negatives", type=int, default=300, help="announcements not in library")
    ap.add_argument("--snr", type=float, default=15.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--index-codecs", default="",
                    help="comma-separated codecs whose renderings of each reference are "
                         "indexed too (e.g. opus-8k)")
    ap.add_argument("--reuse-library", action="store_true",
                    help="query the library a previous run built instead of rebuilding it")
    ap.add_argument("--dump", type=Path, help="write per-query counts (for calibration)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    t0 = time.perf_counter()
    ast = asterisk_entries()
    # The last tenth of the Asterisk groups is never indexed (the split does not depend on
    # --negatives, so --reuse-library sees the same library); up to a third of the
    # negatives come from it.
    held_out = len(ast) // 10
    n_neg_ast = min(held_out, args.negatives // 3)
    n_ast = min(len(ast) - held_out, args.entries // 2)
    n_esp = args.entries - n_ast
    n_neg_esp = args.negatives - n_neg_ast
    esp = espeak_entries(n_esp + n_neg_esp)
    refs = ast[:n_ast] + esp[:n_esp]
    negatives = ast[n_ast : n_ast + n_neg_ast] + esp[n_esp:]
    ref_seconds = sum(x.size for _, x in refs) / SAMPLE_RATE
    print(f"audio: {len(refs)} entries ({n_ast} Asterisk groups, {n_esp} espeak-ng), "
          f"{ref_seconds / 3600:.2f} h, mean {ref_seconds / len(refs):.1f} s; "
          f"{len(negatives)} negatives; ready in {time.perf_counter() - t0:.0f} s")

    variant_tag = f"-{args.index_codecs}" if args.index_codecs else ""
    db = CACHE / f"library-{args.entries}{variant_tag}.sqlite"
    if args.reuse_library and db.exists():
        lib = Library(SqliteLibraryStore(db), config=FingerprintConfig())
        ids = [e.id for e in lib.entries()]
        if [e.name for e in lib.entries()] != [name for name, _ in refs]:
            raise SystemExit(f"{db} holds another library; rebuild it (drop --reuse-library)")
        index = lib._index("known")
        print(f"reusing {db} ({index.postings} postings); build not timed")
    else:
        lib, ids, index = build_library(db, refs, args.index_codecs, ref_seconds)

    by_id = dict(zip(ids, range(len(refs)), strict=True))
    dump: dict[str, list] = {"pos": [], "neg": []}
    lookup_ms: list[float] = []
    match_ms: list[float] = []
    for seconds in (3.0, 2.0):
        for codec in CODECS:
            correct = 0
            for _ in range(args.queries):
                k = int(rng.integers(len(refs)))
                q = channel(excerpt(refs[k][1], seconds, rng), codec, rng, args.snr)
                t = time.perf_counter()
                lm = lib.fingerprint(q)
                t1 = time.perf_counter()
                cands = index.query(lm, top=2)
                t2 = time.perf_counter()
                if seconds == 3.0:
                    lookup_ms.append((t2 - t1) * 1000)
                    match_ms.append((t2 - t) * 1000)
                ok = bool(cands) and by_id[cands[0].entry_id] == k
                s = score(*cands[:2]) if cands else 0.0
                correct += ok and s >= lib.config.threshold
                dump["pos"].append(_dump_row(seconds, codec, ok, cands, len(lm)))
            print(f"top-1 {seconds:.0f} s {codec:>8} + {args.snr:.0f} dB noise: "
                  f"{100 * correct / args.queries:6.2f}%  ({correct}/{args.queries})")
    for seconds in (3.0, 2.0):
        false = 0
        for i, (_, x) in enumerate(negatives):
            codec = CODECS[i % len(CODECS)]
            q = channel(excerpt(x, seconds, rng), codec, rng, args.snr)
            lm = lib.fingerprint(q)
            cands = index.query(lm, top=2)
            s = score(*cands[:2]) if cands else 0.0
            false += s >= lib.config.threshold
            dump["neg"].append(_dump_row(seconds, codec, False, cands, len(lm)))
        print(f"false matches {seconds:.0f} s (not in library, all codecs): "
              f"{100 * false / len(negatives):.2f}%  ({false}/{len(negatives)})")
    lk = np.array(lookup_ms)
    mt = np.array(match_ms)
    print(f"lookup of a 3-s query vs {len(refs)} entries: median {np.median(lk):.2f} ms, "
          f"p95 {np.percentile(lk, 95):.2f} ms; with fingerprinting the query: median "
          f"{np.median(mt):.2f} ms, p95 {np.percentile(mt, 95):.2f} ms")
    if args.dump:
        args.dump.write_text(json.dumps(dump))
    lib.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
