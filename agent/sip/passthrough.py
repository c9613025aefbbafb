"""What crosses the B2BUA unchanged: the dialer's identity headers towards the carrier, and
the carrier's chosen headers back to the dialer.

A B2BUA writes a new request on its outbound leg, so nothing of the dialer's INVITE reaches
the carrier unless it is copied. Carriers bill and screen on From, P-Asserted-Identity and
Diversion (caller ID, STIR/SHAKEN attestation, forwarded calls), honour Privacy, and
dialers tag calls with ``X-*`` headers they expect in the carrier's CDRs. The agent's own
dialog headers (Via, Call-ID, CSeq, Contact, routing and body headers) are never copied:
they describe the agent's leg, not the dialer's.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

from agent.errors import ConfigError
from agent.sip.headers import header, header_lines

if TYPE_CHECKING:
    import pjsua2 as pj

    from agent.sip.config import SipConfig

#: Copied from the dialer's INVITE to the carrier's by default.
DEFAULT_FORWARD = ["P-Asserted-Identity", "P-Preferred-Identity", "Diversion",
                   "History-Info", "Privacy", "X-*"]

#: Headers that belong to one leg's dialog or transaction, or that pjsua writes itself:
#: copying them would corrupt the carrier leg. (From and To are carried separately.)
_DIALOG = {"via", "v", "from", "f", "to", "t", "call-id", "i", "cseq", "contact", "m",
           "max-forwards", "route", "record-route", "content-length", "l", "content-type",
           "c", "content-encoding", "e", "content-disposition", "mime-version", "allow",
           "supported", "k", "require", "proxy-require", "session-expires", "x",
           "min-se", "rseq", "rack", "authorization", "proxy-authorization",
           "www-authenticate", "proxy-authenticate", "user-agent", "server",
           "x-correlation-id",
           # Kamailio's note of the dialer's address to the workers (config/kamailio):
           # internal to the agent, never the carrier's business.
           "x-ema-source"}

_TOKEN = re.compile(r"^[A-Za-z0-9!%'*+.^_`|~-]+$")


def check_patterns(key: str, patterns: list[str]) -> None:
    """Refuse a pattern that is not a header name (``*`` allowed) or names a dialog header."""
    for pattern in patterns:
        text = str(pattern)
        if not _TOKEN.match(text):
            raise ConfigError(f"{key}: {text!r} is not a header name or pattern "
                              "(letters, digits, '-', and '*' as a wildcard)")
        if "*" not in text and text.lower() in _DIALOG:
            raise ConfigError(f"{key}: {text} belongs to one leg's dialog and is never "
                              "copied between legs")


#: At most this many bytes of forwarded headers on the carrier's INVITE. pjsip refuses to
#: send a request longer than its packet limit (PJSIP_EMSGTOOLONG), and a dialer's
#: oversized header must not cost the call its caller ID: headers that would pass the
#: budget are left out, the ones after them still go.
FORWARD_BUDGET = 2048


def pick_headers(msg: str, patterns: list[str], *, skip: AbstractSet[str] = frozenset(),
                 budget: int = FORWARD_BUDGET) -> list[tuple[str, str]]:
    """The headers of ``msg`` whose names match one of ``patterns`` (case-insensitive),
    as (name as written, value) in message order; dialog headers and ``skip`` never, nor
    any that would take the total past ``budget`` bytes.

    A value that is not valid UTF-8 is left out: pjsua2 cannot send it, and an invalid
    header must not stop the call.
    """
    wanted = [p.lower() for p in patterns]
    found = []
    for name, value in header_lines(msg):
        low = name.lower()
        if not _TOKEN.match(name) or low in _DIALOG or low in skip:
            continue
        if not any(fnmatch.fnmatchcase(low, p) for p in wanted):
            continue
        try:
            size = len(name) + len(value.encode("utf-8")) + 4  # "Name: value\r\n"
        except UnicodeEncodeError:
            continue
        if size > budget:
            continue
        budget -= size
        found.append((name, value))
    return found


#: The carrier's challenge headers, relayed with its 401/407 when the agent has no
#: credentials of its own, and the dialer's answers to them, forwarded on its next INVITE.
CHALLENGES = ("WWW-Authenticate", "Proxy-Authenticate")
CREDENTIALS = ("Authorization", "Proxy-Authorization")


def challenges(msg: str) -> list[tuple[str, str]]:
    """The digest challenges of a 401/407 response, as (name, value)."""
    return _named(msg, CHALLENGES)


def credentials(msg: str) -> list[tuple[str, str]]:
    """The digest credentials of a request, as (name, value)."""
    return _named(msg, CREDENTIALS)


def _named(msg: str, names: tuple[str, ...]) -> list[tuple[str, str]]:
    wanted = {n.lower(): n for n in names}
    out = []
    for name, value in header_lines(msg):
        if name.lower() in wanted and len(value) <= FORWARD_BUDGET:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                continue
            out.append((wanted[name.lower()], value))
    return out


def dialog_uri(value: str | None) -> str | None:
    """A From/To header value as the address of a new dialog: ``display <uri>``, without
    the header's parameters (the tag belongs to the dialer's dialog).

    None for a value that is absent, longer than 512 characters, not UTF-8, or not a
    SIP/SIPS/TEL address.
    """
    if not value or len(value) > 512:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    if "<" in value:
        close = value.find(">")
        if close < 0:
            return None
        display, uri = value[:value.find("<")].strip(), value[value.find("<") + 1:close]
    else:
        # A bare URI: what follows ';' are the header's parameters, not the URI's.
        display, uri = "", value.split(";", 1)[0]
    uri = uri.strip()
    if not re.fullmatch(r"(sips?|tel):[^\s<>\"]+", uri, re.IGNORECASE):
        return None
    if display and not re.fullmatch(r'"(?:[^"\\]|\\.)*"|[A-Za-z0-9!%*+.^_`|~ -]+', display):
        display = ""
    return f"{display} <{uri}>" if display else f"<{uri}>"


def carrier_invite(cfg: SipConfig, msg: str, target: str, correlation: str | None, *,
                   passthrough: bool) -> tuple[pj.CallOpParam, str]:
    """The carrier leg's INVITE options and the address to call (its To).

    The Request-URI is always ``target`` (the carrier). With ``passthrough``,
    ``cfg.forward_headers`` are copied from ``msg`` and, if ``cfg.forward_identity``, the
    From and To are the dialer's; without, the INVITE is the agent's own (the fallback
    when pjsip refuses the first).
    """
    # Here: the config (which imports this module) must not load pjsua2.
    import pjsua2 as pj

    from agent.sip.legs import add_headers

    op = pj.CallOpParam(True)
    op.opt.audioCount = 1
    op.opt.videoCount = 0
    headers = pick_headers(msg, cfg.forward_headers) if passthrough else []
    if not cfg.carrier_auth.username and not cfg.dialer_auth.username:
        # The dialer answers the carrier's challenges (relayed to it): its credentials go
        # on (unless they are the agent's own, sip.dialer_auth).
        headers += credentials(msg)
    if correlation:
        headers.append(("X-Correlation-ID", correlation))
    add_headers(op, headers)
    dest = target
    if passthrough and cfg.forward_identity:
        caller = dialog_uri(header(msg, "from"))
        callee = dialog_uri(header(msg, "to"))
        if caller:
            op.txOption.localUri = caller
        if callee and "<sip" in callee.lower():
            # pjsua picks the Contact's transport from the To URI, so a tel: To stays ours.
            op.txOption.targetUri = target
            dest = callee
    return op, dest
