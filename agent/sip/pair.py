"""One bridged call in a worker: the dialer's leg, the carrier's leg and what the worker
knows about the call between them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.sip.states import CallState

if TYPE_CHECKING:
    from agent.sip.legs import Leg
    from agent.sip.routes import Target
    from agent.sip.tap import FrameTap


@dataclass
class Pair:
    """One bridged call: the dialer's leg, the carrier's leg and their shared state."""

    call_id: str
    dialer: Leg
    carrier: Leg | None = None
    state: CallState = CallState.IDLE
    tap: FrameTap | None = None
    wav_path: str | None = None
    media_started: float | None = None
    bridged: bool = False
    dialer_early: int = 0  # the provisional code already sent upstream
    carrier_code: int = 0
    carrier_reason: str | None = None  # the carrier's Reason header(s)
    carrier_phrase: str = ""  # the carrier's reason phrase
    carrier_headers: dict[str, str] = field(default_factory=dict)  # return_headers found
    held_until: float | None = None  # a carrier failure waiting for a verdict
    dialer_code: int = 0
    rewritten: bool = False
    deadline: float = 0.0
    done: bool = False
    fas_until: float | None = None  # the tap goes on after the answer until then
    reported: set[str] = field(default_factory=set)  # legs whose INVITE head was reported
    target: Target | None = None  # the route and carrier (agent.sip.routes)
    attempt: int = 0  # which of the carrier's addresses the carrier leg went to
    invite: str = ""  # the dialer's INVITE, for the carrier leg (and its failover)
    correlation: str | None = None  # its X-Correlation-ID
