"""Configuration: YAML validated once at start into typed, frozen dataclasses.

Each subsystem declares its own section as a dataclass with defaults (fields typed with
``int``, ``float``, ``bool``, ``str``, ``list[...]``, ``dict[str, ...]``, ``... | None`` or a
nested dataclass) and, where values have ranges, a ``validate(self) -> None`` method that
raises :class:`ConfigError`. :func:`build` turns a mapping into such an object and names
the offending key (``fingerprint.threshold: expected a number, got 'high'``). Nothing
reads YAML deep inside the code.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from agent.errors import ConfigError

T = TypeVar("T")

_ENV_REF = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)(?::-(.*))?\}$")


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file; a missing file or a syntax error is a one-line :class:`ConfigError`."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such config file")
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{p}: {problem}{where}") from None


def _expand_env(value: Any, key: str) -> Any:
    """``${NAME}`` or ``${NAME:-default}`` as a whole string value reads the environment."""
    if isinstance(value, str):
        m = _ENV_REF.match(value)
        if m:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{key}: environment variable {name} is not set")
    return value


def _coerce(value: Any, tp: Any, key: str) -> Any:
    value = _expand_env(value, key)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return build(tp, value, key)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        items = [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        k_tp, v_tp = typing.get_args(tp) or (Any, Any)
        return {
            _coerce(k, k_tp, f"{key}.{k}"): _coerce(v, v_tp, f"{key}.{k}")
            for k, v in value.items()
        }
    raise ConfigError(f"{key}: unsupported type {tp!r}")


def build(cls: type[T], data: Any, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and bad values.

    Parameters
    ----------
    cls : type
        A dataclass whose fields all have defaults or are required keys.
    data : Mapping or None
        The YAML section; None means all defaults.
    prefix : str
        The dotted path of this section, used in error messages.

    Raises
    ------
    ConfigError
        Naming the key: unknown key, missing required key, wrong type, or out of range
        (from the dataclass's own ``validate``).
    """
    label = prefix or cls.__name__
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(map(str, data)) - set(fields))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"{where}{unknown[0]}: unknown config key")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: required config key is missing")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ConfigError as exc:
            msg = str(exc)
            named = msg if not prefix or msg.startswith(prefix) else f"{prefix}.{msg}"
            raise ConfigError(named) from None
    return obj
