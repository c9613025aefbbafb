"""``early-media-agent library ...``: manage and query the announcement library.

Manifest for ``library import DIR --manifest FILE.yaml`` (paths relative to DIR)::

    defaults:            # optional, applied to every entry
      carrier: acme
      lang: en
    entries:
      - file: busy.wav
        code: 486
        reason: user busy
        q850: 17         # optional
      - file: switched-off.wav
        code: 480
        reason: subscriber switched off
        carrier: other   # overrides the default
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from agent.audio.io import load_audio
from agent.config import build, read_yaml
from agent.errors import UserError
from agent.fingerprint.config import FingerprintConfig
from agent.fingerprint.library import (
    Library,
    open_library,
    validate_q850,
    validate_sip_code,
)
from agent.reasons import reason_phrase
from agent.store.library import DuplicateAudioError, Entry

_INDEX_CODECS_HELP = ("also index the audio through these codecs, e.g. opus-8k,amr-nb "
                      "(better on Opus/AMR calls, slower to add, twice the index)")
_MANIFEST_KEYS = {"file", "code", "reason", "q850", "carrier", "lang"}


def _sip_code(text: str) -> int:
    if not text.isdigit() or len(text) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a 3-digit SIP code 400–699")
    code = int(text)
    if not 400 <= code <= 699:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a SIP failure code 400–699")
    return code


def _open(args: argparse.Namespace) -> Library:
    codecs = [c for c in (getattr(args, "index_codecs", None) or "").split(",") if c]
    config = build(FingerprintConfig, {"index_codecs": codecs}, "--index-codecs")
    return open_library(getattr(args, "library", None), config=config)


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _print_entries(entries: list[Entry], *, as_json: bool, unknown: bool) -> None:
    if as_json:
        print(json.dumps([e.as_json() for e in entries], indent=2))
        return
    if not entries:
        print("(no entries)")
        return
    for e in entries:
        if unknown:
            print(f"{e.id:>6}  heard {e.count:>4}×  last {_when(e.last_seen)}  "
                  f"{e.duration_s:5.1f}s  carrier={e.carrier or '-'}  call={e.call_id or '-'}")
        else:
            q850 = f" q850={e.q850_cause}" if e.q850_cause is not None else ""
            print(f"{e.id:>6}  {e.sip_code} {e.reason}{q850}  {e.duration_s:5.1f}s  "
                  f"carrier={e.carrier or '-'} lang={e.lang or '-'}  {e.name or ''}")


def _cmd_add(args: argparse.Namespace) -> int:
    samples = load_audio(args.file)
    with _open(args) as lib:
        entry_id = lib.add(
            samples, sip_code=args.code, reason=args.reason, q850_cause=args.q850,
            carrier=args.carrier, lang=args.lang, name=str(args.file),
        )
    print(f"added entry {entry_id}: {args.code} {args.reason} ({args.file})")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    with _open(args) as lib:
        _print_entries(lib.entries(kind="known"), as_json=args.json, unknown=False)
    return 0


def _cmd_match(args: argparse.Namespace) -> int:
    samples = load_audio(args.file)
    with _open(args) as lib:
        found = lib.match(samples, min_score=args.min_score)
    if found is None:
        print(f"{args.file}: no match")
        return 1
    print(json.dumps(found.as_json()) if args.json else
          f"{args.file}: entry {found.entry_id} → {found.sip_code} {found.reason} "
          f"(score {found.score:.3f})")
    return 0


def _cmd_remove(args: argparse.Namespace) -> int:
    with _open(args) as lib:
        lib.remove(args.id)
    print(f"removed entry {args.id}")
    return 0


def _manifest_entries(path: Path) -> list[dict[str, Any]]:
    data = read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise UserError(f"{path}: expected a mapping with an 'entries' list")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise UserError(f"{path}: defaults: expected a mapping")
    out = []
    for i, raw in enumerate(data["entries"]):
        where = f"{path}: entries[{i}]"
        if not isinstance(raw, dict):
            raise UserError(f"{where}: expected a mapping")
        item = {**defaults, **raw}
        unknown = sorted(set(item) - _MANIFEST_KEYS)
        if unknown:
            raise UserError(f"{where}.{unknown[0]}: unknown key")
        for key in ("file", "code", "reason"):
            if key not in item:
                raise UserError(f"{where}.{key}: required key is missing")
        try:
            validate_sip_code(item["code"])
            validate_q850(item.get("q850"))
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None
        out.append(item)
    return out


def _cmd_import(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    if not root.is_dir():
        raise UserError(f"{root}: not a directory")
    items = _manifest_entries(Path(args.manifest))
    for item in items:
        if not (root / str(item["file"])).is_file():
            raise UserError(f"{args.manifest}: {root / str(item['file'])}: no such file")
    added = skipped = 0
    with _open(args) as lib:
        for item in items:
            path = root / str(item["file"])
            try:
                entry_id = lib.add(
                    load_audio(path), sip_code=item["code"], reason=str(item["reason"]),
                    q850_cause=item.get("q850"), carrier=item.get("carrier"),
                    lang=item.get("lang"), name=str(path),
                )
            except DuplicateAudioError as exc:
                print(f"skipped {path}: {exc}")
                skipped += 1
                continue
            print(f"added entry {entry_id}: {item['code']} {item['reason']} ({path})")
            added += 1
    print(f"imported {added}, skipped {skipped} duplicate(s)")
    return 0


def _cmd_unknown_list(args: argparse.Namespace) -> int:
    with _open(args) as lib:
        _print_entries(lib.entries(kind="unknown"), as_json=args.json, unknown=True)
    return 0


def _cmd_unknown_label(args: argparse.Namespace) -> int:
    reason = args.reason or reason_phrase(args.code, str(args.code))
    with _open(args) as lib:
        lib.label_unknown(args.id, sip_code=args.code, reason=reason, q850_cause=args.q850)
    print(f"entry {args.id} is now known: {args.code} {reason}")
    return 0


def _cmd_edit(args: argparse.Namespace) -> int:
    with _open(args) as lib:
        entry = next((e for e in lib.entries(kind="known") if e.id == args.id), None)
        if entry is None:
            raise UserError(f"entry {args.id}: no known announcement with that id "
                            "(library list)")
        code: int = args.code if args.code is not None else int(entry.sip_code or 0)
        reason: str = (args.reason if args.reason is not None
                       else entry.reason or "" if args.code is None
                       else reason_phrase(code, str(code)))
        q850 = args.q850 if args.q850 is not None else entry.q850_cause
        lib.edit(args.id, sip_code=code, reason=reason, q850_cause=q850, carrier=args.carrier)
    print(f"entry {args.id}: {code} {reason}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``library`` command and its subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's parser must not reset a --library given before it.
    common.add_argument("--library", metavar="PATH", default=argparse.SUPPRESS,
                        help="library file or postgresql:// URL "
                             "(default: <data dir>/library.sqlite)")
    lib = sub.add_parser("library", help="manage the announcement fingerprint library",
                         parents=[common],
                         description="The library of known announcements (each with the "
                         "SIP code it means) and of unknown ones heard on calls, matched by "
                         "audio fingerprint.")
    cmds = lib.add_subparsers(dest="library_command", metavar="ACTION")
    cmds.required = True

    p = cmds.add_parser("add", parents=[common], help="add an announcement with its SIP code",
                        description="Fingerprint a recorded announcement and add it to the "
                        "library with the SIP code (and Q.850 cause) it means; calls that "
                        "play it get that code.")
    p.add_argument("file", type=Path, help="the announcement (WAV/OGG/MP3, any rate)")
    p.add_argument("--code", type=_sip_code, required=True, help="SIP failure code it means")
    p.add_argument("--reason", required=True, help='e.g. "user busy"')
    p.add_argument("--carrier", help="carrier that plays it (informational)")
    p.add_argument("--lang", help="language it is spoken in, e.g. en (informational)")
    p.add_argument("--q850", type=int, help="Q.850 cause value")
    p.add_argument("--index-codecs", metavar="LIST", help=_INDEX_CODECS_HELP)
    p.set_defaults(func=_cmd_add)

    p = cmds.add_parser("list", parents=[common], help="list known announcements",
                        description="List the known announcements: id, SIP code, reason, "
                        "length, carrier and language.")
    p.add_argument("--json", action="store_true", help="print a JSON array instead")
    p.set_defaults(func=_cmd_list)

    p = cmds.add_parser("match", parents=[common], help="identify an audio file",
                        description="Look a recording (2-3 s of an announcement is enough) "
                        "up in the library; exit status 1 when nothing matches.")
    p.add_argument("file", type=Path, help="the recording to identify")
    p.add_argument("--min-score", type=float, default=None,
                   help="calibrated score (0-1) a match needs (default: fingerprint.threshold, "
                        "0.5)")
    p.add_argument("--json", action="store_true", help="print the match as JSON")
    p.set_defaults(func=_cmd_match)

    p = cmds.add_parser("remove", parents=[common], help="delete an entry",
                        description="Delete a known or unknown announcement and its "
                        "fingerprints from the library.")
    p.add_argument("id", type=int, help="entry id (library list, library unknown list)")
    p.set_defaults(func=_cmd_remove)

    p = cmds.add_parser("edit", parents=[common], help="change what a known entry means",
                        description="Change a known announcement's SIP code, reason, Q.850 "
                        "cause or carrier; what is not given stays (a new code without a "
                        "reason takes that code's reason phrase). Later calls get the new "
                        "code.")
    p.add_argument("id", type=int, help="known entry id (library list)")
    p.add_argument("--code", type=_sip_code, help="SIP failure code it means")
    p.add_argument("--reason", help='e.g. "subscriber switched off"')
    p.add_argument("--q850", type=int, help="Q.850 cause value")
    p.add_argument("--carrier", help="carrier that plays it (informational); '' clears it")
    p.set_defaults(func=_cmd_edit)

    p = cmds.add_parser("import", parents=[common],
                        help="add many announcements listed in a YAML manifest",
                        description="Add every announcement a YAML manifest lists (the "
                        "format is below);\naudio already in the library is skipped.",
                        epilog=__doc__[__doc__.index("Manifest"):],
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", type=Path, help="directory the manifest's file paths are relative to")
    p.add_argument("--manifest", type=Path, required=True,
                   help="YAML: entries: [{file, code, reason, q850?, carrier?, lang?}]")
    p.add_argument("--index-codecs", metavar="LIST", help=_INDEX_CODECS_HELP)
    p.set_defaults(func=_cmd_import)

    unk = cmds.add_parser("unknown", parents=[common],
                          help="announcements heard on calls that matched nothing",
                          description="Announcements the agent heard on calls and could not "
                          "match, kept for ops to label: labelling one makes it known.")
    ucmds = unk.add_subparsers(dest="unknown_command", metavar="ACTION")
    ucmds.required = True
    p = ucmds.add_parser("list", parents=[common], help="list unknown announcements",
                         description="List the unknown announcements: id, how often and "
                         "when last heard, length, carrier and the call it came from.")
    p.add_argument("--json", action="store_true", help="print a JSON array instead")
    p.set_defaults(func=_cmd_unknown_list)
    p = ucmds.add_parser("label", parents=[common], help="give an unknown one its SIP code",
                         description="Make an unknown announcement known with the SIP code "
                         "it means; later calls that play it get that code.")
    p.add_argument("id", type=int, help="unknown entry id (library unknown list)")
    p.add_argument("--code", type=_sip_code, required=True, help="SIP failure code it means")
    p.add_argument("--reason", help='e.g. "subscriber switched off" (default: the '
                   "code's SIP reason phrase, e.g. Temporarily Unavailable)")
    p.add_argument("--q850", type=int, help="Q.850 cause value")
    p.set_defaults(func=_cmd_unknown_label)
