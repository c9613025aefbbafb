"""The SIP transports the dialer can reach the agent on: UDP always, TCP and TLS on demand.

RFC 3261 §18 requires TCP of every element, and PBXs and dialers often send INVITEs over
TCP or TLS. The dialer side's transports are served by whoever faces the dialer: the lone
worker (pjsua) or, with several workers, Kamailio, which relays to the workers over UDP
on loopback. The carrier leg stays on UDP.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import ConfigError

if TYPE_CHECKING:
    import pjsua2 as pj

    from agent.sip.config import SipConfig

TRANSPORTS = ("udp", "tcp", "tls")


def check_transports(cfg: SipConfig) -> None:
    """Raise ConfigError naming the key of a transport setting that cannot work."""
    unknown = [t for t in cfg.transports if str(t).lower() not in TRANSPORTS]
    if unknown:
        raise ConfigError(f"transports: {unknown[0]!r} is not one of udp, tcp, tls")
    if "udp" not in [t.lower() for t in cfg.transports]:
        raise ConfigError("transports: udp cannot be left out (the carrier leg and the "
                          "hop from Kamailio to the workers use it)")
    if not uses(cfg, "tls"):
        return
    if not 1 <= cfg.tls_port <= 65535 or cfg.tls_port == cfg.listen_port:
        raise ConfigError(f"tls_port: {cfg.tls_port} must be a port (1..65535) other "
                          "than listen_port")
    for key in ("tls_certificate", "tls_private_key"):
        value = getattr(cfg, key)
        if not value:
            raise ConfigError(f"{key}: required when transports lists tls")
        if not Path(value).is_file():
            raise ConfigError(f"{key}: {value}: no such file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cfg.tls_certificate, cfg.tls_private_key)
    except ssl.SSLError as exc:
        why = exc.reason or str(exc)
    except OSError as exc:
        why = exc.strerror or str(exc)
    else:
        return
    raise ConfigError(f"tls_certificate: {cfg.tls_certificate} with tls_private_key "
                      f"{cfg.tls_private_key} does not load ({why})")


def uses(cfg: SipConfig, transport: str) -> bool:
    """Whether the dialer side listens on ``transport``."""
    return transport in [t.lower() for t in cfg.transports]


def dialer_listeners(cfg: SipConfig) -> list[tuple[str, str, int]]:
    """(config key, transport, port) of every socket the dialer side binds."""
    out = [("sip.listen_port", "udp", cfg.listen_port)]
    if uses(cfg, "tcp"):
        out.append(("sip.listen_port", "tcp", cfg.listen_port))
    if uses(cfg, "tls"):
        out.append(("sip.tls_port", "tls", cfg.tls_port))
    return out


def check_sip_ports(sip: SipConfig) -> None:
    """Raise ConfigError naming the first SIP port another process holds."""
    ports = dialer_listeners(sip)
    if sip.workers > 1:
        ports += [(f"sip.worker_base_port + {i}", "udp", sip.worker_port(i))
                  for i in range(sip.workers)]
    for name, transport, port in ports:
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, kind) as probe:
            if kind == socket.SOCK_STREAM:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((sip.listen_host, port))
            except OSError as exc:
                shown = "tcp" if transport == "tls" else transport
                raise ConfigError(f"{name}: {sip.listen_host}:{port}/{shown} is not free "
                                  f"({exc.strerror})") from None


def keep_requests_on_udp() -> None:
    """Stop pjsip from moving a large request to the carrier onto TCP or TLS.

    RFC 3261 §18.1.1 has a UAC send a request over 1,300 bytes by TCP, and pjsip does so
    whenever a TCP transport exists, before falling back to UDP: a carrier that drops TCP
    connections would then see a forwarded-header-heavy INVITE only after a connect
    timeout. The carrier leg is UDP by configuration, so the switch is turned off. pjsua2
    does not expose pjsip_cfg(); its first fields are pj_bool_t (int) flags, in this
    order since pjsip 2.x: allow_port_in_fromto_hdr, accept_replace_in_early_state,
    allow_tx_hash_in_uri, disable_rport, disable_tcp_switch, disable_tls_switch.
    """
    import ctypes

    import pjsua2 as pj

    lib = ctypes.CDLL(pj._pjsua2.__file__)
    flags = (ctypes.c_int * 6).in_dll(lib, "pjsip_sip_cfg_var")
    flags[4] = 1  # disable_tcp_switch
    flags[5] = 1  # disable_tls_switch


def create_transports(ep: pj.Endpoint, cfg: SipConfig) -> None:
    """A worker's TCP and TLS transports (UDP is created by the caller): the dialer's
    listeners for a lone worker, and what the carriers' transports need."""
    from agent.sip.routes import carriers

    have = create_dialer_transports(ep, cfg) if cfg.workers == 1 else set()
    for kind in sorted({c.transport for c in carriers(cfg).values()} - have - {"udp"}):
        create_client_transport(ep, cfg, kind)


def create_client_transport(ep: pj.Endpoint, cfg: SipConfig, kind: str) -> None:
    """A TCP or TLS transport on an ephemeral port, for carrier legs only."""
    import pjsua2 as pj

    tc = pj.TransportConfig()
    tc.port = 0
    tc.boundAddress = cfg.listen_host
    ep.transportCreate(pj.PJSIP_TRANSPORT_TCP if kind == "tcp" else pj.PJSIP_TRANSPORT_TLS,
                       tc)


def create_dialer_transports(ep: pj.Endpoint, cfg: SipConfig) -> set[str]:
    """TCP and TLS listeners of a lone worker (UDP is created by the caller); the kinds
    created."""
    import pjsua2 as pj

    made = set()
    if uses(cfg, "tcp"):
        made.add("tcp")
        tc = pj.TransportConfig()
        tc.port = cfg.listen_port
        tc.boundAddress = cfg.listen_host
        ep.transportCreate(pj.PJSIP_TRANSPORT_TCP, tc)
    if uses(cfg, "tls"):
        made.add("tls")
        tc = pj.TransportConfig()
        tc.port = cfg.tls_port
        tc.boundAddress = cfg.listen_host
        tc.tlsConfig.certFile = cfg.tls_certificate
        tc.tlsConfig.privKeyFile = cfg.tls_private_key
        ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, tc)
    return made
