"""``early-media-agent run``: start the live agent (SIP workers, analysis, HTTP API)."""

from __future__ import annotations

import argparse
import asyncio

from agent.paths import CONFIG_DIR


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "run",
        help="run the live agent: the B2BUA worker pool, analysis and the HTTP API",
        description="Run the live agent until SIGINT/SIGTERM. The dialer sends INVITEs to "
        "sip.listen_host:sip.listen_port; calls go on to sip.carrier; the HTTP API listens "
        "on api.host:api.port.",
    )
    p.add_argument("--config", default=str(CONFIG_DIR / "agent.yaml"),
                   help="the agent's YAML config (default: %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agent.logs import setup_logging
    from agent.settings import load_agent_config
    from agent.sip.serve import serve

    cfg = load_agent_config(args.config)
    setup_logging(cfg.logging)
    asyncio.run(serve(cfg, args.config))
    return 0
