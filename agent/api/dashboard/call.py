"""One call's page, ``/dashboard/calls/{call_id}``: what the carrier sent, what the agent
inferred and why, second by second.

The SIP part is rebuilt from the events the store keeps (provisional and final codes, the
code the dialer got, whether it was rewritten): the store does not keep the SIP messages
themselves, so there are no headers, Reason values or per-message times to show.
"""

from __future__ import annotations

import json
from typing import Any

from agent.api.dashboard.charts import CLASS_COLOURS, second_strip
from agent.api.dashboard.layout import (
    SIP_REASONS,
    Links,
    page,
    scroll,
    text,
    when,
)
from agent.labels import LABELS
from agent.store.records import FINAL_STATES, CallRecord

#: What the page says about the audio: the worker deletes its tap after the call.
AUDIO_GAP = ("The early-media audio is not kept after the call (the worker deletes its "
             "recording seconds after the call ends), so there is no player here. An "
             "announcement that matched nothing keeps its audio in the review queue.")
SIP_GAP = ("Rebuilt from the events the store keeps, in the order they were stored. The SIP "
           "messages themselves (headers, Reason values, times of each message) are not "
           "stored; an INVITE is implied by the call record.")


def _phrase(value: int | None) -> str:
    if value is None:
        return text(None)
    return f"{value} {text(SIP_REASONS.get(value, ''))}".rstrip()


def _number(value: Any, fmt: str = "{:g}") -> str:
    return text(None) if value is None else fmt.format(value)


def _json(item: dict[str, Any]) -> str:
    """An evidence item but its detector, as escaped compact JSON."""
    rest = {k: v for k, v in item.items() if k != "detector"}
    return f"<code>{text(json.dumps(rest, sort_keys=True))}</code>"


def _by_detector(items: list[dict[str, Any]], *detectors: str) -> list[dict[str, Any]]:
    return [e for e in items if e.get("detector") in detectors]


def _dialer_outcome(call: CallRecord) -> dict[str, Any] | None:
    """The last SIP event that says what the dialer received."""
    for item in reversed(_by_detector(call.evidence, "sip")):
        if "dialer_code" in item or "rejected" in item:
            return item
    return None


def _verdict(call: CallRecord) -> str:
    inf = call.inferred
    sent = call.carrier_final_code
    rows = [f"<tr><th>carrier sent</th><td>{_phrase(sent)}</td></tr>"]
    if inf is not None:
        basis = inf.as_json().get("basis")
        cause = f", Q.850 cause {inf.q850_cause}" if inf.q850_cause is not None else ""
        rows.append(
            f"<tr><th>agent inferred</th><td>{_phrase(inf.sip_code)} &mdash; "
            f"{text(inf.reason)}{text(cause)} <span class=muted>(from the {text(inf.source)}"
            f"{'; ' + text(basis) if basis else ''})</span></td></tr>")
    else:
        rows.append(f"<tr><th>agent inferred</th><td>{text(None)} "
                    f"{'answered: no failure to infer' if call.answered else ''}</td></tr>")
    outcome = _dialer_outcome(call)
    if outcome is not None:
        got = outcome.get("dialer_code", outcome.get("rejected"))
        how = ("rewritten by the agent" if outcome.get("rewritten") else
               "rejected by the agent" if "rejected" in outcome else
               "after the agent's worker failed" if "agent_failure" in outcome else "relayed")
        rows.append(f"<tr><th>dialer got</th><td>{_phrase(got)} "
                    f"<span class=muted>({text(how)})</span></td></tr>")
    if sent is not None and sent >= 300 and inf is not None:
        flag = ('<span class="flag ok">the carrier\'s code matches</span>'
                if inf.sip_code == sent else
                f'<span class="flag lie">sent {sent}, really {inf.sip_code}</span>')
        rows.append(f"<tr><th>honest?</th><td>{flag}</td></tr>")
    return "<h2>Verdict</h2>" + scroll(f"<table>{''.join(rows)}</table>")


def _facts(call: CallRecord) -> str:
    facts = [("Call-ID", text(call.call_id)), ("correlation id", text(call.correlation_id)),
             ("carrier", text(call.carrier)), ("route", text(call.route)),
             ("state", text(call.state)), ("started", when(call.started_at) + " UTC"),
             ("first decided", when(call.first_decided_at)),
             ("decided", when(call.decided_at))]
    return '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>"


