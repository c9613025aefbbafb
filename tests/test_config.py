from dataclasses import dataclass, field

import pytest

from agent.config import build, read_yaml
from agent.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    port: int = 5060
    host: str = "127.0.0.1"

    def validate(self):
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"port: {self.port} is not a port number")


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    ratio: float = 0.5
    enabled: bool = True
    names: list[str] = field(default_factory=list)
    secret: str | None = None


def test_defaults_when_section_is_empty():
    assert build(Outer, None) == Outer()


def test_nested_values_are_typed():
    cfg = build(Outer, {"inner": {"port": "5070"}, "ratio": 1, "names": ["a", 2]})
    assert cfg.inner.port == 5070 and cfg.ratio == 1.0 and cfg.names == ["a", "2"]


@pytest.mark.parametrize(
    "data,message",
    [
        ({"inner": {"prot": 1}}, "agent.inner.prot: unknown config key"),
        ({"inner": {"port": "high"}}, "agent.inner.port: expected an integer, got 'high'"),
        ({"inner": {"port": 70000}}, "agent.inner.port: 70000 is not a port number"),
        ({"ratio": "lots"}, "agent.ratio: expected a number"),
        ({"enabled": "maybe"}, "agent.enabled: expected true or false"),
        ({"names": "a"}, "agent.names: expected a list"),
    ],
)
def test_bad_values_name_the_key(data, message):
    with pytest.raises(ConfigError) as info:
        build(Outer, data, "agent")
    assert str(info.value).startswith(message)


def test_environment_overrides_secrets(monkeypatch):
    monkeypatch.setenv("EMA_SECRET", "s3cret")
    assert build(Outer, {"secret": "${EMA_SECRET}"}).secret == "s3cret"
    assert build(Outer, {"secret": "${EMA_UNSET_VAR:-fallback}"}).secret == "fallback"
    with pytest.raises(ConfigError, match="secret: environment variable EMA_UNSET_VAR"):
        build(Outer, {"secret": "${EMA_UNSET_VAR}"})


def test_yaml_syntax_error_is_one_line_with_the_line_number(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("a: 1\nb: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: .*\(line \d+\)"):
        read_yaml(p)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        read_yaml(tmp_path / "nope.yaml")
