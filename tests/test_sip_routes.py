"""The route table: first match wins, every row reachable, every carrier known."""

import pytest

from agent.config import build
from agent.errors import ConfigError
from agent.sip.config import SipConfig
from agent.sip.routes import route_call

CARRIERS = {"acme": {"addresses": ["10.0.0.1:5060", "10.0.0.2:5060"]},
            "beta": {"addresses": ["gw.beta.example:5061"], "transport": "tls"}}


def _cfg(routes, carriers=CARRIERS, **kw):
    cfg = build(SipConfig, {"carriers": carriers, "routes": routes, **kw}, "sip")
    cfg.validate()
    return cfg


def test_first_match_wins_on_prefix_host_and_header():
    cfg = _cfg([{"name": "tagged", "header": "X-Carrier", "value": "beta", "carrier": "beta"},
                {"name": "uk", "prefix": "44", "carrier": "acme", "rewrite": True},
                {"name": "lab", "host": "lab.example", "carrier": "beta"},
                {"name": "rest", "carrier": "acme"}])
    invite = "INVITE sip:{}@{} SIP/2.0\r\n{}\r\n"
    pick = lambda user, host="h", extra="": route_call(cfg, invite.format(user, host, extra))  # noqa: E731
    assert pick("4420", extra="X-Carrier: Beta").route == "tagged"
    uk = pick("4420")
    assert (uk.route, uk.carrier, uk.rewrite) == ("uk", "acme", True)
    assert uk.uri("4420", 1) == "sip:4420@10.0.0.2:5060"
    lab = pick("1555", "LAB.example")
    assert lab.route == "lab"
    assert lab.uri("1555", 0) == "sip:1555@gw.beta.example:5061;transport=tls"
    rest = pick("1555")
    assert (rest.route, rest.rewrite) == ("rest", False)


def test_no_match_is_none_and_one_carrier_needs_no_table():
    cfg = _cfg([{"name": "uk", "prefix": "44", "carrier": "acme"}])
    assert route_call(cfg, "INVITE sip:1555@h SIP/2.0\r\n\r\n") is None
    plain = build(SipConfig, {"carrier": "10.9.9.9:5080"})
    plain.validate()
    target = route_call(plain, "INVITE sip:1555@h SIP/2.0\r\n\r\n")
    assert (target.route, target.carrier, target.addresses) == ("default", "default",
                                                                ("10.9.9.9:5080",))


@pytest.mark.parametrize(("routes", "carriers", "message"), [
    ([{"name": "a", "carrier": "nope"}], CARRIERS,
     r"sip.routes\[0\].carrier: nope is not in sip.carriers \(acme, beta\)"),
    ([{"name": "all", "carrier": "acme"}, {"name": "uk", "prefix": "44", "carrier": "beta"}],
     CARRIERS, r"sip.routes\[1\]: never used, routes\[0\] \(all\) takes every call"),
    ([{"name": "4", "prefix": "4", "carrier": "acme"},
      {"name": "44", "prefix": "44", "carrier": "beta"}],
     CARRIERS, r"sip.routes\[1\]: never used, routes\[0\] \(4\)"),
    ([{"name": "a", "carrier": "acme"}, {"name": "a", "prefix": "1", "carrier": "acme"}],
     CARRIERS, r"sip.routes\[1\].name: a is used twice"),
    ([], CARRIERS, "carriers: need sip.routes"),
    ([{"name": "a", "carrier": "acme"}], {}, "routes: need sip.carriers"),
    ([{"name": "a", "carrier": "acme"}], {"acme": {"addresses": ["nohostport"]}},
     "addresses: 'nohostport' is not host:port"),
    ([{"name": "a", "carrier": "acme"}], {"acme": {"addresses": ["h:5060"], "transport": "ws"}},
     "transport: 'ws' is not one of udp, tcp, tls"),
    ([{"name": "a", "header": "X-Carrier", "carrier": "acme"}], CARRIERS,
     "header and value: give both"),
])
def test_bad_tables_are_one_line_naming_the_key(routes, carriers, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(routes, carriers)


def test_later_prefix_after_a_longer_one_is_fine():
    cfg = _cfg([{"name": "44", "prefix": "44", "carrier": "beta"},
                {"name": "4", "prefix": "4", "carrier": "acme"}])
    assert route_call(cfg, "INVITE sip:4320@h SIP/2.0\r\n\r\n").route == "4"


def test_a_routes_unknown_tone_country_stops_the_config(tmp_path):
    import yaml

    from agent.settings import load_agent_config

    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"sip": {"carriers": CARRIERS, "routes": [
        {"name": "a", "carrier": "acme", "tone_countries": ["zz"]}]}}))
    with pytest.raises(ConfigError, match=r"sip.routes\[0\].tone_countries: 'zz' is not a "
                                          "country of the tone plans"):
        load_agent_config(path)
