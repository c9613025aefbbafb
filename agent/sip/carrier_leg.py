"""The carrier leg: the INVITE to the call's route's carrier, and its failover.

The carrier leg is placed once the dialer's INVITE is accepted, at the first address of
the carrier its route names (:mod:`agent.sip.routes`), carrying what crosses the B2BUA
(:mod:`agent.sip.passthrough`). A 503 before any early media moves it to the carrier's
next address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pjsua2 as pj
import structlog

from agent.sip import messages as m
from agent.sip.headers import request_user
from agent.sip.legs import Leg
from agent.sip.passthrough import carrier_invite
from agent.sip.states import is_open

if TYPE_CHECKING:
    from agent.sip.pair import Pair
    from agent.sip.worker import Worker

log = structlog.get_logger("agent.sip.worker")


def place_carrier(worker: Worker, pair: Pair) -> None:
    """The carrier leg to the route's address number ``pair.attempt``."""
    msg, correlation = pair.invite, pair.correlation
    assert pair.target is not None
    target = pair.target.uri(request_user(msg) or "unknown", pair.attempt)
    for passthrough in (True, False):
        carrier = Leg(worker, worker.acc, pj.PJSUA_INVALID_ID, "carrier")
        carrier.pair = pair
        pair.carrier = carrier
        op, dest = carrier_invite(worker.cfg, msg, target, correlation,
                                  passthrough=passthrough)
        try:
            carrier.makeCall(dest, op)
            break
        except pj.Error as exc:
            pair.carrier = None
            carrier.pair = None
            carrier.release()
            if passthrough:
                # The dialer's headers or identity made pjsip refuse the INVITE (too
                # long, say): the call still goes out, as the agent's own.
                log.warning("passthrough_refused", call_id=pair.call_id,
                            error=exc.info())
                continue
            log.error("carrier_call_failed", call_id=pair.call_id, error=exc.info())
            # Answered once pjsua has finished with the INVITE: ending the dialer's call
            # inside onIncomingCall frees its cloned request, which pjsua2 then frees
            # again on return (assertion in pjsip_rx_data_free_cloned, SIGABRT).
            worker.deferred.append((worker._fail_if_open, (pair, 503)))
            return
    carrier.slot = carrier.getId()
    worker._adopt(carrier)


def fail_over(worker: Worker, pair: Pair, code: int) -> bool:
    """On a 503 before any early media, try the carrier's next address (RFC 3263 §4.3);
    whether a new carrier leg is on its way."""
    target = pair.target
    if (code != 503 or target is None or pair.attempt + 1 >= len(target.addresses)
            or pair.media_started is not None or not is_open(pair.state)):
        return False
    pair.attempt += 1
    pair.reported.discard("carrier")  # the new leg's INVITE head replaces the old one's
    log.info("carrier_failover", call_id=pair.call_id, carrier=target.carrier,
             address=target.addresses[pair.attempt])
    worker.send(m.CarrierFailover(call_id=pair.call_id, code=code,
                                  address=target.addresses[pair.attempt]))
    # Placed after this callback: the old leg is still being torn down inside it.
    worker.deferred.append((worker._place_if_open, (pair,)))
    return True
