"""Clean, source-truth clips for each class, cut from real audio in Debian packages.

Each ``*_clips`` function is a deterministic generator: given the config and a seeded
generator it yields the same :class:`Clip` sequence every time, numbered from 0, until
its class's seconds (:meth:`CorpusConfig.class_seconds`) are reached. A resumed build
replays it and skips the ids it has.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from agent.audio import SAMPLE_RATE
from agent.audio.io import load_audio
from agent.corpus.channel import rms_dbfs
from agent.corpus.clip import Clip, draw, package_files
from agent.corpus.clip import seconds as _seconds
from agent.corpus.config import CorpusConfig
from agent.corpus.manifest import SourceRef
from agent.corpus.speech import announcement_clips
from agent.errors import UserError

MOH_PACKAGE = "asterisk-moh-opsound-wav"
WESNOTH_PACKAGE = "wesnoth-music"
MIDI_PACKAGE = "planetblupi-music-midi"
SOUNDFONT_PACKAGE = "fluid-soundfont-gm"
_MIDI_RATE = 16000
SYNTH_PACKAGE = "synthetic"
TONE_PACKAGE = "agent.tones"

SILENCE_KINDS = ("digital", "comfort", "white", "pink", "brown", "hum", "clicks")


def music_files(cfg: CorpusConfig) -> dict[str, list[Path]]:
    """Music files per package; raises :class:`UserError` naming a missing package."""
    files = {
        MOH_PACKAGE: package_files(Path(cfg.sources.asterisk_moh), "*.wav", MOH_PACKAGE),
        WESNOTH_PACKAGE: package_files(Path(cfg.sources.wesnoth_music), "*.ogg", WESNOTH_PACKAGE),
    }
    if cfg.sources.midi_music:
        files[MIDI_PACKAGE] = package_files(Path(cfg.sources.midi_music), "*.mid", MIDI_PACKAGE)
        if not Path(cfg.sources.soundfont).is_file():
            raise UserError(f"{cfg.sources.soundfont}: missing; install the Debian package "
                            f"{SOUNDFONT_PACKAGE} (apt-get install {SOUNDFONT_PACKAGE})")
    return files


def more_music_files(cfg: CorpusConfig) -> dict[str, list[Path]]:
    """Files of each ``more_music`` package; raises :class:`UserError` naming a missing one."""
    files = {m.package: package_files(Path(m.dir), m.pattern, m.package) for m in cfg.more_music}
    midi = any(p.suffix.lower() in (".mid", ".midi") for fs in files.values() for p in fs)
    if midi and not Path(cfg.sources.soundfont).is_file():
        raise UserError(f"{cfg.sources.soundfont}: missing; install the Debian package "
                        f"{SOUNDFONT_PACKAGE} (apt-get install {SOUNDFONT_PACKAGE})")
    return files


def render_midi(path: Path, *, soundfont: Path, seconds: float) -> np.ndarray:
    """The first ``seconds`` of a MIDI file rendered by FluidSynth, mono float32 at 8 kHz.

    FluidSynth streams raw stereo floats; reading stops after ``seconds`` because game
    MIDI often loops for many minutes.
    """
    fluidsynth = shutil.which("fluidsynth")
    if fluidsynth is None:
        raise UserError("fluidsynth is not installed (apt-get install fluidsynth)")
    want = int(seconds * _MIDI_RATE) * 2 * 4
    with subprocess.Popen(
        [fluidsynth, "-ni", "-q", "-T", "raw", "-O", "float", "-r", str(_MIDI_RATE), "-F", "-",
         str(soundfont), str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    ) as proc:
        assert proc.stdout is not None
        chunks, got = [], 0
        while got < want:
            chunk = proc.stdout.read(min(1 << 20, want - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        proc.kill()
    raw = b"".join(chunks)
    stereo = np.frombuffer(raw[: len(raw) // 8 * 8], dtype=np.float32).reshape(-1, 2)
    if stereo.size == 0:
        raise UserError(f"{path}: fluidsynth rendered no audio")
    return soxr.resample(stereo.mean(axis=1), _MIDI_RATE, SAMPLE_RATE).astype(np.float32)


def _load_music(cfg: CorpusConfig, path: Path) -> np.ndarray:
    if path.suffix.lower() in (".mid", ".midi"):
        return render_midi(path, soundfont=Path(cfg.sources.soundfont), seconds=cfg.midi_seconds)
    return load_audio(path)


@dataclass(frozen=True)
class _Segment:
    package: str
    path: Path
    start: int
    length: int


def _music_segments(
    cfg: CorpusConfig, rng: np.random.Generator, files: dict[str, list[Path]]
) -> dict[str, list[_Segment]]:
    """Cut every file into consecutive segments of random length; drop near-silent ones."""
    out: dict[str, list[_Segment]] = {}
    lo, hi = (int(s * SAMPLE_RATE) for s in cfg.segment_s)
    for pkg in sorted(files):
        segs = []
        for path in files[pkg]:
            audio = _load_music(cfg, path)
            start = 0
            while start + lo <= audio.size:
                length = min(int(rng.integers(lo, hi + 1)), audio.size - start)
                seg = audio[start:start + length]
                # A fade-out or a quiet interlude is not "music" to a listener on the line.
                sec = seg[: seg.size // SAMPLE_RATE * SAMPLE_RATE].reshape(-1, SAMPLE_RATE)
                quiet = np.mean([rms_dbfs(s) < cfg.music_min_dbfs for s in sec])
                if rms_dbfs(seg) >= cfg.music_min_dbfs and quiet <= 0.25:
                    segs.append(_Segment(pkg, path, start, length))
                start += length
        out[pkg] = segs
    return out


def music_clips(cfg: CorpusConfig, rng: np.random.Generator) -> Iterator[Clip]:
    """Segments of music on hold, game music and rendered MIDI, taken in turn per package;
    then, numbered on, segments of the ``more_music`` packages.

    Segments of the same file share a ``group``. The base set is cut exactly as before
    ``more_music`` existed (same draws, same ids), so adding it only appends files.
    """
    base = list(_choose_segments(cfg, rng, music_files(cfg), cfg.seconds_per_class))
    yield from _music_from(cfg, base, first=0, group=lambda seg: f"music:{seg.path.name}",
                           vocals=set())
    if cfg.more_music and cfg.more_music_seconds > 0:
        more = list(_choose_segments(cfg, rng, more_music_files(cfg), cfg.more_music_seconds))
        roots = {m.package: Path(m.dir) for m in cfg.more_music}
        # Names repeat across packages (every Frets on Fire song is song.ogg): the group
        # is the package and the path under its directory.
        yield from _music_from(
            cfg, more, first=len(base),
            group=lambda seg: f"music:{seg.package}/{seg.path.relative_to(roots[seg.package])}",
            vocals={m.package for m in cfg.more_music if m.vocals})


def _choose_segments(cfg: CorpusConfig, rng: np.random.Generator,
                     files: dict[str, list[Path]], seconds: float) -> Iterator[_Segment]:
    """Screened segments drawn in turn per package until ``seconds`` are reached."""
    pools = _music_segments(cfg, rng, files)
    for pkg in pools:
        pools[pkg] = [pools[pkg][i] for i in rng.permutation(len(pools[pkg]))]
    total = 0.0
    turn = 0
    packages = sorted(pools)
    while total < seconds and any(pools.values()):
        pkg = packages[turn % len(packages)]
        turn += 1
        if not pools[pkg]:
            continue
        seg = pools[pkg].pop()
        yield seg
        total += seg.length / SAMPLE_RATE


def _music_from(cfg: CorpusConfig, chosen: list[_Segment], *, first: int,
                group: Callable[[_Segment], str], vocals: set[str]) -> Iterator[Clip]:
    """Clips of the chosen segments, numbered from ``first``, each source file read once;
    the voice of a music clip is its package (the source family an evaluation holds out),
    flagged ``vocals`` when the package is configured as songs with singing."""
    by_file: dict[Path, list[tuple[int, _Segment]]] = {}
    for i, seg in enumerate(chosen, start=first):
        by_file.setdefault(seg.path, []).append((i, seg))
    for path in sorted(by_file):
        audio = _load_music(cfg, path)
        mix = ({"synth": "fluidsynth", "soundfont": cfg.sources.soundfont,
                "soundfont_package": SOUNDFONT_PACKAGE}
               if path.suffix.lower() in (".mid", ".midi") else {})
        for i, seg in by_file[path]:
            samples = audio[seg.start:seg.start + seg.length].astype(np.float32)
            ref = SourceRef(seg.package, str(path), _seconds(seg.start), _seconds(seg.length))
            yield Clip(i, "music", group(seg), samples, [ref], voice=seg.package,
                       engine="music", mix=dict(mix), vocals=seg.package in vocals)


def ringback_clips(cfg: CorpusConfig, rng: np.random.Generator) -> Iterator[Clip]:
    """Ringback of every country and variant in the tone-plan table, from a random phase.

    Countries and variants take turns (in a shuffled order) until the class is full;
    ``group`` is the country, so a grouped split tests on cadences it never saw.
    """
    from agent.tones.plan import load_tone_plans
    from agent.tones.synth import render

    plans = load_tone_plans()
    variants = [(cc, i, spec) for cc in sorted(plans) for i, spec in enumerate(plans[cc].ringback)]
    if not variants:
        raise UserError("tone plans: no ringback tones defined")
    order = [variants[i] for i in rng.permutation(len(variants))]
    total = 0.0
    index = 0
    while total < cfg.seconds_per_class:
        cc, variant, spec = order[index % len(order)]
        duration = draw(rng, cfg.segment_s)
        phase = float(rng.uniform(0.0, spec.period_ms / 1000.0))
        samples = render(spec, duration_s=duration, sr=SAMPLE_RATE, phase_s=phase)
        ref = SourceRef(TONE_PACKAGE, f"{cc}/ringback/{variant}", round(phase, 4),
                        _seconds(samples.size))
        yield Clip(index, "ringback", f"ringback:{cc}", samples, [ref],
                   voice=f"{TONE_PACKAGE}/{cc}", engine="tone",
                   mix={"country": cc, "variant": variant, "tone_source": spec.source,
                        "phase_s": round(phase, 4)})
        total += samples.size / SAMPLE_RATE
        index += 1


def _colored_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    f[0] = f[1] if n > 1 else 1.0
    x = np.fft.irfft(spec / f ** (exponent / 2.0), n)
    return (x / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)


def _silence_kind(
    kind: str, rng: np.random.Generator, n: int, dbfs: float
) -> tuple[np.ndarray, dict[str, Any]]:
    gain = np.float32(10.0 ** (dbfs / 20.0))
    t = np.arange(n) / SAMPLE_RATE
    if kind == "digital":
        return np.zeros(n, dtype=np.float32), {}
    if kind == "comfort":
        # RFC 3389 comfort noise is low-order spectrally shaped noise, updated per SID frame.
        return _colored_noise(rng, n, float(rng.uniform(0.3, 1.5))) * gain, {}
    if kind in ("white", "pink", "brown"):
        return _colored_noise(rng, n, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind]) * gain, {}
    if kind == "hum":
        mains = float(rng.choice([50.0, 60.0]))
        x = np.zeros(n)
        for h in range(1, 8):
            x += rng.uniform(0.1, 1.0) / h * np.sin(2 * np.pi * mains * h * t + rng.uniform(0, 6.3))
        x /= np.sqrt(np.mean(x**2)) + 1e-12
        floor = _colored_noise(rng, n, 0.0) * 0.1
        return ((x + floor) * gain).astype(np.float32), {"mains_hz": mains}
    # clicks: impulses over a low floor, a few per second, as from a dirty line or relay.
    x = _colored_noise(rng, n, 1.0) * gain
    count = int(rng.poisson(rng.uniform(0.3, 4.0) * n / SAMPLE_RATE))
    for pos in rng.integers(0, max(1, n - 40), size=count):
        width = int(rng.integers(2, 40))
        amp = 10.0 ** (rng.uniform(-40.0, -15.0) / 20.0) * rng.choice([-1.0, 1.0])
        x[pos:pos + width] += np.float32(amp) * np.exp(-np.arange(width) / (width / 4.0))
    return x.astype(np.float32), {"clicks": count}


def silence_clips(cfg: CorpusConfig, rng: np.random.Generator) -> Iterator[Clip]:
    """Line silence: digital zeros, comfort noise, white/pink/brown noise, mains hum, clicks.

    Levels come from ``silence_noise_dbfs`` and survive the channel (``keep_level``).
    Nothing is shared between clips, so each is its own group.
    """
    total = 0.0
    index = 0
    while total < cfg.seconds_per_class:
        kind = SILENCE_KINDS[index % len(SILENCE_KINDS)]
        n = int(draw(rng, cfg.segment_s) * SAMPLE_RATE)
        dbfs = draw(rng, cfg.silence_noise_dbfs)
        samples, extra = _silence_kind(kind, rng, n, dbfs)
        ref = SourceRef(SYNTH_PACKAGE, f"silence/{kind}", 0.0, _seconds(n))
        mix = {"kind": kind, **({} if kind == "digital" else {"level_dbfs": round(dbfs, 2)}),
               **extra}
        yield Clip(index, "silence", f"silence-{index:05d}", samples, [ref],
                   voice=f"{SYNTH_PACKAGE}/{kind}", engine="synthetic", mix=mix,
                   keep_level=True)
        total += n / SAMPLE_RATE
        index += 1


GENERATORS: dict[str, Callable[[CorpusConfig, np.random.Generator], Iterator[Clip]]] = {
    "announcement": announcement_clips,
    "ringback": ringback_clips,
    "music": music_clips,
    "silence": silence_clips,
}
