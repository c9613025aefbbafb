"""The pjsua2 objects of a worker, and the rules that keep them from crashing it.

Three things killed workers under load (SIGABRT ``Immortal interned string died``,
SIGSEGV, pjsip assertions), all from the way Python objects and pjsua2's C++ objects end:

1. **A C++ object that Python frees while another thread calls it.** pjmedia's clock thread
   calls every media port's ``onFrameReceived`` (see :class:`agent.sip.tap.FrameTap`).
   Python frees an object by clearing its ``__dict__`` first and deleting the C++ half
   after, with the GIL released by the SWIG wrapper during the delete: the clock thread ran
   the callback on the half-freed object. Taps are therefore destroyed explicitly.
2. **A pjsua2 ``Call`` that outlives its call slot.** ``Call::~Call`` clears the user data
   of, and hangs up, the slot its ``id`` names, and pjsua2 never resets that ``id`` when
   the call ends. pjsua hands slots out round robin among only four, so a ``Call`` freed a
   few calls after its own call ended silenced (no more callbacks) and hung up *another*
   call: calls stuck undecided until a made-up 408. :class:`Leg` deletes its C++ half in
   its ``DISCONNECTED`` callback, while the slot is still its own (the pattern pjsua2
   documents for ``onCallState``), and is never touched again.
3. **The cyclic garbage collector running at random points**, on pjmedia's clock thread
   inside a callback among them, where it freed the objects above. The worker turns
   automatic collection off and collects on its own thread between event polls.

Any thread pjsua2 calls back on takes the GIL in the SWIG director (the wheel is built
with thread support), so the callbacks themselves are safe; only object lifetimes were not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

if TYPE_CHECKING:
    from agent.sip.worker import Pair, Worker


@dataclass(frozen=True)
class EventMessages:
    """The SIP message a call-state event received or sent ('' where there is none)."""

    received: str = ""
    sent: str = ""
    sent_to: str = ""  # "ip:port" the sent message went to


def event_messages(prm: Any) -> EventMessages:
    """What :class:`EventMessages` a pjsua2 ``OnCallStateParam`` carries."""
    try:
        if prm.e.type == pj.PJSIP_EVENT_TSX_STATE:
            tsx = prm.e.body.tsxState
            if tsx.type == pj.PJSIP_EVENT_RX_MSG:
                return EventMessages(received=tsx.src.rdata.wholeMsg or "")
            if tsx.type == pj.PJSIP_EVENT_TX_MSG:
                return EventMessages(sent=tsx.src.tdata.wholeMsg or "",
                                     sent_to=tsx.src.tdata.dstAddress or "")
    except Exception:  # the event may carry no message at all
        pass
    return EventMessages()


class Leg(pj.Call):
    """One call leg; forwards its callbacks to the worker and owns its C++ lifetime."""

    def __init__(self, worker: Worker, acc: pj.Account, call_id: int, role: str) -> None:
        super().__init__(acc, call_id)
        self.worker = worker
        self.role = role
        self.pair: Pair | None = None
        #: The C++ half is deleted: no method may be called any more.
        self.gone = False
        self.slot = call_id

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802 (pjsua2 API)
        if self.gone:
            return
        msgs = event_messages(prm)
        try:
            ci = self.getInfo()
        except pj.Error:
            return
        self.worker.guard(self.worker.on_leg_state, self, ci, msgs)
        if ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.worker.guard(self.release)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        if not self.gone:
            self.worker.guard(self.worker.on_leg_media, self)

    def active(self) -> bool:
        """Whether pjsua still holds this leg's call (False once released)."""
        return not self.gone and self.isActive()

    def release(self) -> None:
        """Delete the C++ call now, while its slot is still this call's. Safe to call twice.

        Called from the ``DISCONNECTED`` callback, or at once for a leg whose call never
        started (``makeCall`` failed) and at shutdown.
        """
        if self.gone:
            return
        self.gone = True
        self.worker.forget(self)
        pj._pjsua2.delete_Call(self)


class Endpoint(pj.Endpoint):
    """The pjsua2 endpoint, reporting the INVITEs pjsua refuses before any account sees them."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def onRejectedIncomingCall(self, prm: pj.OnRejectedIncomingCallParam) -> None:  # noqa: N802
        self.worker.guard(self.worker.on_rejected, prm)


class Agent(pj.Account):
    """The worker's local account: every incoming INVITE lands here."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802
        self.worker.guard(self.worker.on_incoming, prm)
