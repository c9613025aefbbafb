"""``fingerprint.library``: a path that names nothing usable is a one-line config error;
a new file in an existing directory is created on first use (so is the default one, by
the live agent), never silently skipped."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from agent.analysis import AnalysisComponents
from agent.errors import ConfigError
from agent.paths import HOME
from agent.settings import AgentConfig, load_agent_config


def config_file(tmp_path: Path, **fingerprint: object) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"fingerprint": fingerprint}))
    return path


def test_a_library_in_a_missing_directory_is_a_config_error_naming_key_path_and_why(tmp_path):
    missing = tmp_path / "no-such-dir" / "library.sqlite"
    with pytest.raises(ConfigError) as exc:
        load_agent_config(config_file(tmp_path, library=str(missing)))
    message = str(exc.value)
    assert message.startswith(f"fingerprint.library: {missing}: no such file")
    assert f"its directory {missing.parent} does not exist" in message
    assert "\n" not in message


@pytest.mark.parametrize(("location", "why"), [
    ("{tmp}", "is a directory, not a library file"),
    ("mysql://db/library", "unsupported URL"),
])
def test_a_library_path_that_cannot_be_a_library_file_is_refused(tmp_path, location, why):
    with pytest.raises(ConfigError, match=f"fingerprint.library: .*{why}"):
        load_agent_config(config_file(tmp_path, library=location.format(tmp=tmp_path)))


def test_a_disabled_library_is_not_checked(tmp_path):
    cfg = load_agent_config(config_file(tmp_path, enabled=False,
                                        library=str(tmp_path / "nope" / "x.sqlite")))
    assert cfg.fingerprint.enabled is False


def test_classify_reports_a_bad_library_path_in_one_line(tmp_path):
    path = config_file(tmp_path, library=str(tmp_path / "typo" / "library.sqlite"))
    proc = subprocess.run([sys.executable, "-m", "agent", "classify", "--config", str(path),
                           str(tmp_path / "any.wav")], capture_output=True, text=True,
                          cwd=HOME, timeout=120, env={**os.environ, "PYTHONPATH": str(HOME)})
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"early-media-agent: error: fingerprint.library: {tmp_path}/typo/library.sqlite: no "
        f"such file, and its directory {tmp_path}/typo does not exist (the library file is "
        "created on first use, its directory is not)"]


def with_fingerprint(**changes: object) -> AgentConfig:
    cfg = AgentConfig()
    return replace(cfg, fingerprint=replace(cfg.fingerprint, **changes))


def test_a_configured_library_not_yet_created_is_created_with_the_configured_settings(
        tmp_path):
    location = tmp_path / "library.sqlite"
    cfg = load_agent_config(config_file(tmp_path, library=str(location), threshold=0.7))
    components = AnalysisComponents.load(cfg)
    assert components.library is not None and location.is_file()
    assert components.library.config.threshold == 0.7
    components.library.close()


def test_the_default_library_is_created_by_the_agent_but_not_by_classify(
        tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "fresh"))
    default = tmp_path / "fresh" / "early-media-agent" / "library.sqlite"
    assert AnalysisComponents.load(with_fingerprint()).library is None
    assert not default.exists()
    components = AnalysisComponents.load(with_fingerprint(), create_default_library=True)
    assert components.library is not None and default.is_file()
    components.library.close()
    # Once it exists, classify uses it too.
    again = AnalysisComponents.load(with_fingerprint())
    assert again.library is not None
    again.library.close()
