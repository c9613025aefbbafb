"""Tone plans: the per-country cadences of ringback, busy, congestion and SIT, parsed from text.

The notation (shared by Asterisk's ``indications.conf`` and spandsp's ``global-tones.xml``
as transcribed in ``config/tone_plans.yaml``) is a comma-separated list of steps:

- ``f/ms``: frequency ``f`` Hz for ``ms`` milliseconds; ``0/ms`` is silence;
- ``a+b/ms``: the sum of two tones; ``a*b/ms``: tone ``a`` amplitude-modulated by ``b``;
- ``a || b/ms``: alternatives; a text with alternatives yields one spec per alternative,
  taking the i-th alternative of every step (a step without alternatives is shared);
- ``[...]``: the enclosed steps repeat. A text that is one bracket group repeats as a
  whole; a bracket group inside a longer text (spandsp's ``[[a,b],c,d]``) is played once;
- a step without ``/ms`` lasts forever (only as the last step).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import ConfigError

KINDS: tuple[str, ...] = ("ringback", "busy", "congestion", "sit")
_EXTRA_FIELDS: tuple[str, ...] = ("info",)
_MAX_HZ = 4000.0

_NUM = r"\d+(?:\.\d+)?"
_FREQ_RE = re.compile(rf"^(?:(?P<zero>0+)|(?P<a>{_NUM})(?:(?P<op>[+*])(?P<b>{_NUM}))?)$")


@dataclass(frozen=True, slots=True)
class ToneStep:
    """One step of a cadence.

    ``freqs`` are the summed tone frequencies in Hz (empty: silence); ``am_hz`` is the
    modulating frequency of an ``a*b`` step (``freqs == (a,)``), else None; ``ms`` is the
    duration, 0 meaning "forever" (the last step of a non-repeating tone).
    """

    freqs: tuple[float, ...]
    am_hz: float | None
    ms: int

    @property
    def is_tone(self) -> bool:
        return bool(self.freqs)


@dataclass(frozen=True, slots=True)
class ToneSpec:
    """One variant of a tone: its steps, whether they repeat, and where it came from."""

    steps: tuple[ToneStep, ...]
    source: str
    repeat: bool = True

    @property
    def period_ms(self) -> int:
        return sum(s.ms for s in self.steps)

    @property
    def has_cadence(self) -> bool:
        """True when the tone alternates on and off parts of finite length."""
        return (
            any(s.is_tone for s in self.steps)
            and any(not s.is_tone for s in self.steps)
            and all(s.ms > 0 for s in self.steps)
        )


@dataclass(frozen=True, slots=True)
class CountryPlan:
    """The tones of one country (zone); each field holds every variant known."""

    cc: str
    name: str
    ringback: tuple[ToneSpec, ...] = ()
    busy: tuple[ToneSpec, ...] = ()
    congestion: tuple[ToneSpec, ...] = ()
    sit: tuple[ToneSpec, ...] = ()
    info: tuple[ToneSpec, ...] = ()

    def specs(self, kind: str) -> tuple[ToneSpec, ...]:
        """The variants of tone ``kind`` (one of :data:`KINDS` or ``info``)."""
        return tuple(getattr(self, kind))


def _parse_freqs(text: str) -> tuple[tuple[float, ...], float | None]:
    m = _FREQ_RE.match(text)
    if m is None:
        raise ValueError(f"bad frequency {text!r}")
    if m.group("zero"):
        return (), None
    a = float(m.group("a"))
    if not 0.0 < a < _MAX_HZ:
        raise ValueError(f"frequency {a:g} Hz out of range")
    op, b_text = m.group("op"), m.group("b")
    if op is None:
        return (a,), None
    b = float(b_text)
    if not 0.0 < b < _MAX_HZ:
        raise ValueError(f"frequency {b:g} Hz out of range")
    if op == "+":
        return (a, b), None
    if b >= a:
        raise ValueError(f"modulation {b:g} Hz is not below its carrier {a:g} Hz")
    return (a,), b


def _parse_step(text: str) -> list[ToneStep]:
    """All alternatives of one step."""
    body = text.strip()
    if not body:
        raise ValueError("empty step")
    if "/" in body:
        freq_part, ms_part = body.rsplit("/", 1)
        try:
            ms_val = float(ms_part.strip())
        except ValueError:
            raise ValueError(f"bad duration {ms_part.strip()!r} in {body!r}") from None
        if ms_val <= 0:
            raise ValueError(f"duration must be positive in {body!r}")
        ms = int(round(ms_val))
    else:
        freq_part, ms = body, 0
    alts = []
    for alt in freq_part.split("||"):
        freqs, am = _parse_freqs(alt.strip())
        alts.append(ToneStep(freqs=freqs, am_hz=am, ms=ms))
    return alts


def _tokens(text: str) -> list[tuple[str, int]]:
    """Split into (step text, bracket depth) pairs, checking that brackets balance."""
    out: list[tuple[str, int]] = []
    depth, cur = 0, ""
    for ch in text:
        if ch == "[":
            if cur.strip():
                raise ValueError(f"'[' inside step {cur.strip()!r}")
            depth += 1
        elif ch == "]":
            if depth == 0:
                raise ValueError("unbalanced ']'")
            if cur.strip():
                out.append((cur, depth))
                cur = ""
            depth -= 1
        elif ch == ",":
            if cur.strip():
                out.append((cur, depth))
            elif not out or out[-1][1] <= depth:
                raise ValueError("empty step")
            cur = ""
        else:
            cur += ch
    if depth:
        raise ValueError("unbalanced '['")
    if cur.strip():
        out.append((cur, depth))
    if not out:
        raise ValueError("no steps")
    return out


def parse_tone(text: str, *, source: str) -> tuple[ToneSpec, ...]:
    """Parse one tone in the plan notation into its variants.

    Parameters
    ----------
    text : str
        E.g. ``"[440+480/2000,0/4000]"``, ``"950/330,1400/330,1800/330,0/1000"``,
        ``"[425 || 450/1000,0/4000]"``, ``"[400*25/400,0/200,400*25/400,0/2000]"``.
    source : str
        Where the text comes from (``asterisk``, ``spandsp``); copied into each spec.

    Returns
    -------
    tuple of ToneSpec
        One spec per alternative, duplicates removed.

    Raises
    ------
    ValueError
        Naming what is wrong with the text (the caller adds country and field).

    Examples
    --------
    >>> [s.steps[0].freqs for s in parse_tone("[425 || 450/1000,0/4000]", source="x")]
    [(425.0,), (450.0,)]
    """
    stripped = text.strip()
    tokens = _tokens(stripped)
    # A single top-level bracket group repeats; anything else plays once.
    repeat = stripped.startswith("[") and _matching_close(stripped) == len(stripped) - 1
    steps_alts = [_parse_step(tok) for tok, _ in tokens]
    n = max(len(a) for a in steps_alts)
    for tok_alts, (tok, _) in zip(steps_alts, tokens, strict=True):
        if len(tok_alts) not in (1, n):
            raise ValueError(f"step {tok.strip()!r} has {len(tok_alts)} alternatives, others {n}")
    for i, (tok, _) in enumerate(tokens[:-1]):
        if steps_alts[i][0].ms == 0:
            raise ValueError(f"step {tok.strip()!r} has no duration but is not the last")
    specs: list[ToneSpec] = []
    for k in range(n):
        steps = tuple(a[k] if len(a) > 1 else a[0] for a in steps_alts)
        if repeat and steps[-1].ms == 0:
            raise ValueError("a repeating tone needs a duration on every step")
        spec = ToneSpec(steps=steps, source=source, repeat=repeat)
        if spec not in specs:
            specs.append(spec)
    return tuple(specs)


def _matching_close(text: str) -> int:
    depth = 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _parse_field(cc: str, field: str, value: Any) -> tuple[ToneSpec, ...]:
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"countries.{cc}.{field}: expected a mapping of source to tone text")
    specs: list[ToneSpec] = []
    for source, text in value.items():
        if not isinstance(text, str):
            raise ConfigError(f"countries.{cc}.{field}.{source}: expected tone text, got {text!r}")
        try:
            parsed = parse_tone(text, source=str(source))
        except ValueError as exc:
            raise ConfigError(f"countries.{cc}.{field}.{source}: {exc} in {text!r}") from None
        specs.extend(s for s in parsed if s not in specs)
    return tuple(specs)


def plans_from_mapping(data: Any) -> dict[str, CountryPlan]:
    """Build the country plans from the parsed YAML document (``{"countries": {...}}``).

    Raises
    ------
    ConfigError
        One line naming the country and field at fault.
    """
    if not isinstance(data, dict) or not isinstance(data.get("countries"), dict):
        raise ConfigError("tone plans: expected a top-level 'countries' mapping")
    plans: dict[str, CountryPlan] = {}
    for cc, entry in data["countries"].items():
        cc = str(cc)
        if not isinstance(entry, dict):
            raise ConfigError(f"countries.{cc}: expected a mapping")
        unknown = sorted(set(map(str, entry)) - {"name", *KINDS, *_EXTRA_FIELDS})
        if unknown:
            raise ConfigError(f"countries.{cc}.{unknown[0]}: unknown field")
        name = entry.get("name", cc)
        if not isinstance(name, str):
            raise ConfigError(f"countries.{cc}.name: expected a string")
        fields = {
            f: _parse_field(cc, f, entry[f]) for f in (*KINDS, *_EXTRA_FIELDS) if f in entry
        }
        plans[cc] = CountryPlan(cc=cc, name=name, **fields)
    if not plans:
        raise ConfigError("tone plans: no countries")
    return plans


#: ISO 3166 codes the shipped plans file under another name (the ITU list says "uk").
COUNTRY_ALIASES = {"gb": "uk"}


def country_code(cc: str, plans: dict[str, CountryPlan]) -> str:
    """``cc`` as the plans name it: lower case, ``gb`` → ``uk`` unless the plans have
    ``gb`` themselves."""
    cc = str(cc).lower()
    alias = COUNTRY_ALIASES.get(cc)
    return alias if alias is not None and cc not in plans and alias in plans else cc


def load_tone_plans(path: str | Path | None = None) -> dict[str, CountryPlan]:
    """Read the tone plans, by default ``config/tone_plans.yaml``.

    Parameters
    ----------
    path : str or Path, optional
        A YAML file with a ``countries`` mapping (see the shipped file).

    Returns
    -------
    dict
        Country code -> :class:`CountryPlan`, in file order.

    Raises
    ------
    ConfigError
        One line naming the file and, for bad tone text, the country and field.
    """
    from agent.config import read_yaml
    from agent.paths import CONFIG_DIR

    p = Path(path) if path is not None else CONFIG_DIR / "tone_plans.yaml"
    data = read_yaml(p)
    try:
        return plans_from_mapping(data)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
