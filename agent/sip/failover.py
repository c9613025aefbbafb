"""What the supervisor sends for a worker that died holding calls (pure, no I/O).

A dead worker's SIP transactions die with it, but the supervisor keeps the head of each
call's dialer INVITE and carrier INVITE (the worker reports them as the call starts).
From those it builds, statelessly, the final response the dialer is still waiting for and
the CANCEL the carrier needs. The response goes to where the INVITE came from (the dialer,
or Kamailio, whose transaction relays it as if the worker had sent it); it carries its own
To tag, which RFC 3261 allows (a final response may come from another branch than an
earlier provisional one).
"""

from __future__ import annotations

import secrets

from agent.sip.headers import header, header_values, start_line

_COPIED = ("from", "call-id", "cseq")


def _name(key: str) -> str:
    return {"call-id": "Call-ID", "cseq": "CSeq"}.get(key, key.title())


def final_response(invite: str, code: int, reason: str, *,
                   headers: dict[str, str] | None = None, tag: str | None = None) -> bytes:
    """A final response to the INVITE whose head is ``invite``.

    Every Via is copied in order (a proxy in front finds its transaction by the top one),
    with From, To (given a tag if it has none), Call-ID and CSeq.

    Raises
    ------
    ValueError
        If ``invite`` is not an INVITE with the headers a response must echo.
    """
    parts = start_line(invite).split()
    if not parts or parts[0] != "INVITE":
        raise ValueError("not an INVITE")
    vias = header_values(invite, "via")
    to = header(invite, "to")
    if not vias or to is None or any(header(invite, h) is None for h in _COPIED):
        raise ValueError("INVITE lacks Via, From, To, Call-ID or CSeq")
    if ";tag=" not in to.replace(" ", "").lower():
        to = f"{to};tag={tag or secrets.token_hex(8)}"
    lines = [f"SIP/2.0 {code} {reason}"]
    lines += [f"Via: {v}" for v in vias]
    lines += [f"From: {header(invite, 'from')}", f"To: {to}",
              f"Call-ID: {header(invite, 'call-id')}", f"CSeq: {header(invite, 'cseq')}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def cancel_request(invite: str) -> bytes:
    """The CANCEL of the INVITE whose head is ``invite`` (RFC 3261 §9.1).

    Raises
    ------
    ValueError
        If ``invite`` is not an INVITE with a Via, From, To, Call-ID and CSeq.
    """
    parts = start_line(invite).split()
    if len(parts) < 3 or parts[0] != "INVITE":
        raise ValueError("not an INVITE")
    vias = header_values(invite, "via")
    cseq = (header(invite, "cseq") or "").split()
    if not vias or len(cseq) != 2 or any(header(invite, h) is None for h in ("from", "to",
                                                                             "call-id")):
        raise ValueError("INVITE lacks Via, From, To, Call-ID or CSeq")
    lines = [f"CANCEL {parts[1]} SIP/2.0", f"Via: {vias[0]}",
             f"From: {header(invite, 'from')}", f"To: {header(invite, 'to')}",
             f"Call-ID: {header(invite, 'call-id')}", f"CSeq: {cseq[0]} CANCEL"]
    lines += [f"Route: {r}" for r in header_values(invite, "route")]
    lines += ["Max-Forwards: 70", "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def head_of(msg: str) -> str:
    """A SIP message without its body (what the supervisor keeps of an INVITE)."""
    for sep in ("\r\n\r\n", "\n\n"):
        if sep in msg:
            return msg.split(sep, 1)[0]
    return msg


def address(text: str) -> tuple[str, int] | None:
    """``"ip:port"`` or ``"[v6]:port"`` (pjsua2's address form) as a tuple, else None."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


#: When a stateless message is sent again (seconds after the first): RFC 3261's T1
#: doubling, for a peer whose copy was lost on UDP.
RESEND_AT_S = (0.0, 0.5, 1.5)


class Sender:
    """Sends the failover messages over UDP, each a few times (asyncio)."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)

    async def send(self, data: bytes, to: tuple[str, int]) -> None:
        """Send ``data`` to ``to`` at each of :data:`RESEND_AT_S`."""
        import asyncio

        last = 0.0
        for at in RESEND_AT_S:
            await asyncio.sleep(at - last)
            last = at
            try:
                self.sock.sendto(data, to)
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()
