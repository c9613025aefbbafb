"""Settings of the tone detectors (the ``tones`` section of the agent's config)."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.errors import ConfigError


@dataclass(frozen=True)
class ToneConfig:
    """Thresholds of :class:`agent.tones.detect.ToneDetector`; the defaults are the tested ones.

    Attributes
    ----------
    countries : list of str
        Tone-plan zones to match cadences against; empty means all of them.
    min_level_dbfs : float
        Quietest tone considered (AES17 dBFS; -35 dBm0 is -38.1 dBFS).
    frame_purity : float
        Share of a 32-ms frame's energy in its two strongest spectral peaks for the frame
        to count as tonal; level-independent.
    match_purity : float
        Share of an "on" part's energy at the frequencies of a plan's tone for it to match.
    off_drop_db : float
        How far below the tone's level an "off" part must fall.
    freq_tol_pct : float
        Frequency tolerance of plan tones, percent (generators drift by a percent or two;
        the long FFT's main lobe is added on top).
    cadence_tol_pct, cadence_tol_ms : float
        A step of nominal length d matches durations within ``d * (1 ± pct/100) ± ms``.
    ringback_off_s : float
        Silence after a ringback burst that counts as its "off" part without waiting for
        the whole (often 3-4 s) pause.
    patience_s : float
        How long a satisfied cadence waits for a rival of another kind to be ruled out.
    sit : bool
        Detect Special Information Tones.
    fax : bool
        Detect fax calling (CNG) and answer (CED) tones.
    ced_min_s : float
        Length of a 2100 Hz tone reported as fax CED (V.25 plays 2.6-4 s; we answer early).
    """

    countries: list[str] = field(default_factory=list)
    min_level_dbfs: float = -45.0
    frame_purity: float = 0.75
    match_purity: float = 0.8
    off_drop_db: float = 10.0
    freq_tol_pct: float = 2.0
    cadence_tol_pct: float = 15.0
    cadence_tol_ms: float = 40.0
    ringback_off_s: float = 0.8
    patience_s: float = 1.0
    sit: bool = True
    fax: bool = True
    ced_min_s: float = 1.0

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first setting out of range."""
        checks = [
            ("min_level_dbfs", -90.0 <= self.min_level_dbfs <= 0.0, "between -90 and 0"),
            ("frame_purity", 0.0 < self.frame_purity < 1.0, "between 0 and 1"),
            ("match_purity", 0.0 < self.match_purity < 1.0, "between 0 and 1"),
            ("off_drop_db", 3.0 <= self.off_drop_db <= 60.0, "between 3 and 60"),
            ("freq_tol_pct", 0.1 <= self.freq_tol_pct <= 10.0, "between 0.1 and 10"),
            ("cadence_tol_pct", 0.0 <= self.cadence_tol_pct <= 50.0, "between 0 and 50"),
            ("cadence_tol_ms", 0.0 <= self.cadence_tol_ms <= 200.0, "between 0 and 200"),
            ("ringback_off_s", 0.1 <= self.ringback_off_s <= 10.0, "between 0.1 and 10"),
            ("patience_s", 0.0 <= self.patience_s <= 5.0, "between 0 and 5"),
            ("ced_min_s", 0.2 <= self.ced_min_s <= 10.0, "between 0.2 and 10"),
        ]
        for key, ok, what in checks:
            if not ok:
                raise ConfigError(f"{key}: must be {what}, got {getattr(self, key)!r}")
        for cc in self.countries:
            if not cc or not isinstance(cc, str):
                raise ConfigError(f"countries: bad country code {cc!r}")
