"""The digest check on the dialer's INVITEs: stateless nonces any worker can verify."""

import hashlib

import pytest

from agent.config import build
from agent.errors import ConfigError
from agent.sip.config import SipConfig
from agent.sip.dialer_auth import NONCE_LIFE_S, DialerAuth, DigestCheck

AUTH = DialerAuth(username="pbx", password="pw", realm="ema")


def _md5(text):
    return hashlib.md5(text.encode()).hexdigest()


def _answer(challenge, *, password="pw", uri="sip:1@agent", qop=False):
    nonce = challenge.split('nonce="')[1].split('"')[0]
    ha1, ha2 = _md5(f"pbx:ema:{password}"), _md5(f"INVITE:{uri}")
    if qop:
        resp = _md5(f"{ha1}:{nonce}:00000001:abc:auth:{ha2}")
        extra = ', qop=auth, nc=00000001, cnonce="abc"'
    else:
        resp, extra = _md5(f"{ha1}:{nonce}:{ha2}"), ""
    return (f"INVITE {uri} SIP/2.0\r\nProxy-Authorization: Digest username=\"pbx\", "
            f'realm="ema", nonce="{nonce}", uri="{uri}", response="{resp}"{extra}\r\n\r\n')


def test_a_right_answer_passes_at_any_worker_sharing_the_key():
    issuer, other = DigestCheck(AUTH, b"k" * 16), DigestCheck(AUTH, b"k" * 16)
    challenge = issuer.challenge(now=1000.0)
    assert challenge.startswith('Digest realm="ema", nonce="1000.')
    assert other.verify(_answer(challenge), now=1010.0) == "ok"
    assert other.verify(_answer(challenge, qop=True), now=1010.0) == "ok"


@pytest.mark.parametrize(("msg", "verdict"), [
    ("INVITE sip:1@agent SIP/2.0\r\n\r\n", "missing"),
    ("INVITE sip:1@agent SIP/2.0\r\nProxy-Authorization: Basic eA==\r\n\r\n", "missing"),
])
def test_no_digest_is_missing(msg, verdict):
    assert DigestCheck(AUTH).verify(msg) == verdict


def test_an_answer_in_the_same_second_passes():
    """The nonce's time is rounded down: an answer within the second of the challenge is
    not 'from the future' (it was, with rounding to nearest, half the time)."""
    check = DigestCheck(AUTH, b"k" * 16)
    assert check.verify(_answer(check.challenge(now=1000.6)), now=1000.7) == "ok"
    assert check.verify(_answer(check.challenge())) == "ok"


def test_wrong_password_forged_nonce_and_old_nonce():
    check = DigestCheck(AUTH, b"k" * 16)
    challenge = check.challenge(now=1000.0)
    assert check.verify(_answer(challenge, password="nope"), now=1001.0) == "bad"
    assert DigestCheck(AUTH, b"x" * 16).verify(_answer(challenge), now=1001.0) == "bad"
    assert check.verify(_answer(challenge), now=1000.0 + NONCE_LIFE_S + 1) == "stale"
    code, _, headers = check.refusal(_answer(challenge), "c")  # stale by the real clock
    assert code == 407 and "stale=true" in headers["Proxy-Authenticate"]


def test_a_username_without_password_is_one_line():
    with pytest.raises(ConfigError, match="dialer_auth.password: required"):
        build(SipConfig, {"dialer_auth": {"username": "pbx"}}).validate()