def _seconds(call: CallRecord) -> str:
    if not call.seconds:
        return "<h2>Per second</h2><p class=muted>No second of early media was classified.</p>"
    marks = [(d.at_s, f"decision: {d.label}") for d in call.decisions]
    marks += [(float(e.get("at_s", 0.0)), f"tone: {e.get('kind')}")
              for e in _by_detector(call.evidence, "tone")]
    strip = second_strip([(s.t, s.label, s.p) for s in call.seconds], marks=marks)
    head = "".join(f"<th>p({name})</th>" for name in LABELS)
    body = "".join(
        f"<tr><td class=n>{s.t}–{s.t + 1}</td><td><span class=sw style=\"background:"
        f'{CLASS_COLOURS.get(s.label, "#000")}"></span>{text(s.label)}</td>'
        + "".join(f"<td class=n>{s.p.get(name, 0.0):.2f}</td>" for name in LABELS) + "</tr>"
        for s in call.seconds)
    return (f"<h2>Per second</h2>{strip}<details><summary>Per-second table "
            f"({len(call.seconds)} s)</summary>"
            + scroll(f"<table><tr><th>second</th><th>class</th>{head}</tr>{body}</table>")
            + "</details>")


def _decisions(call: CallRecord) -> str:
    if not call.decisions:
        return "<h2>Decision history</h2><p class=muted>No class decision was made.</p>"
    body = "".join(f"<tr><td class=n>{i}</td><td>{text(d.label)}</td>"
                   f"<td class=n>{d.at_s:.2f}</td></tr>"
                   for i, d in enumerate(call.decisions, 1))
    return ("<h2>Decision history</h2>" + scroll(
        f"<table><tr><th>#</th><th>class</th><th>decided at (s of audio)</th></tr>{body}"
        "</table>"))


def _tones(call: CallRecord) -> str:
    tones = _by_detector(call.evidence, "tone")
    if not tones:
        return "<h2>Tone events</h2><p class=muted>No call-progress tone was detected.</p>"
    body = "".join(
        f"<tr><td>{text(e.get('kind'))}</td><td>{text(e.get('sit_code'))}</td>"
        f"<td>{text(e.get('country'))}</td><td class=n>{_number(e.get('start_s'))}</td>"
        f"<td class=n>{_number(e.get('at_s'))}</td>"
        f"<td class=n>{_number(e.get('score'), '{:.2f}')}</td></tr>" for e in tones)
    return ("<h2>Tone events</h2>" + scroll(
        "<table><tr><th>tone</th><th>SIT</th><th>plan</th><th>started (s)</th>"
        f"<th>detected (s)</th><th>score</th></tr>{body}</table>"))


def _matches(call: CallRecord, links: Links) -> str:
    found = [e for e in _by_detector(call.evidence, "fingerprint") if "entry_id" in e]
    looked = call.inferred is not None and any(
        e.get("detector") == "fingerprint" and e.get("match", True) is None
        for e in call.inferred.evidence)
    if not found:
        what = ("looked up in the library; nothing matched" if looked else
                "no announcement was looked up in the library")
        return f"<h2>Fingerprint matches</h2><p class=muted>None: {what}.</p>"
    review = links.href("/dashboard/review")
    body = "".join(
        f"<tr><td class=n><a href=\"{review}#entry-{text(e.get('entry_id'))}\">"
        f"{text(e.get('entry_id'))}</a></td>"
        f"<td>{_phrase(e.get('sip_code'))}</td><td>{text(e.get('reason'))}</td>"
        f"<td class=n>{_number(e.get('score'), '{:.2f}')}</td>"
        f"<td class=n>{_number(e.get('at_s'))}</td></tr>" for e in found)
    return ("<h2>Fingerprint matches</h2>" + scroll(
        "<table><tr><th>library entry</th><th>code</th><th>reason</th><th>score</th>"
        f"<th>at (s of audio)</th></tr>{body}</table>"))


