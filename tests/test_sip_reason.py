"""Reason header parsing (RFC 3326 / RFC 6432) on header values as proxies send them."""

from __future__ import annotations

import pytest

from agent.sip.reason import Reason, format_reason, parse_reasons, q850_cause, verdict_headers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('Q.850;cause=17;text="User busy"', [Reason("Q.850", 17, "User busy")]),
        ('Q.850 ; cause = 16 ; text = "Normal call clearing"',
         [Reason("Q.850", 16, "Normal call clearing")]),
        ("Q.850;cause=31", [Reason("Q.850", 31, None)]),
        ('SIP;cause=480;text="No answer", Q.850;cause=19',
         [Reason("SIP", 480, "No answer"), Reason("Q.850", 19, None)]),
        ('Q.850;text="a, b; c";cause=1', [Reason("Q.850", 1, "a, b; c")]),
        ('Q.850;cause=21;text="say \\"no\\""', [Reason("Q.850", 21, 'say "no"')]),
        ("Reason: Q.850;cause=34", [Reason("Q.850", 34, None)]),
        ("q.850;CAUSE=18", [Reason("q.850", 18, None)]),
        ("Q.850;cause=abc", [Reason("Q.850", None, None)]),
        ('Q.850;cause=20;text="unterminated', [Reason("Q.850", 20, "unterminated")]),
        ("", []),
        (";;;", []),
    ],
)
def test_parse_reasons_reads_captured_values(value, expected):
    assert parse_reasons(value) == expected


def test_parse_reasons_reads_several_header_lines_in_order():
    values = ["SIP ;cause=200 ;text=\"Call completed elsewhere\"", "Q.850;cause=26"]
    assert [r.cause for r in parse_reasons(values)] == [200, 26]


def test_q850_cause_skips_other_protocols():
    assert q850_cause(['SIP;cause=503', 'Q.850;cause=41;text="Temporary failure"']) == 41
    assert q850_cause(["SIP;cause=503"]) is None


@pytest.mark.parametrize(
    ("cause", "text", "expected"),
    [
        (17, "User busy", 'Q.850;cause=17;text="User busy"'),
        (1, None, "Q.850;cause=1"),
        (20, 'say "hi" \\ bye', 'Q.850;cause=20;text="say \\"hi\\" \\\\ bye"'),
        (18, "line\r\nbreak", 'Q.850;cause=18;text="linebreak"'),
    ],
)
def test_format_reason_escapes_and_round_trips(cause, text, expected):
    formatted = format_reason(cause=cause, text=text)
    assert formatted == expected
    [parsed] = parse_reasons(formatted)
    assert parsed.cause == cause
    assert parsed.text == (text.replace("\r\n", "") if text else None)


def test_a_verdict_carries_the_carrier_code_and_the_agents_reason() -> None:
    headers = verdict_headers(code_header="X-Carrier-Final-Code", carrier_code=480, q850=18,
                              text="no answer", carrier_reason="Q.850;cause=20")
    assert headers == {"X-Carrier-Final-Code": "480", "Reason": 'Q.850;cause=18;text="no answer"'}


def test_a_verdict_without_a_cause_keeps_the_carriers_reason_or_none() -> None:
    kw = {"code_header": "X-Orig", "carrier_code": 486, "q850": None, "text": "busy"}
    assert verdict_headers(**kw, carrier_reason="SIP;cause=486") == {
        "X-Orig": "486", "Reason": "SIP;cause=486"}
    assert verdict_headers(**kw, carrier_reason=None) == {"X-Orig": "486"}
