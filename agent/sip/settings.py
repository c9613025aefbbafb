"""Reading just the ``sip`` section of the agent's YAML (the workers need nothing else)."""

from __future__ import annotations

from pathlib import Path

from agent.config import build, read_yaml
from agent.sip.config import SipConfig


def load_sip_config(path: str | Path) -> SipConfig:
    """The validated ``sip`` section of the config file at ``path``."""
    data = read_yaml(path) or {}
    return build(SipConfig, data.get("sip") if isinstance(data, dict) else None, "sip")
