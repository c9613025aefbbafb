"""Transport settings: bad ones are one line naming the key, at start."""

import socket
import subprocess

import pytest

from agent.config import build
from agent.errors import ConfigError
from agent.sip.config import SipConfig
from agent.sip.kamailio import render_config
from agent.sip.transports import check_sip_ports, dialer_listeners


def _cfg(**kw):
    return build(SipConfig, kw)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", "1",
                    "-subj", "/CN=test"], check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


@pytest.mark.parametrize(("kw", "message"), [
    ({"transports": ["udp", "sctp"]}, "transports: 'sctp' is not one of udp, tcp, tls"),
    ({"transports": ["tcp"]}, "transports: udp cannot be left out"),
    ({"transports": ["udp", "tls"]}, "tls_certificate: required when transports lists tls"),
    ({"transports": ["udp", "tls"], "tls_certificate": "/nonexistent.pem",
      "tls_private_key": "/nonexistent.key"}, "tls_certificate: /nonexistent.pem: no such file"),
    ({"transports": ["udp", "tls"], "tls_port": 5070}, "tls_port: 5070 must be a port"),
])
def test_bad_transport_settings_name_the_key(kw, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(**kw).validate()


def test_a_certificate_that_does_not_load_is_one_line(pair, tmp_path):
    cert, key = pair
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match=r"^tls_certificate: .*junk.pem with tls_private_key "
                                          r".* does not load \(.+\)$"):
        _cfg(transports=["udp", "tls"], tls_certificate=str(junk),
             tls_private_key=str(key)).validate()
    _cfg(transports=["udp", "tls"], tls_certificate=str(cert), tls_private_key=str(key)
         ).validate()


def test_kamailio_listens_on_each_transport(pair, tmp_path):
    cert, key = pair
    cfg = _cfg(transports=["udp", "tcp", "tls"], tls_certificate=str(cert),
               tls_private_key=str(key), workers=2)
    text = render_config(cfg, runtime_dir=tmp_path, mpath="/m")
    assert "listen=udp:127.0.0.1:5070\nlisten=tcp:127.0.0.1:5070\nlisten=tls:127.0.0.1:5071" in text
    assert "disable_tcp=no" in text and 'loadmodule "tls.so"' in text
    assert f"certificate = {cert}" in (tmp_path / "tls.cfg").read_text()
    udp_only = render_config(_cfg(transports=["udp"], workers=2), runtime_dir=tmp_path,
                             mpath="/m")
    assert "disable_tcp=yes" in udp_only and "enable_tls=no" in udp_only
    assert "{{" not in udp_only


def test_a_taken_tcp_port_is_named(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = _cfg(listen_port=port, transports=["udp", "tcp"])
        assert ("sip.listen_port", "tcp", port) in dialer_listeners(cfg)
        with pytest.raises(ConfigError, match=f"sip.listen_port: 127.0.0.1:{port}/tcp is not "
                                              "free"):
            check_sip_ports(cfg)
