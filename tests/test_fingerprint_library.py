"""Add / match / remove, codecs, streaming, unknown announcements and bad input, on
announcements synthesised with espeak-ng."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from agent.audio.io import load_audio, write_wav
from agent.config import build
from agent.errors import ConfigError, UserError
from agent.fingerprint import FingerprintConfig, StreamingMatcher, open_library
from agent.store.library import DuplicateAudioError

SR = 8000
TEXTS = {
    "busy": "The subscriber you are calling is busy. Please try again later. Thank you.",
    "vacant": "The number you have dialled does not exist. Please check the number and dial "
              "again.",
    "off": "The mobile phone you are calling is switched off or out of coverage area.",
    "barred": "Calls to this destination are barred from your line. Contact customer care.",
}

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@pytest.fixture(scope="module")
def announcements(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("announcements")
    out = {}
    for name, text in TEXTS.items():
        path = root / f"{name}.wav"
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
        out[name] = path
    return out


@pytest.fixture(scope="module")
def audio(announcements: dict[str, Path]) -> dict[str, np.ndarray]:
    return {name: load_audio(p) for name, p in announcements.items()}


@pytest.fixture()
def library(tmp_path: Path, audio: dict[str, np.ndarray]):
    lib = open_library(tmp_path / "lib.sqlite")
    ids = {
        "busy": lib.add(audio["busy"], sip_code=486, reason="user busy", q850_cause=17,
                        lang="en", name="busy.wav"),
        "vacant": lib.add(audio["vacant"], sip_code=404, reason="not found", name="vacant"),
        "off": lib.add(audio["off"], sip_code=480, reason="unavailable", carrier="acme"),
    }
    lib.ids = ids  # type: ignore[attr-defined]
    yield lib
    lib.close()


def test_excerpt_from_the_middle_matches_its_entry(library, audio) -> None:
    q = audio["vacant"][int(1.3 * SR) : int(4.3 * SR)]
    found = library.match(q)
    assert found is not None
    assert found.entry_id == library.ids["vacant"]
    assert found.sip_code == 404 and found.reason == "not found"
    assert found.score >= library.config.threshold


def test_query_across_the_loop_seam_matches(library, audio) -> None:
    x = audio["busy"]
    q = np.concatenate([x[-int(1.5 * SR):], x[: int(1.5 * SR)]])
    found = library.match(q)
    assert found is not None and found.entry_id == library.ids["busy"]


def test_announcement_not_in_library_matches_nothing(library, audio) -> None:
    assert library.match(audio["barred"][: 3 * SR]) is None


def test_removed_entry_no_longer_matches(library, audio) -> None:
    library.remove(library.ids["off"])
    assert library.match(audio["off"][SR : 4 * SR]) is None
    assert [e.id for e in library.entries()] == [library.ids["busy"], library.ids["vacant"]]
    with pytest.raises(UserError, match="no entry"):
        library.remove(library.ids["off"])


@pytest.mark.parametrize("codec", ["gsm", "amr-nb"])
def test_match_survives_a_telephone_codec_and_noise(library, audio, codec) -> None:
    channel = pytest.importorskip("agent.corpus.channel")
    rng = np.random.default_rng(0)
    q = audio["off"][int(0.7 * SR) : int(3.7 * SR)]
    noisy = q + rng.standard_normal(q.size).astype(np.float32) * np.sqrt(np.mean(q**2) / 30)
    found = library.match(channel.apply_codec(noisy.astype(np.float32), codec))
    assert found is not None and found.entry_id == library.ids["off"]


def test_streaming_matcher_answers_after_two_seconds(library, audio) -> None:
    matcher = StreamingMatcher(library)
    x = audio["busy"][int(0.5 * SR):]
    results = []
    for i in range(0, x.size, 160):
        got = matcher.push(x[i : i + 160], t_s=10.0 + i / SR)
        if got is not None:
            results.append(got)
    assert len(results) == 1
    assert results[0].entry_id == library.ids["busy"]
    assert 12.0 <= results[0].detected_s <= 10.0 + x.size / SR
    assert matcher.finish() == results[0]


def test_streaming_matcher_finish_without_match_is_none(library, audio) -> None:
    matcher = StreamingMatcher(library)
    matcher.push(audio["barred"][: int(2.5 * SR)], t_s=0.0)
    assert matcher.finish() is None


def test_same_audio_twice_is_refused_naming_the_entry(library, audio) -> None:
    with pytest.raises(DuplicateAudioError, match=f"entry {library.ids['busy']}") as info:
        library.add(audio["busy"], sip_code=486, reason="again")
    assert info.value.existing_id == library.ids["busy"]
    assert "\n" not in str(info.value)


def test_exact_duplicate_is_refused_even_without_the_similarity_check(library, audio) -> None:
    with pytest.raises(DuplicateAudioError, match=f"entry {library.ids['vacant']}"):
        library.add(audio["vacant"], sip_code=404, reason="x", check_similar=False)


@pytest.mark.parametrize("code", [200, 399, 700, 4860])
def test_sip_code_outside_failure_range_is_refused(library, audio, code) -> None:
    with pytest.raises(UserError, match="SIP code"):
        library.add(audio["barred"], sip_code=code, reason="x")


def test_half_second_of_audio_is_refused(library, audio) -> None:
    with pytest.raises(UserError, match="too short"):
        library.add(audio["barred"][: SR // 2], sip_code=403, reason="barred")


def test_unknown_announcement_repeats_form_one_group(library, audio) -> None:
    x = audio["barred"]
    first = library.record_unknown(x[: 4 * SR], call_id="c1", carrier="acme")
    again = library.record_unknown(x[int(1.1 * SR) : 5 * SR], call_id="c2")
    other = library.record_unknown(np.concatenate([audio["vacant"]] * 2)[: 4 * SR])
    assert first == again != other
    unknown = {e.id: e for e in library.entries(kind="unknown")}
    assert unknown[first].count == 2 and unknown[first].call_id == "c2"
    assert unknown[first].carrier == "acme"
    assert unknown[other].count == 1
    assert library.unknown_audio(first) is not None


def test_unknown_retention_keeps_the_most_recent(tmp_path, audio) -> None:
    cfg = build(FingerprintConfig, {"unknown_max_entries": 1})
    with open_library(tmp_path / "lib.sqlite", config=cfg) as lib:
        lib.record_unknown(audio["barred"])
        newest = lib.record_unknown(audio["off"])
        assert [e.id for e in lib.entries(kind="unknown")] == [newest]


def test_labelled_unknown_becomes_a_known_match(library, audio) -> None:
    uid = library.record_unknown(audio["barred"], call_id="c9")
    assert library.match(audio["barred"][SR : 4 * SR]) is None
    library.label_unknown(uid, sip_code=403, reason="barred")
    found = library.match(audio["barred"][SR : 4 * SR])
    assert found is not None and found.entry_id == uid and found.sip_code == 403
    with pytest.raises(UserError, match="already a known"):
        library.label_unknown(uid, sip_code=403, reason="barred")


def test_a_label_can_be_edited_undone_and_its_carrier_scoped(library, audio) -> None:
    uid = library.record_unknown(audio["barred"], call_id="c9", carrier="acme")
    library.label_unknown(uid, sip_code=403, reason=" barred ", carrier="")
    entry = library.store.get(uid)
    assert (entry.kind, entry.reason, entry.carrier) == ("known", "barred", None)
    library.edit(uid, sip_code=603, reason="declined", q850_cause=21, carrier="zeta")
    found = library.match(audio["barred"][SR : 4 * SR])
    assert found is not None and (found.sip_code, found.q850_cause) == (603, 21)
    assert library.store.get(uid).carrier == "zeta"
    library.edit(uid, sip_code=603, reason="declined")  # no carrier given: kept
    assert library.store.get(uid).carrier == "zeta"
    library.unlabel(uid)
    assert library.match(audio["barred"][SR : 4 * SR]) is None
    back = library.store.get(uid)
    assert (back.kind, back.sip_code, back.reason, back.count) == ("unknown", None, None, 1)
    assert library.record_unknown(audio["barred"], call_id="c10") == uid  # still groups repeats
    with pytest.raises(UserError, match="unknown announcement; label it first"):
        library.edit(uid, sip_code=486, reason="busy")
    with pytest.raises(UserError, match="a reason text is required"):
        library.label_unknown(uid, sip_code=486, reason="  ")
    with pytest.raises(UserError, match="added from a file"):
        library.unlabel(library.ids["busy"])


def test_other_process_addition_reaches_an_open_library(tmp_path, audio) -> None:
    path = tmp_path / "lib.sqlite"
    with open_library(path) as reader, open_library(path) as writer:
        assert reader.match(audio["vacant"][: 3 * SR]) is None
        writer.add(audio["vacant"], sip_code=404, reason="not found")
        assert reader.match(audio["vacant"][: 3 * SR]) is not None


def test_corrupt_library_file_is_one_line_error_and_left_untouched(tmp_path) -> None:
    path = tmp_path / "lib.sqlite"
    path.write_bytes(b"this is not a database\n" * 100)
    before = path.read_bytes()
    with pytest.raises(UserError) as info:
        open_library(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert path.read_bytes() == before


def test_damaged_sqlite_pages_are_reported(tmp_path, audio) -> None:
    path = tmp_path / "lib.sqlite"
    with open_library(path) as lib:
        lib.add(audio["busy"], sip_code=486, reason="busy")
    data = bytearray(path.read_bytes())
    data[4096:8192] = b"\xff" * 4096
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="damaged|not a library"):
        open_library(path)


def test_postgresql_url_gives_a_clear_error() -> None:
    with pytest.raises(UserError, match="postgresql"):
        open_library("postgresql://db.example/library")


@pytest.mark.parametrize(
    ("key", "value"),
    [("threshold", 1.5), ("min_seconds", 0.1), ("max_seconds", 1.0), ("unknown_max_entries", -1)],
)
def test_config_rejects_out_of_range_values_naming_the_key(key, value) -> None:
    with pytest.raises(ConfigError, match=f"fingerprint.{key}"):
        build(FingerprintConfig, {key: value}, "fingerprint")


def test_wav_written_and_reloaded_matches(tmp_path, library, audio) -> None:
    path = tmp_path / "q.wav"
    write_wav(path, audio["vacant"][2 * SR : 5 * SR])
    found = library.match(load_audio(path))
    assert found is not None and found.entry_id == library.ids["vacant"]


def test_entries_hashed_with_old_parameters_are_refingerprinted_from_kept_audio(
    tmp_path, audio
) -> None:
    from agent.fingerprint.landmarks import LandmarkParams
    from agent.fingerprint.library import Library
    from agent.store.library import open_store

    path = tmp_path / "lib.sqlite"
    with Library(open_store(path), params=LandmarkParams(fan_out=3)) as old:
        entry_id = old.add(audio["off"], sip_code=480, reason="unavailable")
    with open_library(path) as lib:
        found = lib.match(audio["off"][SR : 4 * SR])
        assert found is not None and found.entry_id == entry_id
        assert {v for _, v, _ in lib.store.fingerprints(kind="known")} == {lib.params.version}


def test_silent_unknown_announcement_is_refused(library) -> None:
    with pytest.raises(UserError, match="no usable sound"):
        library.record_unknown(np.zeros(3 * SR, np.float32))


def test_matching_from_several_threads_while_an_entry_is_added(library, audio) -> None:
    from concurrent.futures import ThreadPoolExecutor

    q = audio["vacant"][SR : 4 * SR]

    def look(_: int) -> int | None:
        found = library.match(q)
        return None if found is None else found.entry_id

    with ThreadPoolExecutor(max_workers=4) as pool:
        pending = pool.map(look, range(12))
        library.add(audio["barred"], sip_code=403, reason="barred")
        results = list(pending)
    assert results == [library.ids["vacant"]] * 12
