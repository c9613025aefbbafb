"""``early-media-agent tones list|detect`` through the subcommand's own parser."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from agent.audio.io import write_wav
from agent.errors import UserError
from agent.tones import cli
from agent.tones.plan import load_tone_plans
from agent.tones.synth import na_sit_spec, render


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="early-media-agent")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_list_prints_countries_and_their_tones(capsys):
    assert _run(["tones", "list", "--country", "us"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("us")
    assert "busy        [480+620/500,0/500]" in out
    assert "sit" in out


def test_list_unknown_country_is_a_user_error():
    with pytest.raises(UserError, match="--country zz"):
        _run(["tones", "list", "--country", "zz"])


def test_detect_prints_json_lines_and_reports_bad_files(tmp_path, capsys):
    plans = load_tone_plans()
    x = np.concatenate([
        render(plans["us"].busy[0], duration_s=3.0, level_dbfs=-20.0),
        np.zeros(4000, np.float32),
        render(na_sit_spec("IC"), duration_s=1.5, level_dbfs=-25.0),
    ])
    good = tmp_path / "busy_sit.wav"
    write_wav(good, x)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    status = _run(["tones", "detect", str(bad), str(good), "--country", "us"])
    captured = capsys.readouterr()
    assert status == 1
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [(r["kind"], r["sit_code"]) for r in lines] == [("busy", None), ("sit", "IC")]
    assert all(r["file"] == str(good) for r in lines)
    assert lines[0]["country"] == "us"
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1 and "bad.wav" in errors[0]


def test_detect_all_good_files_exits_zero(tmp_path, capsys):
    silence = tmp_path / "silence.wav"
    write_wav(silence, np.zeros(8000, np.float32))
    assert _run(["tones", "detect", str(silence)]) == 0
    assert capsys.readouterr().out == ""


def test_the_iso_code_gb_names_the_plans_uk(capsys):
    assert _run(["tones", "list", "--country", "GB"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("uk")
    from agent.tones.config import ToneConfig
    from agent.tones.detect import ToneDetector

    ToneDetector(load_tone_plans(), config=ToneConfig(countries=["gb"]))  # no ConfigError
