"""The corpus builder's configuration section (``config/corpus.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.corpus.festival import FESTIVAL_VOICES
from agent.errors import ConfigError

CODEC_NAMES = ("ulaw", "alaw", "gsm", "amr-nb", "opus-8k", "opus-16k")


def _default_codec_weights() -> dict[str, float]:
    # G.711 dominates real carrier interconnects; mobile codecs arrive transcoded.
    return {"ulaw": 3.0, "alaw": 3.0, "gsm": 1.0, "amr-nb": 2.0, "opus-8k": 1.0, "opus-16k": 1.0}


def _default_prompt_exclude() -> list[str]:
    # Prompts that hold no speech: silence padding, a monkey recording, beeps, two-tone
    # chimes and the conference join/leave chimes (YAMNet: "Dial tone", "Telephone"; VAD
    # 0). Labelled announcement they teach the student that quiet and tones are speech.
    # Any extension: some voices ship GSM.
    return ["silence/*", "tt-monkeys.*", "beep.*", "beeperr.*", "ascending-2tone.*",
            "descending-2tone.*", "confbridge-join.*", "confbridge-leave.*"]


@dataclass(frozen=True)
class HumanVoice:
    """Recorded prompts of one speaker in one Debian package.

    ``dir`` is under ``sources.asterisk_sounds`` unless absolute; ``speaker`` names the
    voice in the manifest (``<package>/<speaker>``).
    """

    package: str
    dir: str
    speaker: str
    pattern: str = "*.wav"

    @property
    def voice(self) -> str:
        return f"{self.package}/{self.speaker}"

    def validate(self) -> None:
        if not all((self.package, self.dir, self.speaker, self.pattern)):
            raise ConfigError("package, dir, speaker and pattern must not be empty")


def _default_human_voices() -> list[HumanVoice]:
    # Speaker names are the packages' directory names where they have one; the Colombian
    # and French prompts install into bare es/ and fr/, so they are named after the
    # speaker their copyright file credits.
    return [
        HumanVoice("asterisk-core-sounds-en-wav", "en_US_f_Allison", "en_US_f_Allison"),
        HumanVoice("asterisk-core-sounds-es-wav", "es_MX_f_Allison", "es_MX_f_Allison"),
        HumanVoice("asterisk-core-sounds-fr-wav", "fr_CA_f_June", "fr_CA_f_June"),
        HumanVoice("asterisk-core-sounds-it-wav", "it_IT_m_Carlo", "it_IT_m_Carlo"),
        HumanVoice("asterisk-core-sounds-ru-wav", "ru_RU_f_IvrvoiceRU", "ru_RU_f_IvrvoiceRU"),
        HumanVoice("asterisk-prompt-it-menardi-wav", "it_IT_f_Menardi", "it_IT_f_Menardi"),
        HumanVoice("asterisk-prompt-es-co", "es", "es_CO_f_July", "*.gsm"),
        HumanVoice("asterisk-prompt-fr-armelle", "fr", "fr_FR_f_Armelle", "*.gsm"),
    ]


def _default_tts_voices() -> list[str]:
    return sorted(FESTIVAL_VOICES)


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
    vocals: bool = False
    """Songs with singing: their files are flagged ``vocals`` in the manifest, so that
    music recall on caller tunes with a voice can be reported on its own."""

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
        # The one song with singing found in Debian's game and demo music (YAMNet: Choir or
        # Chant tops 2 of 3 patches; every other candidate stayed under 2%): a cappella, so
        # a voice without accompaniment is still music to the student.
        MusicSource("performous", "/usr/share/games/performous/themes/default",
                    "practice.ogg", vocals=True),
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
    human_voices: list[HumanVoice] = field(default_factory=_default_human_voices)
    tts_voices: list[str] = field(default_factory=_default_tts_voices)
    """Festival voices (names in :data:`agent.corpus.festival.FESTIVAL_VOICES`)."""
    holdout_voices: list[str] = field(default_factory=lambda: ["festvox-kdlpc16k"])
    """Voice families (packages) or voices kept out of the corpus for evaluation."""
    voice_min_s: float = 180.0
    """Announcement seconds every voice gets at least; the class grows to fit."""
    tts_stretch: list[float] = field(default_factory=lambda: [0.85, 1.2])
    tts_pitch_cents: list[float] = field(default_factory=lambda: [-250.0, 250.0])

    def speech_voices(self) -> list[str]:
        """Voices (``<package>/<speaker>``) that speak the announcements, hold-outs removed."""
        voices = [v.voice for v in self.human_voices]
        voices += [FESTIVAL_VOICES[name].voice for name in self.tts_voices]
        return [v for v in voices if not self.is_held_out(v)]

    def is_held_out(self, voice: str) -> bool:
        """Whether ``voice`` or its family (the package) is in ``holdout_voices``."""
        return voice in self.holdout_voices or voice.split("/", 1)[0] in self.holdout_voices

    def voice_seconds(self) -> float:
        """Announcement seconds per voice: an equal share, never below ``voice_min_s``."""
        voices = max(1, len(self.speech_voices()))
        return max(self.voice_min_s, self.seconds_per_class / voices)

    def class_seconds(self, label: str) -> float:
        """Seconds of audio the build makes for ``label`` (music gets ``more_music`` too;
        announcements an equal share per voice)."""
        if label == "announcement":
            return self.voice_seconds() * max(1, len(self.speech_voices()))
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
        self._validate_voices()
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

    def _validate_voices(self) -> None:
        unknown = [n for n in self.tts_voices if n not in FESTIVAL_VOICES]
        if unknown:
            raise ConfigError(f"tts_voices: unknown Festival voice {unknown[0]!r} (known: "
                              f"{', '.join(sorted(FESTIVAL_VOICES))})")
        everyone = [v.voice for v in self.human_voices]
        everyone += [FESTIVAL_VOICES[n].voice for n in self.tts_voices]
        for held in self.holdout_voices:
            if not any(v == held or v.split("/", 1)[0] == held for v in everyone):
                raise ConfigError(f"holdout_voices: {held!r} names no configured voice")
        if len(set(everyone)) != len(everyone):
            raise ConfigError("human_voices/tts_voices: a voice is listed twice")
        if not self.speech_voices():
            raise ConfigError("holdout_voices: leaves no voice to speak the announcements")
        if self.voice_min_s < 0:
            raise ConfigError("voice_min_s: must be >= 0")
        _range_ok(self.tts_stretch, "tts_stretch", low=0.5, high=2.0)
        _range_ok(self.tts_pitch_cents, "tts_pitch_cents", low=-1200.0, high=1200.0)
