"""The corpus builder's configuration section (``config/corpus.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.errors import ConfigError

CODEC_NAMES = ("ulaw", "alaw", "gsm", "amr-nb", "opus-8k", "opus-16k")


def _default_codec_weights() -> dict[str, float]:
    # G.711 dominates real carrier interconnects; mobile codecs arrive transcoded.
    return {"ulaw": 3.0, "alaw": 3.0, "gsm": 1.0, "amr-nb": 2.0, "opus-8k": 1.0, "opus-16k": 1.0}


def _default_prompt_exclude() -> list[str]:
    # Prompts that hold no speech: silence padding, a monkey recording, beeps and
    # two-tone chimes. Labelled announcement they teach the student that quiet and tones
    # are speech.
    return ["silence/*", "tt-monkeys.wav", "beep.wav", "beeperr.wav",
            "ascending-2tone.wav", "descending-2tone.wav"]


def _range_ok(pair: list[float], name: str, *, low: float, high: float) -> None:
    if len(pair) != 2 or not (low <= pair[0] <= pair[1] <= high):
        raise ConfigError(f"{name}: expected [min, max] with {low} <= min <= max <= {high}")


@dataclass(frozen=True)
class SourceDirs:
    """Where the Debian packages put the real audio the corpus is cut from."""

    asterisk_sounds: str = "/usr/share/asterisk/sounds"
    asterisk_moh: str = "/usr/share/asterisk/moh"
    wesnoth_music: str = "/usr/share/games/wesnoth/1.16/data/core/music"
    midi_music: str = "/usr/share/planetblupi/music"
    """MIDI files rendered with FluidSynth; an empty string leaves MIDI music out."""
    soundfont: str = "/usr/share/sounds/sf2/FluidR3_GM.sf2"


@dataclass(frozen=True)
class MusicSource:
    """One more Debian package of music: where its files are and which ones to take.

    Files whose name ends in ``.mid`` are rendered with FluidSynth; the rest are decoded.
    """

    package: str
    dir: str
    pattern: str = "*.ogg"

    def validate(self) -> None:
        if not self.package or not self.dir or not self.pattern:
            raise ConfigError("package, dir and pattern must not be empty")


def _default_more_music() -> list[MusicSource]:
    # Styles the base set lacks (rock and metal, ragtime, jazz and pop MIDI), so that a
    # held-out track is less often the first of its kind the student hears.
    return [
        MusicSource("openttd-openmsx", "/usr/share/games/openttd/baseset/openmsx", "*.mid"),
        MusicSource("fretsonfire-songs-muldjord",
                    "/usr/share/games/fretsonfire/data/songs/muldjord", "song.ogg"),
        MusicSource("fretsonfire-songs-sectoid",
                    "/usr/share/games/fretsonfire/data/songs/sectoid", "song.ogg"),
        MusicSource("asc-music", "/usr/share/games/asc/music", "*.mp3"),
    ]


@dataclass(frozen=True)
class CorpusConfig:
    """How much audio to build, and how the telephone channel degrades it.

    Ranges are ``[min, max]`` lists; levels are dB relative to an RMS of 1.0.
    """

    seed: int = 20261121
    seconds_per_class: float = 2400.0
    segment_s: list[float] = field(default_factory=lambda: [4.0, 15.0])
    prompt_exclude: list[str] = field(default_factory=_default_prompt_exclude)
    """Prompts left out of announcements: glob patterns on the path under a voice's
    directory (``silence/*`` matches ``silence/1.wav``)."""
    pause_s: list[float] = field(default_factory=lambda: [0.15, 0.7])
    pause_noise_dbfs: list[float] = field(default_factory=lambda: [-75.0, -55.0])
    music_min_dbfs: float = -45.0
    midi_seconds: float = 150.0
    level_dbfs: list[float] = field(default_factory=lambda: [-35.0, -10.0])
    noise_floor_prob: float = 0.7
    noise_floor_dbfs: list[float] = field(default_factory=lambda: [-80.0, -60.0])
    silence_noise_dbfs: list[float] = field(default_factory=lambda: [-80.0, -45.0])
    codec_weights: dict[str, float] = field(default_factory=_default_codec_weights)
    loss_prob: float = 0.3
    loss_rate: list[float] = field(default_factory=lambda: [0.005, 0.05])
    sources: SourceDirs = field(default_factory=SourceDirs)
    more_music: list[MusicSource] = field(default_factory=_default_more_music)
    """Music cut after the base music class (files numbered on from it), so a corpus
    built without it keeps every file and only grows."""
    more_music_seconds: float = 1800.0

    def class_seconds(self, label: str) -> float:
        """Seconds of audio the build makes for ``label`` (music gets ``more_music`` too)."""
        extra = self.more_music_seconds if label == "music" and self.more_music else 0.0
        return self.seconds_per_class + extra

    def validate(self) -> None:
        """Reject ranges that are empty, reversed or outside what makes sense."""
        if self.seconds_per_class <= 0:
            raise ConfigError("seconds_per_class: must be > 0")
        _range_ok(self.segment_s, "segment_s", low=1.0, high=600.0)
        _range_ok(self.pause_s, "pause_s", low=0.0, high=10.0)
        _range_ok(self.pause_noise_dbfs, "pause_noise_dbfs", low=-120.0, high=-20.0)
        _range_ok(self.level_dbfs, "level_dbfs", low=-60.0, high=0.0)
        _range_ok(self.noise_floor_dbfs, "noise_floor_dbfs", low=-120.0, high=-20.0)
        _range_ok(self.silence_noise_dbfs, "silence_noise_dbfs", low=-120.0, high=-20.0)
        _range_ok(self.loss_rate, "loss_rate", low=0.0, high=0.5)
        if not all(isinstance(p, str) and p.strip() for p in self.prompt_exclude):
            raise ConfigError("prompt_exclude: expected a list of non-empty glob patterns")
        if self.more_music_seconds < 0:
            raise ConfigError("more_music_seconds: must be >= 0")
        if self.midi_seconds <= 0:
            raise ConfigError("midi_seconds: must be > 0")
        for name in ("noise_floor_prob", "loss_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name}: must be between 0 and 1")
        unknown = sorted(set(self.codec_weights) - set(CODEC_NAMES))
        if unknown:
            raise ConfigError(f"codec_weights.{unknown[0]}: unknown codec (known: "
                              f"{', '.join(CODEC_NAMES)})")
        if any(w < 0 for w in self.codec_weights.values()) or not any(
            w > 0 for w in self.codec_weights.values()
        ):
            raise ConfigError("codec_weights: weights must be >= 0 and at least one > 0")