def _sip_rows(call: CallRecord) -> list[tuple[str, str, str]]:
    """(direction, message, note) rows, in stored order."""
    rows: list[tuple[str, str, str]] = [("dialer → agent", "INVITE", "implied")]
    events = _by_detector(call.evidence, "carrier", "sip")
    rejected = any("rejected" in e for e in events)
    if not rejected:
        rows.append(("agent → carrier", "INVITE", "implied"))
    final_seen = False
    for e in events:
        if "provisional" in e:
            rows.append(("carrier → agent", _phrase(e["provisional"]), ""))
        elif "early_media" in e:
            rows.append(("carrier → agent", "early media (RTP)", text(e["early_media"])))
        elif "failover" in e:
            rows.append(("carrier → agent", _phrase(e["failover"]),
                         f"next address {text(e.get('next_address'))}"))
        elif "answered" in e:
            note = (f"code {e['inferred_before_answer']} inferred before it was dropped"
                    if e.get("inferred_before_answer") else "")
            rows.append(("carrier → agent", _phrase(e["answered"]), text(note)))
            final_seen = True
        elif "rejected" in e:
            rows.append(("agent → dialer", _phrase(e["rejected"]),
                         f"rejected: {text(e.get('reason'))}"))
        elif "dialer_code" in e:
            if not final_seen and e.get("carrier_code") is not None:
                rows.append(("carrier → agent", _phrase(e["carrier_code"]), "final"))
                final_seen = True
            note = ("worker failed: " + text(e["agent_failure"]) if "agent_failure" in e
                    else "rewritten with the inferred code" if e.get("rewritten") else "relayed")
            rows.append(("agent → dialer", _phrase(e["dialer_code"]), note))
    if not final_seen and call.carrier_final_code is not None and not rejected:
        rows.append(("carrier → agent", _phrase(call.carrier_final_code), "final"))
    return rows


def _sip(call: CallRecord) -> str:
    body = "".join(f"<tr><td class=nw>{d}</td><td>{m}</td><td class=muted>{n}</td></tr>"
                   for d, m, n in _sip_rows(call))
    return ("<h2>SIP, both legs</h2>" + scroll(
        f"<table><tr><th>direction</th><th>message</th><th></th></tr>{body}</table>")
        + f'<p class="note">{SIP_GAP}</p>')


def _fas(call: CallRecord) -> str:
    if call.fas is None:
        return ""
    verdict = "suspected" if call.fas.get("suspected") else "not suspected"
    items = call.fas.get("evidence") or []
    body = "".join(f"<tr><td>{_json(e)}</td></tr>" for e in items)
    table = scroll(f"<table><tr><th>evidence after the 200 OK</th></tr>{body}</table>") \
        if items else ""
    return f"<h2>False answer check</h2><p>{text(verdict)}</p>{table}"


def _cited(call: CallRecord) -> str:
    if call.inferred is None or not call.inferred.evidence:
        return ""
    body = "".join(f"<tr><td>{text(e.get('detector'))}</td><td>{_json(e)}</td></tr>"
                   for e in call.inferred.evidence)
    return ("<h2>Evidence the decision cites</h2>" + scroll(
        f"<table><tr><th>detector</th><th>event</th></tr>{body}</table>"))


def render_call(call: CallRecord, *, links: Links) -> str:
    """The call page as one HTML string; it reloads itself until the call is final."""
    body = (
        f"<h1>Call {text(call.call_id)}</h1>"
        + _facts(call) + _verdict(call) + _seconds(call) + _decisions(call) + _tones(call)
        + _matches(call, links) + _sip(call) + _fas(call) + _cited(call)
        + f'<h2>Audio</h2><p class="note">{AUDIO_GAP}</p>'
    )
    return page(title=f"Call {call.call_id}", body=body, links=links,
                refresh=call.state not in FINAL_STATES)


def render_missing(call_id: str, *, links: Links) -> str:
    """The page of a Call-ID the store does not hold."""
    body = (f"<h1>No such call</h1><p>The store holds no call {text(call_id)!s} (by Call-ID "
            "or correlation id); it may be older than the retention.</p>"
            f'<p><a href="{links.href("/dashboard")}">Back to the overview</a></p>')
    return page(title="No such call", body=body, links=links)
