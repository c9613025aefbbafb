"""The decision engine: per-second classes, tone events and library matches → one SIP code."""

from agent.decide.engine import CallDecision, DecideConfig, DecisionTable, Outcome, load_table

__all__ = ["CallDecision", "DecideConfig", "DecisionTable", "Outcome", "load_table"]
