"""early-media-agent: classify carrier early media and infer the real SIP failure code."""

__version__ = "0.1.0"
