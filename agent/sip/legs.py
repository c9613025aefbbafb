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

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pjsua2 as pj
import structlog

from agent.sip import pjsip_log
from agent.sip.transports import create_transports, keep_requests_on_udp

log = structlog.get_logger("agent.sip.worker")

if TYPE_CHECKING:
    from agent.sip.config import SipConfig
    from agent.sip.pair import Pair
    from agent.sip.worker import Worker


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
        #: pjsip's log writer: pjsua2 calls it until ``libDestroy`` (agent.sip.pjsip_log).
        self.log_writer: pjsip_log.PjsipLogWriter | None = None

    def onRejectedIncomingCall(self, prm: pj.OnRejectedIncomingCallParam) -> None:  # noqa: N802
        self.worker.guard(self.worker.on_rejected, prm)


class Agent(pj.Account):
    """The worker's local account: every incoming INVITE lands here."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802
        self.worker.guard(self.worker.on_incoming, prm)


def start_endpoint(ep: Endpoint, cfg: SipConfig, index: int, *, log_level: str = "info") -> int:
    """Initialise pjsua for worker ``index`` (null sound device, UDP on its port, and the
    dialer's TCP/TLS listeners for a lone worker; our codecs first, pjsip's log lines into
    the worker's log at ``log_level``); returns the SIP port. Raises ``pj.Error`` (a port
    taken, say)."""
    pjsip_log.silence_startup()
    ep.libCreate()
    ec = pj.EpConfig()
    ec.uaConfig.maxCalls = cfg.pjsua_slots()
    ec.uaConfig.threadCnt = 0
    ec.uaConfig.mainThreadOnly = False
    ec.uaConfig.userAgent = "early-media-agent"
    ep.log_writer = pjsip_log.configure(ec.logConfig, log_level)
    ec.medConfig.clockRate = 8000
    ec.medConfig.sndClockRate = 8000
    ec.medConfig.channelCount = 1
    ec.medConfig.noVad = True
    ec.medConfig.ecTailLen = 0
    # Keep the null sound device (pjmedia's clock) open between calls: reopening it for
    # each call delayed the first classified second by ~40 ms.
    ec.medConfig.sndAutoCloseTime = -1
    ep.libInit(ec)
    keep_requests_on_udp()
    ep.audDevManager().setNullDev()
    tc = pj.TransportConfig()
    tc.port = cfg.worker_port(index)
    tc.boundAddress = cfg.listen_host
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
    create_transports(ep, cfg)  # TCP/TLS (agent.sip.transports)
    ep.libStart()
    wanted = {c.upper(): len(cfg.codecs) - i for i, c in enumerate(cfg.codecs)}
    for info in ep.codecEnum2():
        name = info.codecId.split("/")[0].upper()
        prio = 100 + wanted[name] if name in wanted and "/8000" in info.codecId else 0
        ep.codecSetPriority(info.codecId, prio)
    return int(tc.port)


def account_config(cfg: SipConfig, index: int, port: int) -> pj.AccountConfig:
    """The worker's local account: its URI and its share of the RTP ports."""
    ac = pj.AccountConfig()
    ac.idUri = f"sip:agent@{cfg.listen_host}:{port}"
    rtp = ac.mediaConfig.transportConfig
    rtp.port = cfg.rtp_port_base + index * cfg.rtp_ports_per_worker
    rtp.portRange = cfg.rtp_ports_per_worker
    rtp.boundAddress = cfg.listen_host
    auth = cfg.carrier_auth
    if auth.username:  # pjsua answers the carrier's 401/407 on its own
        ac.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", auth.realm, auth.username, 0, auth.password))
    return ac


def add_headers(op: pj.CallOpParam, headers: Iterable[tuple[str, str]]) -> None:
    """Put ``headers`` (name, value) on the message ``op`` sends."""
    for name, value in headers:
        hdr = pj.SipHeader()
        hdr.hName = name
        hdr.hValue = value
        op.txOption.headers.append(hdr)


def hangup(leg: Leg, code: int, *, reason: str = "",
           headers: dict[str, str] | None = None) -> None:
    """End ``leg`` with ``code`` (a final response, CANCEL or BYE as its state needs)."""
    if leg.gone:
        return
    op = pj.CallOpParam(True)
    op.statusCode = code
    if reason:
        op.reason = reason
    add_headers(op, (headers or {}).items())
    try:
        leg.hangup(op)
    except pj.Error as exc:
        # A race with the other side's CANCEL/BYE: the call is ending anyway.
        log.debug("hangup_failed", code=code, error=exc.info())


def active_media(leg: Leg) -> int | None:
    """The index of the leg's active audio media, or None."""
    if leg.gone:
        return None
    ci = leg.getInfo()  # held: ``media`` points into it (SWIG does not keep it alive)
    active = None
    for idx, mi in enumerate(ci.media):
        if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
            active = idx
    return active


def bridge(pair: Pair) -> None:
    """Connect the audio of a call's two legs both ways, once both have media, and again
    each time either leg's media is set up anew.

    A carrier that moves its early media (a second 183 or an UPDATE with a new SDP, the
    200 OK's SDP) makes pjsua rebuild the leg's stream, and the rebuilt stream's port in
    the conference bridge has none of the old one's connections: connecting only once
    left the dialer hearing dead air from the move on. Connecting an already connected
    pair of ports again changes nothing.
    """
    if pair.carrier is None:
        return
    idx_a, idx_b = active_media(pair.carrier), active_media(pair.dialer)
    if idx_a is None or idx_b is None:
        return
    a, b = pair.carrier.getAudioMedia(idx_a), pair.dialer.getAudioMedia(idx_b)
    a.startTransmit(b)
    b.startTransmit(a)
    pair.bridged = True
