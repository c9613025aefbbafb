"""The ``sip`` section of the agent's configuration."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from agent.errors import ConfigError
from agent.sip.dialer_auth import DialerAuth
from agent.sip.passthrough import DEFAULT_FORWARD, check_patterns
from agent.sip.routes import CarrierConfig, RouteConfig, check_routes
from agent.sip.transports import check_transports


@dataclass(frozen=True)
class CarrierAuth:
    """Digest credentials for the carrier's 401/407 challenges (``${ENV}`` values welcome).

    With a username the agent answers the challenges itself. Without, a challenge goes
    back to the dialer with its WWW-/Proxy-Authenticate, and the dialer's
    Authorization/Proxy-Authorization on its next INVITE go on to the carrier.
    """

    username: str = ""
    password: str = ""
    realm: str = "*"

    def validate(self) -> None:
        if self.username and not self.password:
            raise ConfigError("carrier_auth.password: required with carrier_auth.username")
        if not self.realm:
            raise ConfigError("carrier_auth.realm: a realm, or * for any")


@dataclass(frozen=True)
class SipConfig:
    """Where the agent listens, where the carrier is, and how calls are handled.

    Attributes
    ----------
    listen_host : str
        Address the dialer sends INVITEs to (and the workers bind to).
    listen_port : int
        The one SIP port the dialer sees (UDP, and TCP when listed in ``transports``).
        With one worker, the worker binds it; with more, Kamailio's dispatcher binds it
        and spreads calls over the workers.
    transports : list of str
        What the dialer may send on: ``udp`` (always), ``tcp``, ``tls``. The carrier
        leg is UDP.
    tls_port : int
        The SIP-over-TLS port, when ``transports`` lists ``tls``.
    tls_certificate, tls_private_key : str
        PEM files of the TLS server certificate (chain) and its key.
    worker_base_port : int
        Worker ``i`` binds ``worker_base_port + i`` when Kamailio is in front.
    rtp_port_base : int
        First RTP port; each worker gets ``rtp_ports_per_worker`` ports from here on.
    rtp_ports_per_worker : int
        RTP/RTCP ports reserved for each worker (4 calls need 8).
    carrier : str
        The carrier gateway as ``host:port``; outbound INVITEs go to ``sip:<user>@carrier``
        (the carrier ``default``, when ``carriers`` is empty).
    carriers : dict of CarrierConfig
        Named carriers: addresses in failover order, transport (:mod:`agent.sip.routes`).
    routes : list of RouteConfig
        The route table, first match wins; each names a carrier and may set ``rewrite``
        and ``tone_countries`` for its calls. An INVITE no route matches gets 404.
    allowed_sources : list of str
        Source addresses or CIDR networks allowed to send INVITEs; others get 403
        (checked at the edge: the worker alone, or Kamailio in front of several).
    invite_rate_per_source : float
        New INVITEs a second one source may send (bursts of twice that); more get 503 with
        Retry-After and one log line. 0 turns the limit off.
    failover_code : int
        What a dialer gets when the worker holding its call dies before the carrier's
        final response (else the carrier's own code is sent).
    workers : int
        Number of pjsua2 worker processes (each holds 2 bridged calls).
    calls_per_worker : int
        Bridged calls per worker behind Kamailio (pjsua2 allows 4 call legs per process,
        i.e. 2); a lone worker takes 1 (see :meth:`calls_in_worker`).
    analysis_processes : int
        Processes running classification, tones, fingerprints and decisions.
    codecs : list of str
        Codecs offered and accepted on both legs, in order of preference.
    rewrite_final_response : bool
        Replace the carrier's failure code by the inferred one (with a Q.850 Reason and
        the carrier's code in ``carrier_code_header``); off: relay it untouched.
    carrier_code_header : str
        Header carrying the carrier's original final code when it was rewritten.
    decision_timeout_ms : int
        How long a held carrier failure waits for the inference before being relayed
        untouched (fail-open).
    carrier_timeout_s : float
        A carrier that sends no final response within this time is cancelled and the
        dialer gets ``timeout_code``.
    timeout_code : int
        The code sent to the dialer when ``carrier_timeout_s`` expires.
    max_early_media_s : float
        Early media beyond this is no longer recorded or analysed.
    media_dir : str
        Directory (tmpfs) for the per-call early-media WAV taps; removed after each call.
    kamailio : str
        The Kamailio binary run in front of several workers.
    restart_backoff_s : float
        Delay before restarting a worker that died.
    forward_identity : bool
        The carrier's INVITE carries the dialer's From and To (display name and URI; the
        tags are the agent's own). Off: From is the agent's URI, To the carrier URI.
    forward_headers : list of str
        Headers copied unchanged from the dialer's INVITE to the carrier's (names, ``*`` as
        a wildcard; see :mod:`agent.sip.passthrough`).
    carrier_auth : CarrierAuth
        Credentials for the carrier's digest challenges (see :class:`CarrierAuth`).
    dialer_auth : DialerAuth
        Credentials the dialer must prove (407 challenge) on each INVITE; off without a
        username (see :mod:`agent.sip.dialer_auth`).
    return_headers : list of str
        Headers of the carrier's final response copied to the dialer's (its Reason always
        is).
    """

    listen_host: str = "127.0.0.1"
    listen_port: int = 5070
    transports: list[str] = field(default_factory=lambda: ["udp", "tcp"])
    tls_port: int = 5071
    tls_certificate: str = ""
    tls_private_key: str = ""
    worker_base_port: int = 5100
    rtp_port_base: int = 20000
    rtp_ports_per_worker: int = 40
    carrier: str = "127.0.0.1:5080"
    carriers: dict[str, CarrierConfig] = field(default_factory=dict)
    routes: list[RouteConfig] = field(default_factory=list)
    allowed_sources: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    invite_rate_per_source: float = 50.0
    failover_code: int = 503
    workers: int = 2
    calls_per_worker: int = 2
    analysis_processes: int = 1
    codecs: list[str] = field(default_factory=lambda: ["PCMU", "PCMA"])
    rewrite_final_response: bool = False
    carrier_code_header: str = "X-Carrier-Final-Code"
    decision_timeout_ms: int = 300
    carrier_timeout_s: float = 60.0
    timeout_code: int = 408
    max_early_media_s: float = 30.0
    media_dir: str = "/dev/shm/early-media-agent"
    kamailio: str = "kamailio"
    restart_backoff_s: float = 0.5
    forward_identity: bool = True
    forward_headers: list[str] = field(default_factory=lambda: list(DEFAULT_FORWARD))
    return_headers: list[str] = field(default_factory=list)
    carrier_auth: CarrierAuth = field(default_factory=CarrierAuth)
    dialer_auth: DialerAuth = field(default_factory=DialerAuth)

    def allowed_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """``allowed_sources`` as networks (a bare address is a /32 or /128)."""
        return [ipaddress.ip_network(s, strict=False) for s in self.allowed_sources]

    def validate(self) -> None:
        for source in self.allowed_sources:
            try:
                ipaddress.ip_network(str(source), strict=False)
            except ValueError:
                raise ConfigError(f"allowed_sources: {source!r} is not an address or "
                                  "CIDR network (e.g. 10.0.0.0/8)") from None
        check_transports(self)
        check_routes(self)
        check_patterns("forward_headers", self.forward_headers)
        check_patterns("return_headers", self.return_headers)
        if self.invite_rate_per_source < 0:
            raise ConfigError("invite_rate_per_source: must be >= 0 (0 turns it off)")
        if not 400 <= self.failover_code <= 699:
            raise ConfigError("failover_code: must be a SIP failure code (400..699)")
        for name in ("listen_port", "worker_base_port", "rtp_port_base"):
            if not 1 <= getattr(self, name) <= 65535:
                raise ConfigError(f"{name}: must be a UDP port (1..65535)")
        if self.workers < 1:
            raise ConfigError("workers: must be at least 1")
        if not 1 <= self.calls_per_worker <= 2:
            raise ConfigError("calls_per_worker: pjsua2 holds 4 legs per process, so 1 or 2")
        if self.analysis_processes < 1:
            raise ConfigError("analysis_processes: must be at least 1")
        if self.rtp_ports_per_worker < 4 * self.calls_per_worker:
            raise ConfigError("rtp_ports_per_worker: needs 4 ports per call (RTP+RTCP, 2 legs)")
        rtp_end = self.rtp_port_base + self.workers * self.rtp_ports_per_worker
        rtp = range(self.rtp_port_base, rtp_end)
        sip = {self.listen_port} | (
            set(range(self.worker_base_port, self.worker_base_port + self.workers))
            if self.workers > 1 else set())
        clash = sorted(p for p in sip if p in rtp)
        if clash:
            raise ConfigError(f"rtp_port_base: the RTP ranges overlap SIP port {clash[0]}")
        host, _, port = self.carrier.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"carrier: expected host:port, got {self.carrier!r}")
        if not self.codecs or any(c.upper() not in ("PCMU", "PCMA") for c in self.codecs):
            raise ConfigError("codecs: a non-empty list of PCMU and/or PCMA")
        if not 300 <= self.timeout_code <= 699:
            raise ConfigError("timeout_code: must be a SIP failure code (300..699)")
        if self.decision_timeout_ms < 0:
            raise ConfigError("decision_timeout_ms: must be >= 0")
        if self.carrier_timeout_s <= 0 or self.max_early_media_s <= 0:
            raise ConfigError("carrier_timeout_s and max_early_media_s must be > 0")

    def calls_in_worker(self) -> int:
        """Calls one worker takes. A lone worker (no Kamailio in front) takes one and keeps
        a call slot free: pjsua answers an INVITE that finds no free slot with a stateless
        486 Busy Here of its own, and a false busy is the worst answer a dialer can get; with
        the spare slot the worker itself answers 503 + Retry-After."""
        return self.calls_per_worker if self.workers > 1 else 1

    def pjsua_slots(self) -> int:
        """pjsua's ``maxCalls`` for a worker (two legs a call, plus the spare slot)."""
        return min(4, 2 * self.calls_in_worker() + (0 if self.workers > 1 else 1))

    def worker_port(self, index: int) -> int:
        """The SIP port worker ``index`` binds."""
        return self.listen_port if self.workers == 1 else self.worker_base_port + index
