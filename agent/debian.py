"""Audio that Debian packages install, and the package behind each path.

Code and tests name these paths through this module only, so that one test
(``tests/test_debian_paths.py``) can check that ``scripts/bootstrap.sh`` installs every
package whose files the project opens: a developer's machine that happens to hold an
extra package must fail the way a fresh machine would.
"""

from __future__ import annotations

from pathlib import Path

ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds")
#: English prompts (asterisk-core-sounds-en-wav). Not ``sounds/en``: that link comes from
#: asterisk-core-sounds-en, which a ``--no-install-recommends`` install leaves out.
ASTERISK_EN = ASTERISK_SOUNDS / "en_US_f_Allison"
ASTERISK_ES = ASTERISK_SOUNDS / "es_MX_f_Allison"
ASTERISK_FR = ASTERISK_SOUNDS / "fr_CA_f_June"
ASTERISK_MOH = Path("/usr/share/asterisk/moh")
WESNOTH_MUSIC = Path("/usr/share/games/wesnoth/1.16/data/core/music")
#: Festival's library: voices under ``voices/<language>/<name>``, language modules beside.
FESTIVAL_DIR = Path("/usr/share/festival")

#: Directory or file → the Debian package that ships it.
PACKAGES: dict[Path, str] = {
    ASTERISK_EN: "asterisk-core-sounds-en-wav",
    ASTERISK_ES: "asterisk-core-sounds-es-wav",
    ASTERISK_FR: "asterisk-core-sounds-fr-wav",
    ASTERISK_MOH: "asterisk-moh-opsound-wav",
    WESNOTH_MUSIC: "wesnoth-music",
    FESTIVAL_DIR: "festival",
}


def package_of(path: Path) -> str:
    """The package that ships ``path`` (one of :data:`PACKAGES` or below one)."""
    for root, package in PACKAGES.items():
        if path == root or root in path.parents:
            return package
    raise KeyError(f"{path}: not a known Debian audio path")
