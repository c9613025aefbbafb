"""The B2BUA call as an explicit state machine.

``idle → early → classified → final | connected → ended``, with ``cancelled`` when the
dialer gives up first. The worker and the supervisor drive it with :class:`Event` values;
a transition not in the table is a bug in the caller and raises.
"""

from __future__ import annotations

from enum import Enum


class CallState(Enum):
    IDLE = "idle"  # INVITE accepted, carrier leg placed, nothing back yet
    EARLY = "early"  # carrier sent a provisional response or early media
    CLASSIFIED = "classified"  # analysis has an inference; the carrier has not decided
    CONNECTED = "connected"  # carrier answered 200 OK; a normal call
    FINAL = "final"  # a failure went (or is going) to the dialer
    CANCELLED = "cancelled"  # the dialer gave up first
    ENDED = "ended"  # a connected call was hung up


class Event(Enum):
    PROGRESS = "progress"  # 180/183 from the carrier
    EARLY_MEDIA = "early_media"  # carrier audio is flowing
    CLASSIFIED = "classified"  # analysis inferred a code
    ANSWERED = "answered"  # carrier 200 OK
    FINAL = "final"  # failure response to the dialer
    CANCEL = "cancel"  # dialer CANCEL (or hang-up before the answer)
    BYE = "bye"  # either side hung up a connected call


class InvalidTransition(ValueError):
    """An event that cannot happen in the current state."""


_PRE_ANSWER = {
    Event.PROGRESS: None,  # stays in (or moves to) early
    Event.EARLY_MEDIA: None,
    Event.CLASSIFIED: CallState.CLASSIFIED,
    Event.ANSWERED: CallState.CONNECTED,
    Event.FINAL: CallState.FINAL,
    Event.CANCEL: CallState.CANCELLED,
}

TRANSITIONS: dict[CallState, dict[Event, CallState]] = {
    CallState.IDLE: {e: s or CallState.EARLY for e, s in _PRE_ANSWER.items()},
    CallState.EARLY: {e: s or CallState.EARLY for e, s in _PRE_ANSWER.items()},
    CallState.CLASSIFIED: {e: s or CallState.CLASSIFIED for e, s in _PRE_ANSWER.items()},
    CallState.CONNECTED: {Event.BYE: CallState.ENDED, Event.CLASSIFIED: CallState.CONNECTED},
    CallState.FINAL: {Event.FINAL: CallState.FINAL, Event.CLASSIFIED: CallState.FINAL},
    CallState.CANCELLED: {Event.CANCEL: CallState.CANCELLED,
                          Event.CLASSIFIED: CallState.CANCELLED},
    CallState.ENDED: {Event.BYE: CallState.ENDED},
}


def advance(state: CallState, event: Event) -> CallState:
    """The state after ``event``.

    Raises
    ------
    InvalidTransition
        If ``event`` cannot happen in ``state`` (e.g. a carrier answer after a failure).
    """
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise InvalidTransition(f"{event.value} in state {state.value}") from None


def is_open(state: CallState) -> bool:
    """Whether the carrier may still answer or fail (the call is before its outcome)."""
    return state in (CallState.IDLE, CallState.EARLY, CallState.CLASSIFIED)
