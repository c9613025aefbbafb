"""The review queue, ``/dashboard/review``: announcements heard on calls that matched nothing
in the library, to be listened to and labelled; and the labels given so far, to edit or undo.

Repeats of one announcement are already one entry (the library groups them by
fingerprint and counts them). The library keeps, per entry, the carrier it was first
heard on and the last call; the carriers and routes of the hearings in between are not
kept, so the page shows those two.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.api.dashboard.layout import Links, attr, code, page, scroll, text, when
from agent.store.library import Entry
from agent.store.records import CallRecord

HEARINGS_GAP = ("The library keeps the carrier an announcement was first heard on and its "
                "last call, not every call it was heard on: the carriers and routes in between "
                "are not shown.")
SCOPE_NOTE = ("Carrier: the carrier that plays it, kept with the entry; matching uses every "
              "entry whatever its carrier.")
DONE = {
    "labelled": "Entry {id} is now known: later calls that play it get its code.",
    "edited": "Entry {id} was changed.",
    "unlabelled": "Entry {id} is back in the review queue.",
    "removed": "Entry {id} was removed from the library.",
}


@dataclass(frozen=True, slots=True)
class Heard:
    """A library entry with the last call it was heard on, if the store still has it."""

    entry: Entry
    last_call: CallRecord | None


def _player(entry_id: int, links: Links) -> str:
    src = links.href(f"/dashboard/review/{entry_id}/audio.wav")
    return f'<audio controls preload="none" src="{src}"></audio>'


def _action(entry_id: int, action: str, links: Links) -> str:
    return links.href(f"/dashboard/review/{entry_id}/{action}")


def _meaning_fields(entry: Entry) -> str:
    """Code, reason, Q.850 and carrier inputs, filled with what ``entry`` has."""
    def value(v: object) -> str:
        return "" if v is None else attr(v)

    return (
        '<label>SIP code<input type="number" name="code" min="400" max="699" required '
        f'value="{value(entry.sip_code)}"></label>'
        '<label>reason<input type="text" name="reason" required maxlength="200" '
        f'placeholder="e.g. subscriber switched off" value="{value(entry.reason)}"></label>'
        '<label>Q.850<input type="number" name="q850" min="1" max="127" '
        f'value="{value(entry.q850_cause)}"></label>'
        '<label>scope: carrier<input type="text" name="carrier" maxlength="100" '
        f'placeholder="any carrier" value="{value(entry.carrier)}"></label>'
    )


def _button_form(entry_id: int, action: str, label: str, links: Links) -> str:
    return (f'<form class="inline" method="post" action="{_action(entry_id, action, links)}">'
            f'<button type="submit">{text(label)}</button></form>')


def _heard_on(h: Heard, links: Links) -> str:
    first = f"first: {text(h.entry.carrier)}"
    if h.entry.call_id is None:
        return first
    call = h.last_call
    if call is None:
        return f"{first}<br>last call: {text(h.entry.call_id)} <span class=muted>(pruned)</span>"
    return (f'{first}<br>last: <a href="{links.call(call.call_id)}">{text(call.call_id)}</a> '
            f"({text(call.carrier)}, route {text(call.route)})")


def _meaning_form(e: Entry, action: str, button: str, links: Links) -> str:
    """The code/reason/Q.850/carrier form that labels (or edits) entry ``e``."""
    return (f'<form class="label" method="post" action="{_action(e.id, action, links)}">'
            f'{_meaning_fields(e)}<button type="submit">{button}</button></form>')


def _queue(unknown: list[Heard], links: Links) -> str:
    if not unknown:
        return ("<h2>Unknown announcements</h2><p class=muted>None waiting: every "
                "announcement heard matched the library (or none was heard).</p>")
    rows = []
    for h in unknown:
        e = h.entry
        form = _meaning_form(e, "label", "Label", links)
        rows.append(
            f'<tr id="entry-{e.id}"><td class=n>{e.id}</td><td class=n>{e.count}×</td>'
            f"<td>{when(e.last_seen)}</td><td class=n>{e.duration_s:.1f} s</td>"
            f"<td class=id>{_heard_on(h, links)}</td><td>{_player(e.id, links)}</td>"
            f"<td>{form}{_button_form(e.id, 'remove', 'Discard', links)}</td></tr>")
    return ("<h2>Unknown announcements</h2>"
            "<p class=muted>Most heard first. Listen, then give each the SIP code it means.</p>"
            + scroll("<table><tr><th>entry</th><th>heard</th><th>last heard (UTC)</th>"
                     "<th>length</th><th>carriers / calls</th><th>audio</th>"
                     f"<th>label</th></tr>{''.join(rows)}</table>")
            + f'<p class="note">{HEARINGS_GAP} {SCOPE_NOTE}</p>')


def _labelled(labelled: list[Heard], other_known: int, links: Links) -> str:
    others = (f"<p class=muted>{other_known} other known announcements were added from files "
              "(<code>early-media-agent library list</code>).</p>" if other_known else "")
    if not labelled:
        return f"<h2>Labelled from calls</h2><p class=muted>None yet.</p>{others}"
    rows = []
    for h in labelled:
        e = h.entry
        form = _meaning_form(e, "edit", "Save", links)
        rows.append(
            f'<tr id="entry-{e.id}"><td class=n>{e.id}</td><td class=n>{code(e.sip_code)}</td>'
            f"<td>{text(e.reason)}</td><td class=n>{e.count}×</td>"
            f"<td class=id>{_heard_on(h, links)}</td><td>{_player(e.id, links)}</td>"
            f"<td>{form}{_button_form(e.id, 'unlabel', 'Back to the queue', links)} "
            f"{_button_form(e.id, 'remove', 'Remove', links)}</td></tr>")
    return ("<h2>Labelled from calls</h2>"
            + scroll("<table><tr><th>entry</th><th>code</th><th>reason</th><th>heard</th>"
                     "<th>carriers / calls</th><th>audio</th><th>change</th></tr>"
                     f"{''.join(rows)}</table>") + others)


def _banner(done: tuple[str, int] | None, error: str | None, links: Links) -> str:
    if error is not None:
        return f'<p class="error">{text(error)}</p>'
    if done is None or done[0] not in DONE:
        return ""
    action, entry_id = done
    undo = (" " + _button_form(entry_id, "unlabel", "Undo", links)
            if action == "labelled" else "")
    return f'<div class="done">{text(DONE[action].format(id=entry_id))}{undo}</div>'


def render_review(*, unknown: list[Heard], labelled: list[Heard], other_known: int,
                  links: Links, location: str | None, done: tuple[str, int] | None = None,
                  error: str | None = None) -> str:
    """The review page as one HTML string.

    Parameters
    ----------
    unknown : list of Heard
        Unknown entries, most heard first.
    labelled : list of Heard
        Known entries that were heard on calls (labelled here or with the CLI).
    other_known : int
        How many known entries were added from files (not listed).
    location : str or None
        Where the library is; None when the agent has no library (the page says so).
    done, error
        What the last form did (action, entry id), or why it was refused.
    """
    if location is None:
        body = ("<h1>Review queue</h1><p class=note>The fingerprint library is turned off "
                "(<code>fingerprint.enabled: false</code>), so no announcement is kept for "
                "review.</p>")
    else:
        body = (f"<h1>Review queue</h1><p class=muted>Library: {text(location)}</p>"
                + _banner(done, error, links) + _queue(unknown, links)
                + _labelled(labelled, other_known, links))
    return page(title="Review queue", body=body, links=links, active="/dashboard/review")
