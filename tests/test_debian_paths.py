"""Every Debian file the code and tests open comes from a package the bootstrap installs.

A developer's machine often holds packages a fresh machine lacks (``sounds/en`` comes
from ``asterisk-core-sounds-en``, which ``--no-install-recommends`` leaves out), so a
green run here proved nothing about a new machine. This test reads every path literal
under ``/usr`` and every ``shutil.which`` name in the sources, asks dpkg which package
owns it, and fails unless ``scripts/bootstrap.sh`` names that package.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.debian import PACKAGES
from agent.paths import HOME

SOURCES = [p for d in ("agent", "tests", "bench", "scripts", "config")
           for p in (HOME / d).rglob("*")
           if p.suffix in (".py", ".yaml", ".sh") and p.name != Path(__file__).name]
PATH_LITERAL = re.compile(r"""["'](/usr/(?:share|lib|bin)/[^"'{*\s]*)""")
WHICH = re.compile(r"""which\(\s*["']([\w.+-]+)["']""")
# Installed by other means than apt (the Python toolchain image) or spelled only as one of
# several candidates, of which the one for this architecture is checked.
NOT_APT = {"cc", "gcc"}


def bootstrap_packages() -> set[str]:
    """The packages scripts/bootstrap.sh names, and what they depend on (as installed here)."""
    text = (HOME / "scripts" / "bootstrap.sh").read_text()
    block = re.search(r"APT_PACKAGES=\((.*?)\n\)", text, re.S)
    assert block, "scripts/bootstrap.sh: no APT_PACKAGES=( ... ) list"
    runtime = re.search(r"RUNTIME_PACKAGES=\((.*?)\n\)", text, re.S)
    assert runtime, "scripts/bootstrap.sh: no RUNTIME_PACKAGES=( ... ) list"
    named = set(re.sub(r"#[^\n]*", "", block.group(1) + runtime.group(1)).split())
    named.discard('"${RUNTIME_PACKAGES[@]}"')
    closure, todo = set(named), list(named)
    while todo:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Depends}, ${Pre-Depends}", todo.pop()],
                             capture_output=True, text=True)
        for alt in out.stdout.split(","):
            name = alt.split("|")[0].split("(")[0].strip().split(":")[0]
            if name and name not in closure:
                closure.add(name)
                todo.append(name)
    return closure


def owners(path: str) -> set[str]:
    """Packages dpkg says own ``path`` (empty if none)."""
    out = subprocess.run(["dpkg-query", "-S", path], capture_output=True, text=True)
    if out.returncode != 0:
        return set()
    found: set[str] = set()
    for line in out.stdout.splitlines():
        names, _, owned = line.rpartition(": ")
        if owned.strip() == path:
            found |= {n.strip().split(":")[0] for n in names.split(",")}
    return found


def literal_paths() -> dict[str, set[str]]:
    """``/usr/...`` path literals → the files that use them."""
    found: dict[str, set[str]] = {}
    for src in SOURCES:
        for match in PATH_LITERAL.finditer(src.read_text(errors="replace")):
            path = match.group(1).rstrip("/")
            found.setdefault(path, set()).add(str(src.relative_to(HOME)))
    return found


@pytest.fixture(scope="module")
def installed_by_bootstrap() -> set[str]:
    if shutil.which("dpkg-query") is None:
        pytest.skip("not a Debian machine")
    return bootstrap_packages()


def test_every_path_under_usr_comes_from_a_bootstrapped_package(installed_by_bootstrap):
    problems = []
    paths = literal_paths()
    assert paths, "found no /usr path literals: the scan is broken"
    # A list of candidate directories (Kamailio's module directory differs by build) needs
    # one present member.
    candidates = {p for p in paths if "kamailio/modules" in p}
    for path, users in sorted(paths.items()):
        if path in candidates and any(Path(c).exists() for c in candidates):
            if not Path(path).exists():
                continue
        if not Path(path).exists():
            problems.append(f"{path} (used by {', '.join(sorted(users))}): missing")
            continue
        pkgs = owners(path)
        if not pkgs:
            problems.append(f"{path}: no Debian package owns it")
        elif not pkgs & installed_by_bootstrap:
            problems.append(f"{path}: from {', '.join(sorted(pkgs))}, which "
                            "scripts/bootstrap.sh does not install")
    assert not problems, "\n".join(problems)


def test_every_tool_the_code_looks_for_comes_from_a_bootstrapped_package(installed_by_bootstrap):
    names = {m.group(1) for src in SOURCES for m in WHICH.finditer(src.read_text())}
    assert "sipp" in names, "the scan missed shutil.which('sipp')"
    problems = []
    for name in sorted(names - NOT_APT):
        binary = shutil.which(name)
        if binary is None:
            problems.append(f"{name}: not on PATH")
            continue
        real = str(Path(binary).resolve())
        pkgs = owners(binary) | owners(real) | owners(binary.replace("/usr/bin", "/bin"))
        if not pkgs & installed_by_bootstrap:
            problems.append(f"{name} ({real}): from {pkgs or 'no package'}, not bootstrapped")
    assert not problems, "\n".join(problems)


def test_the_audio_path_table_names_a_bootstrapped_package_for_each_path(installed_by_bootstrap):
    for path, package in PACKAGES.items():
        owner = owners(str(path))
        assert owner & installed_by_bootstrap, f"{path}: owned by {owner}, not bootstrapped"
        assert package in installed_by_bootstrap, f"{package}: not in scripts/bootstrap.sh"
