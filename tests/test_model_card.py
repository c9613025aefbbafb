"""The model card names every source of the training audio with its licence."""

from __future__ import annotations

from agent.corpus.config import CorpusConfig
from agent.corpus.festival import FESTIVAL_VOICES
from agent.corpus.licences import LICENCES, licence_of
from agent.corpus.manifest import CorpusItem, SourceRef
from agent.distill.report import source_rows


def test_every_package_the_default_corpus_draws_from_has_a_licence() -> None:
    cfg = CorpusConfig()
    packages = {v.package for v in cfg.human_voices}
    packages |= {FESTIVAL_VOICES[name].package for name in cfg.tts_voices}
    packages |= {m.package for m in cfg.more_music}
    # The sources every build takes (music on hold, Wesnoth, MIDI) and the generated ones.
    packages |= {"asterisk-moh-opsound-wav", "wesnoth-music", "planetblupi-music-midi",
                 "agent.tones", "synthetic"}
    assert not packages - set(LICENCES)


def _item(label: str, voice: str, engine: str, seconds: float, **kw: object) -> CorpusItem:
    package = voice.split("/", 1)[0]
    return CorpusItem(id=voice, label=label, group=voice, path="x.wav", duration_s=seconds,
                      sources=(SourceRef(package, "x", 0.0, seconds),), voice=voice,
                      engine=engine, **kw)  # type: ignore[arg-type]


def test_source_rows_list_speakers_singing_and_licences_per_class() -> None:
    rows = source_rows([
        _item("announcement", "asterisk-prompt-it-menardi-wav/it_IT_f_Menardi", "human", 7.0),
        _item("announcement", "festvox-ru/msu_ru_nsh_clunits", "festival", 5.0),
        _item("music", "performous", "music", 9.0, vocals=True),
        _item("silence", "synthetic/hum", "synthetic", 3.0),
        _item("ringback", "agent.tones/uk", "tone", 4.0),
    ])
    text = "\n".join(rows)
    assert ("| announcement | asterisk-prompt-it-menardi-wav | it_IT_f_Menardi (human) | 7 | "
            "CC-BY-SA-3.0 (attribution: Marco Menardi and Paola Dal Zot) |") in text
    assert "| announcement | festvox-ru | msu_ru_nsh_clunits (festival) | 5 | BSD-like |" in text
    assert "| music | performous | with singing | 9 | GPL-2+ |" in text
    assert "| ringback | agent.tones | 1 country plans |" in text
    assert "| silence | synthetic | 1 kinds: hum |" in text


def test_an_unchecked_package_is_named_as_such() -> None:
    assert licence_of("new-music").startswith("unknown: read /usr/share/doc/new-music/")
