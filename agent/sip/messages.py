"""Small typed messages between the B2BUA workers, the supervisor and the analysis processes.

Each message is one line of JSON with a ``type`` field, so a pipe or a unix socket carries
them with no extra framing; :class:`Decoder` reassembles lines from arbitrary chunks.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from agent.errors import UserError


@dataclass(frozen=True, slots=True)
class WorkerReady:
    """A worker has bound its SIP port and accepts calls."""

    worker: int
    port: int


@dataclass(frozen=True, slots=True)
class WorkerFailed:
    """A worker could not start (its SIP port taken, say); ``error`` names what and why."""

    worker: int
    error: str


@dataclass(frozen=True, slots=True)
class AnalystStatus:
    """An analysis process started; ``available`` False means it relays calls unanalysed
    (its model could not load: ``error`` says why)."""

    available: bool
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LegHead:
    """The head (no body) of a call's INVITE on one leg, and the peer's ``ip:port``.

    ``leg`` is ``dialer`` (the INVITE received; ``peer`` sent it) or ``carrier`` (the
    INVITE sent; ``peer`` got it). The supervisor keeps them to answer the dialer and
    CANCEL the carrier if the worker dies (:mod:`agent.sip.failover`).
    """

    call_id: str
    leg: str
    head: str
    peer: str


@dataclass(frozen=True, slots=True)
class CallStarted:
    """The dialer's INVITE was accepted and the carrier leg is being placed."""

    call_id: str
    correlation_id: str | None
    from_uri: str
    to_uri: str
    source: str
    t: float
    route: str | None = None  # the route and carrier names (agent.sip.routes)
    carrier: str | None = None


@dataclass(frozen=True, slots=True)
class CarrierFailover:
    """The carrier answered 503 before any early media: its next address is being tried."""

    call_id: str
    code: int
    address: str


@dataclass(frozen=True, slots=True)
class CallRejected:
    """The dialer's INVITE was refused before any carrier leg (e.g. 403 for a stranger)."""

    call_id: str
    code: int
    reason: str
    source: str


@dataclass(frozen=True, slots=True)
class CarrierProgress:
    """A progress response from the carrier: 180/183 (with or without SDP), or 200 answered."""

    call_id: str
    code: int
    t: float


@dataclass(frozen=True, slots=True)
class EarlyMedia:
    """The carrier leg's early media is being recorded to ``path`` (PCM16 WAV, 8 kHz)."""

    call_id: str
    codec: str
    path: str
    t: float
    tone_countries: list[str] = dataclasses.field(default_factory=list)  # the route's


@dataclass(frozen=True, slots=True)
class CarrierFinal:
    """The carrier's final response; ``wait`` says the worker holds it for a :class:`Verdict`."""

    call_id: str
    code: int
    reason: str | None
    t: float
    wait: bool


@dataclass(frozen=True, slots=True)
class CallEnded:
    """Both legs are gone. ``state`` is ``connected``, ``failed`` or ``cancelled``;
    ``dialer_code`` is the final code the dialer received (200 for an answered call)."""

    call_id: str
    state: str
    dialer_code: int
    carrier_code: int
    rewritten: bool
    t: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """The supervisor's answer to a held :class:`CarrierFinal`: the code to send upstream.

    ``code`` None means relay the carrier's response untouched.
    """

    call_id: str
    code: int | None
    reason: str = ""
    q850_cause: int | None = None


@dataclass(frozen=True, slots=True)
class Track:
    """Supervisor → analysis: start reading a call's early-media WAV (``tone_countries``:
    the call's route's, if it sets them)."""

    call_id: str
    path: str
    t: float
    tone_countries: list[str] = dataclasses.field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Finalize:
    """Supervisor → analysis: the carrier gave up with ``code``; infer and stop the call."""

    call_id: str
    code: int | None


@dataclass(frozen=True, slots=True)
class AnalysisEvent:
    """Analysis → supervisor: one event of a call (a classified second, a tone, a match).

    ``kind`` is ``second``, ``tone``, ``match``, ``decision`` (the class decision
    changed) or ``inferred``; ``data`` its JSON form;
    ``audio_s`` how much audio had been analysed; ``lag_s`` the wall-clock time since that
    audio had arrived in full.
    """

    call_id: str
    kind: str
    data: dict[str, Any]
    audio_s: float
    lag_s: float


@dataclass(frozen=True, slots=True)
class FinalInference:
    """Analysis → supervisor: the inference after the carrier's final code (None: none)."""

    call_id: str
    inferred: dict[str, Any] | None
    audio_s: float


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Supervisor → worker or analysis process: finish the calls in hand and exit."""


MESSAGE_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        WorkerReady, WorkerFailed, AnalystStatus, LegHead, CallStarted, CallRejected,
        CarrierProgress, CarrierFailover, EarlyMedia, CarrierFinal, CallEnded, Verdict,
        Track, Finalize, AnalysisEvent, FinalInference, Shutdown,
    )
}


def encode(msg: Any) -> bytes:
    """One message as one JSON line (UTF-8, ending in ``\\n``)."""
    body = {"type": type(msg).__name__, **dataclasses.asdict(msg)}
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def decode_line(line: bytes) -> Any:
    """Parse one JSON line back into its message object.

    Raises
    ------
    UserError
        If the line is not JSON, names no known type, or has wrong fields.
    """
    try:
        body = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"control message: not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise UserError("control message: expected a JSON object")
    cls = MESSAGE_TYPES.get(str(body.pop("type", "")))
    if cls is None:
        raise UserError("control message: unknown or missing type")
    try:
        return cls(**body)
    except TypeError as exc:
        raise UserError(f"control message {cls.__name__}: {exc}") from None


class Decoder:
    """Reassemble messages from a byte stream cut at arbitrary points."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[Any]:
        """Add received bytes; return the messages completed by them, in order."""
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        return [decode_line(line) for line in lines if line.strip()]
