"""``early-media-agent library ...`` end to end on espeak-ng announcements."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.errors import UserError
from agent.fingerprint import cli

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

# Runs the library CLI the way agent.cli.main does (one-line error, exit status 2).
RUNNER = textwrap.dedent(
    """
    import argparse, sys
    from agent.errors import UserError
    from agent.fingerprint import cli
    parser = argparse.ArgumentParser(prog="early-media-agent")
    cli.register(parser.add_subparsers())
    args = parser.parse_args(sys.argv[1:])
    try:
        sys.exit(args.func(args))
    except UserError as exc:
        print(f"early-media-agent: error: {exc}", file=sys.stderr)
        sys.exit(2)
    """
)


def speak(path: Path, text: str) -> Path:
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def wavs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("wavs")
    return {
        "busy": speak(root / "busy.wav", "The person you are calling is busy at the moment. "
                                         "Please call again later."),
        "gone": speak(root / "gone.wav", "This number is no longer in service. Please consult "
                                         "your directory for the new number."),
        "short": speak(root / "short.wav", "No."),
    }


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def test_add_list_match_remove(tmp_path, wavs, capsys) -> None:
    lib = ["--library", str(tmp_path / "l.sqlite")]
    assert run("library", "add", str(wavs["busy"]), "--code", "486", "--reason", "user busy",
               "--q850", "17", "--carrier", "acme", "--lang", "en", *lib) == 0
    assert run("library", *lib, "list") == 0
    out = capsys.readouterr().out
    assert "486 user busy q850=17" in out and "carrier=acme" in out
    assert run("library", "match", str(wavs["busy"]), *lib) == 0
    assert "→ 486 user busy" in capsys.readouterr().out
    assert run("library", "match", str(wavs["gone"]), *lib) == 1
    assert run("library", "remove", "1", *lib) == 0
    assert run("library", "match", str(wavs["busy"]), *lib) == 1


def test_duplicate_add_names_the_existing_entry(tmp_path, wavs) -> None:
    lib = ["--library", str(tmp_path / "l.sqlite")]
    run("library", "add", str(wavs["gone"]), "--code", "404", "--reason", "gone", *lib)
    with pytest.raises(UserError, match="entry 1"):
        run("library", "add", str(wavs["gone"]), "--code", "410", "--reason", "gone", *lib)


@pytest.mark.parametrize("code", ["99", "200", "700", "48x", "4860"])
def test_bad_sip_code_is_rejected_by_the_parser(tmp_path, wavs, code) -> None:
    with pytest.raises(SystemExit):
        run("library", "add", str(wavs["busy"]), "--code", code, "--reason", "x",
            "--library", str(tmp_path / "l.sqlite"))


def test_non_audio_and_too_short_files_are_one_line_errors(tmp_path, wavs) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n" * 20)
    lib = ["--library", str(tmp_path / "l.sqlite")]
    for path, why in ((text, "not a readable audio file|malformed"), (wavs["short"], "too short")):
        proc = subprocess.run(
            [sys.executable, "-c", RUNNER, "library", "add", str(path), "--code", "404",
             "--reason", "x", *lib], capture_output=True, text=True,
        )
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1
        assert re.search(why, proc.stderr)
    assert run("library", "list", *lib) == 0


def test_corrupt_library_file_is_a_one_line_error(tmp_path, wavs) -> None:
    path = tmp_path / "l.sqlite"
    path.write_bytes(b"\x00garbage" * 500)
    proc = subprocess.run([sys.executable, "-c", RUNNER, "library", "list", "--library",
                           str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "not a library" in proc.stderr


def test_two_processes_adding_at_once_both_land(tmp_path, wavs) -> None:
    lib = ["--library", str(tmp_path / "l.sqlite")]
    procs = [
        subprocess.Popen([sys.executable, "-c", RUNNER, "library", "add", str(wavs[n]),
                          "--code", "480", "--reason", n, *lib],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n in ("busy", "gone")
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    from agent.fingerprint import open_library

    with open_library(tmp_path / "l.sqlite") as opened:
        assert sorted(e.reason for e in opened.entries()) == ["busy", "gone"]


def test_import_manifest_and_label_unknown(tmp_path, wavs, capsys) -> None:
    lib = ["--library", str(tmp_path / "l.sqlite")]
    manifest = tmp_path / "m.yaml"
    manifest.write_text(textwrap.dedent(f"""
        defaults: {{carrier: acme, lang: en}}
        entries:
          - {{file: {wavs['busy'].name}, code: 486, reason: user busy, q850: 17}}
          - {{file: {wavs['busy'].name}, code: 486, reason: same again}}
    """))
    assert run("library", "import", str(wavs["busy"].parent), "--manifest", str(manifest),
               *lib) == 0
    assert "imported 1, skipped 1" in capsys.readouterr().out

    from agent.audio.io import load_audio
    from agent.fingerprint import open_library

    with open_library(tmp_path / "l.sqlite") as opened:
        uid = opened.record_unknown(load_audio(wavs["gone"]), call_id="abc")
    assert run("library", "unknown", "list", *lib) == 0
    assert "call=abc" in capsys.readouterr().out
    assert run("library", "unknown", "label", str(uid), "--code", "410", "--reason", "gone",
               *lib) == 0
    assert run("library", "match", str(wavs["gone"]), *lib) == 0


def test_manifest_with_bad_code_names_the_entry(tmp_path, wavs) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(f"entries:\n  - {{file: {wavs['busy'].name}, code: 999, reason: x}}\n")
    with pytest.raises(UserError, match=r"entries\[0\].*SIP code"):
        run("library", "import", str(wavs["busy"].parent), "--manifest", str(manifest),
            "--library", str(tmp_path / "l.sqlite"))


def test_add_with_codec_renderings_indexes_more_hashes(tmp_path, wavs) -> None:
    pytest.importorskip("agent.corpus.channel")
    from agent.fingerprint import open_library

    plain, coded = tmp_path / "plain.sqlite", tmp_path / "coded.sqlite"
    run("library", "add", str(wavs["gone"]), "--code", "404", "--reason", "x",
        "--library", str(plain))
    run("library", "add", str(wavs["gone"]), "--code", "404", "--reason", "x",
        "--library", str(coded), "--index-codecs", "opus-8k,amr-nb")
    sizes = []
    for path in (plain, coded):
        with open_library(path) as lib:
            sizes.append(sum(len(b) for _, _, b in lib.store.fingerprints(kind="known")))
    assert sizes[1] > 1.3 * sizes[0]
    with pytest.raises(UserError, match="unknown codec 'g729'"):
        run("library", "add", str(wavs["busy"]), "--code", "404", "--reason", "x",
            "--library", str(coded), "--index-codecs", "g729")


def test_a_label_without_reason_takes_the_phrase_and_can_be_edited(tmp_path, wavs,
                                                                  capsys) -> None:
    """``unknown label --code 480`` once stored the reason "480", and nothing changed it."""
    lib = ["--library", str(tmp_path / "l.sqlite")]
    from agent.audio.io import load_audio
    from agent.fingerprint import open_library

    with open_library(tmp_path / "l.sqlite") as opened:
        uid = opened.record_unknown(load_audio(wavs["gone"]), call_id="abc")
    assert run("library", "unknown", "label", str(uid), "--code", "480", *lib) == 0
    assert "480 Temporarily Unavailable" in capsys.readouterr().out
    assert run("library", "edit", str(uid), "--reason", "subscriber switched off",
               "--q850", "20", *lib) == 0
    capsys.readouterr()
    assert run("library", "list", "--json", *lib) == 0
    entry = next(e for e in json.loads(capsys.readouterr().out) if e["id"] == uid)
    assert (entry["sip_code"], entry["reason"], entry["q850_cause"]) == (
        480, "subscriber switched off", 20)
    assert run("library", "edit", str(uid), "--code", "404", *lib) == 0
    assert "404 Not Found" in capsys.readouterr().out
    with pytest.raises(UserError, match="no known announcement"):
        run("library", "edit", "9999", "--code", "404", *lib)
