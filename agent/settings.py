"""The agent's configuration file (``config/agent.yaml``), composed from each part's section.

Every key is documented in ``config/agent.yaml``. :func:`load_agent_config` validates the
whole file once at start; a bad value raises :class:`~agent.errors.ConfigError` naming the
key (``sip.carrier_port: expected an integer, got 'x'``). Values of the form ``${NAME}``
or ``${NAME:-default}`` read the environment (for secrets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agent.api.config import ApiConfig
from agent.classify.rule import ClassifierConfig
from agent.config import build, read_yaml
from agent.decide import DecideConfig
from agent.errors import ConfigError
from agent.fingerprint.config import FingerprintConfig
from agent.logs import LoggingConfig
from agent.paths import CONFIG_DIR, data_dir
from agent.sip.config import SipConfig
from agent.sip.fas import FasConfig
from agent.tones.config import ToneConfig
from agent.webhooks.config import WebhookConfig

DEFAULT_CONFIG = CONFIG_DIR / "agent.yaml"


@dataclass(frozen=True)
class TonesSection:
    enabled: bool = True
    plans: str = ""  # tone-plan table; empty = config/tone_plans.yaml
    detector: ToneConfig = field(default_factory=ToneConfig)


@dataclass(frozen=True)
class StoreSection:
    calls: str = ""  # SQLite path of the call store; empty = $XDG_DATA_HOME/.../calls.sqlite

    def calls_location(self) -> str:
        return self.calls or str(data_dir() / "calls.sqlite")


@dataclass(frozen=True)
class AgentConfig:
    sip: SipConfig = field(default_factory=SipConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    store: StoreSection = field(default_factory=StoreSection)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    tones: TonesSection = field(default_factory=TonesSection)
    fingerprint: FingerprintConfig = field(default_factory=FingerprintConfig)
    decide: DecideConfig = field(default_factory=DecideConfig)
    fas: FasConfig = field(default_factory=FasConfig)
    webhooks: WebhookConfig = field(default_factory=WebhookConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


def load_agent_config(path: str | Path | None = None) -> AgentConfig:
    """Read and validate the agent's YAML config (default ``config/agent.yaml``)."""
    p = Path(path) if path is not None else DEFAULT_CONFIG
    data = read_yaml(p)
    config = build(AgentConfig, data, prefix="")
    _check_route_countries(config)
    return config


def _check_route_countries(config: AgentConfig) -> None:
    """A route's tone_countries must be countries of the tone plans."""
    wanted = [(i, cc) for i, r in enumerate(config.sip.routes) for cc in r.tone_countries]
    if not wanted or not config.tones.enabled:
        return
    from agent.tones.plan import country_code, load_tone_plans

    plans = load_tone_plans(config.tones.plans or None)
    for i, cc in wanted:
        if country_code(cc, plans) not in plans:
            raise ConfigError(f"sip.routes[{i}].tone_countries: {cc!r} is not a country of "
                              "the tone plans (early-media-agent tones list)")
