import pytest

from agent.config import build
from agent.decide import CallDecision, DecisionTable, load_table
from agent.errors import ConfigError
from agent.labels import Decision, LibraryMatch, ToneEvent


@pytest.fixture(scope="module")
def table():
    return load_table()


def test_shipped_table_maps_every_class(table):
    assert {c: o.sip_code for c, o in table.classes.items()} == {
        "announcement": 480, "ringback": 480, "music": 480, "silence": 408}


@pytest.mark.parametrize(
    "label,code", [("ringback", 480), ("music", 480), ("silence", 408)])
def test_settled_class_gives_its_code(table, label, code):
    d = CallDecision(table)
    d.on_classifier(Decision(label, 3.0))
    assert d.inferred.sip_code == code and d.inferred.source == "classifier"


def test_announcement_waits_for_the_library_then_falls_back(table):
    d = CallDecision(table)
    d.on_classifier(Decision("announcement", 2.0))
    assert d.inferred is None
    d.on_matcher_gave_up(6.0)
    assert d.inferred.sip_code == 480 and d.inferred.q850_cause == 20


def test_announcement_without_library_decides_at_once(table):
    d = CallDecision(table, fingerprint_enabled=False)
    d.on_classifier(Decision("announcement", 2.0))
    assert d.inferred.sip_code == 480


@pytest.mark.parametrize(
    "code,sip,q850", [("VC", 404, 1), ("IC", 410, 22), ("NC", 503, 34), ("RO", 484, 28),
                      ("ITU", 404, 1)])
def test_sit_codes_map_per_table(table, code, sip, q850):
    d = CallDecision(table)
    d.on_tone(ToneEvent("sit", 0.0, 0.9, sit_code=code))
    assert (d.inferred.sip_code, d.inferred.q850_cause, d.inferred.source) == (sip, q850, "tone")


def test_busy_tone_beats_a_ringback_class(table):
    d = CallDecision(table)
    d.on_classifier(Decision("ringback", 2.0))
    d.on_tone(ToneEvent("busy", 0.0, 1.2, country="us"))
    assert d.inferred.sip_code == 486 and d.inferred.q850_cause == 17
    d.on_classifier(Decision("silence", 5.0))
    assert d.inferred.sip_code == 486


def test_library_match_beats_sit_and_takes_reverse_q850(table):
    d = CallDecision(table)
    d.on_tone(ToneEvent("sit", 0.0, 1.0, sit_code="VC"))
    d.on_classifier(Decision("announcement", 3.0))
    d.on_match(LibraryMatch(entry_id=7, sip_code=486, reason="user busy", score=0.97,
                            detected_s=3.0))
    inf = d.inferred
    assert (inf.sip_code, inf.q850_cause, inf.source) == (486, 17, "fingerprint")
    kinds = [e["detector"] for e in inf.as_json()["evidence"]]
    assert kinds == ["tone", "classifier", "fingerprint"]


def test_fax_tone_is_evidence_not_a_decision(table):
    d = CallDecision(table)
    d.on_tone(ToneEvent("fax_cng", 0.0, 1.0))
    assert d.inferred is None and d.evidence[0]["kind"] == "fax_cng"


def test_dsp_ringback_alone_decides_but_a_class_overrides_it(table):
    d = CallDecision(table)
    d.on_tone(ToneEvent("ringback", 0.0, 2.5, country="de"))
    assert d.inferred.source == "tone" and d.inferred.sip_code == 480
    d.on_classifier(Decision("silence", 4.0))
    assert d.inferred.sip_code == 408


def test_class_change_rederives_the_code(table):
    d = CallDecision(table, fingerprint_enabled=False)
    d.on_classifier(Decision("silence", 3.0))
    d.on_classifier(Decision("announcement", 5.0))
    assert d.inferred.sip_code == 480 and d.inferred.q850_cause == 20


def test_a_busy_tone_under_a_ringback_class_says_the_tone_drove_the_486(table):
    d = CallDecision(table)
    d.on_classifier(Decision("ringback", 2.0))
    d.on_tone(ToneEvent("busy", 0.0, 1.2, country="us"))
    assert (d.inferred.sip_code, d.inferred.basis) == (486, "busy tone")
    assert d.inferred.as_json()["basis"] == "busy tone"


@pytest.mark.parametrize(
    "feed,basis",
    [
        (lambda d: d.on_classifier(Decision("silence", 3.0)), "class silence"),
        (lambda d: (d.on_classifier(Decision("announcement", 2.0)), d.on_matcher_gave_up(6.0)),
         "class announcement, not in the library"),
        (lambda d: d.on_tone(ToneEvent("congestion", 0.0, 1.0)), "congestion tone"),
        (lambda d: d.on_tone(ToneEvent("sit", 0.0, 1.0, sit_code="VC")), "SIT VC"),
        (lambda d: d.on_tone(ToneEvent("ringback", 0.0, 2.5, country="de")), "ringback tone"),
        (lambda d: d.on_match(LibraryMatch(entry_id=7, sip_code=486, reason="user busy",
                                           score=0.97, detected_s=3.0)),
         "library entry 7 (score 0.97)"),
    ],
)
def test_every_inference_names_what_drove_it(table, feed, basis):
    d = CallDecision(table)
    feed(d)
    assert d.inferred.basis == basis


@pytest.mark.parametrize(
    "patch,message",
    [
        ({"classes": {"ringback": {"sip_code": 200, "reason": "x"}}}, "sip_code: 200"),
        ({"classes": {"ringback": {"sip_code": 480, "reason": "x", "q850_cause": 300}}},
         "q850_cause: 300"),
        ({"classes": {"ringing": {"sip_code": 480, "reason": "x"}}}, "classes.ringing"),
        ({"tones": {}}, "tones.busy"),
    ],
)
def test_bad_table_names_the_key(patch, message):
    base = {
        "classes": {c: {"sip_code": 480, "reason": c} for c in
                    ("announcement", "ringback", "music", "silence")},
        "tones": {t: {"sip_code": 486, "reason": t} for t in ("busy", "congestion")},
        "sit": {},
    }
    for k, v in patch.items():
        base[k] = {**base[k], **v} if k == "classes" else v
    with pytest.raises(ConfigError, match=message):
        build(DecisionTable, base, "sip_codes.yaml")
