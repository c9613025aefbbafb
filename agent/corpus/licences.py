"""Licences of the Debian packages the corpus takes audio from, for the model card.

Read by hand from each package's ``/usr/share/doc/<package>/copyright`` (several are not
machine-readable, and a package's licence is not always the one of the files the corpus
uses): the licence below is that of the audio or voice data, not of the Debian packaging.
A package missing here is named as unknown on the card, so a new source cannot slip in
unlicensed.
"""

from __future__ import annotations

LICENCES: dict[str, str] = {
    # Recorded prompts.
    "asterisk-core-sounds-en-wav": "CC-BY-SA-3.0",
    "asterisk-core-sounds-es-wav": "CC-BY-SA-3.0",
    "asterisk-core-sounds-fr-wav": "CC-BY-SA-3.0",
    "asterisk-core-sounds-it-wav": "CC-BY-SA-3.0",
    "asterisk-core-sounds-ru-wav": "CC-BY-3.0",
    "asterisk-prompt-es-co": "GPL-2",
    "asterisk-prompt-fr-armelle": "BSD-style",
    "asterisk-prompt-it-menardi-wav": "CC-BY-SA-3.0 (attribution: Marco Menardi and "
                                      "Paola Dal Zot)",
    # Festival voices (the voice data; synthesis by Festival itself).
    "festvox-ca-ona-hts": "LGPL-2.1+ (voice definition: Festvox and LGPL-2.1+)",
    "festvox-czech-dita": "GPL-3+",
    "festvox-czech-krb": "GPL-3+",
    "festvox-czech-machac": "GPL-3+",
    "festvox-czech-ph": "GPL-2+",
    "festvox-hi-nsk": "GPL-2+",
    "festvox-italp16k": "GPL-2+",
    "festvox-itapc16k": "GPL-2+",
    "festvox-kdlpc16k": "Festvox/CMU permissive (free use and redistribution with notice)",
    "festvox-mr-nsk": "GPL-2+",
    "festvox-ru": "BSD-like",
    "festvox-suopuhe-lj": "LGPL-2+",
    "festvox-suopuhe-mv": "LGPL-2+",
    "festvox-te-nsk": "GPL-2+",
    # Music.
    "asc-music": "GPL-2+",
    "asterisk-moh-opsound-wav": "CC-BY-SA-3.0",
    "fretsonfire-songs-muldjord": "CC-BY-SA-3.0",
    "fretsonfire-songs-sectoid": "Expat (MIT)",
    "openttd-openmsx": "GPL-2",
    "performous": "GPL-2+",
    "planetblupi-music-midi": "GPL-3+ (rendered with fluid-soundfont-gm, MIT)",
    "wesnoth-music": "GPL-2+",
    # Generated here.
    "agent.tones": "this project (GPL-2.0-or-later): tone plans rendered by agent.tones",
    "synthetic": "this project (GPL-2.0-or-later): generated line noise",
}


def licence_of(package: str) -> str:
    """The licence of a source package's audio, or a note that it was never checked.

    Examples
    --------
    >>> licence_of("asterisk-core-sounds-ru-wav")
    'CC-BY-3.0'
    >>> licence_of("some-new-package")
    'unknown: read /usr/share/doc/some-new-package/copyright'
    """
    return LICENCES.get(package, f"unknown: read /usr/share/doc/{package}/copyright")
