"""The streaming rule and the classifier's configuration: when per-second verdicts are final.

Pure Python with no model or DSP imports, so that loading the agent's configuration does
not pull LightGBM and librosa into the SIP supervisor. :class:`RuleState` applies
:class:`StreamRule`:

* a class is final after ``confirm_seconds`` consecutive seconds of it, silence after
  ``silence_seconds`` (longer than a cadence gap, or a call whose early media starts
  inside a ringback gap would be settled as silence before the first burst);
* announcement takes priority: ``announcement_seconds`` consecutive announcement seconds
  settle (or overturn) the decision, because an announcement triggers the fingerprint
  lookup that can tell the real SIP code;
* a ringback cadence's silent gaps are still ringback: a silence second within
  ``ringback_gap_s`` seconds after a ringback second counts as ringback.

Before the rule sees them, each second's model probabilities pass through
:func:`carry_over`: early media rarely changes class from one second to the next, so a
lone second of, say, announcement in the middle of music needs stronger evidence than the
first second of a call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agent.config import build, read_yaml
from agent.errors import ConfigError
from agent.labels import LABEL_INDEX, LABELS, Decision
from agent.paths import CONFIG_DIR


@dataclass(frozen=True)
class StreamRule:
    """When a stream of per-second classes becomes a decision (``config/classifier.yaml``)."""

    confirm_seconds: int = 2
    announcement_seconds: int = 2
    silence_seconds: int = 5
    ringback_gap_s: int = 4
    min_probability: float = 0.0
    persistence: float = 0.95

    def validate(self) -> None:
        """Counts are at least one second; the probability floor lies in [0, 1)."""
        if not 1 <= self.confirm_seconds <= 60:
            raise ConfigError("confirm_seconds: expected 1..60")
        if not 1 <= self.announcement_seconds <= 60:
            raise ConfigError("announcement_seconds: expected 1..60")
        if not 1 <= self.silence_seconds <= 60:
            raise ConfigError("silence_seconds: expected 1..60")
        if not 0 <= self.ringback_gap_s <= 30:
            raise ConfigError("ringback_gap_s: expected 0..30")
        if not 0.0 <= self.min_probability < 1.0:
            raise ConfigError("min_probability: expected 0 <= p < 1")
        if not 0.25 <= self.persistence < 1.0:
            raise ConfigError("persistence: expected 0.25 <= p < 1 (0.25 turns it off)")


def carry_over(previous: list[float] | None, probs: list[float], persistence: float
               ) -> list[float]:
    """One step of a causal forward filter over per-second class probabilities.

    Parameters
    ----------
    previous : list of float or None
        What this function returned for the second before (None for a stream's first).
    probs : list of float
        The model's probabilities for this second, in :data:`~agent.labels.LABELS` order.
    persistence : float
        Probability that a second has the class of the second before it; each other class
        gets an equal share of the rest. 0.25 (four classes) makes every class equally
        likely whatever came before: ``probs`` come back unchanged.

    Returns
    -------
    list of float
        ``probs`` times the class prior carried over from ``previous``, normalised: the
        hidden-Markov forward step, with the model's posteriors standing in for
        likelihoods. Only the past is used, so the live stream and a whole file agree.
    """
    if previous is None:
        return probs
    switch = (1.0 - persistence) / (len(probs) - 1)
    gain = persistence - switch
    # ``previous`` is this function's own output for the same model: the lengths agree,
    # and a strict zip costs a third of this function (it runs every stream-second).
    out = [p * (switch + gain * q) for p, q in zip(probs, previous, strict=False)]
    total = sum(out)
    if total <= 0.0:
        return probs
    return [v / total for v in out]


@dataclass(frozen=True)
class ClassifierConfig:
    """The ``classifier`` section: which student model, and the streaming rule."""

    model: str | None = None
    rule: StreamRule = field(default_factory=StreamRule)

    def validate(self) -> None:
        # A model path that names nothing is a mistake to report at start, not a call
        # relayed without analysis later.
        if self.model and not Path(self.model).expanduser().is_file():
            raise ConfigError(f"model: no such file: {self.model}")


def load_classifier_config(path: str | Path | None = None) -> ClassifierConfig:
    """Read and validate ``config/classifier.yaml`` (or ``path``)."""
    p = Path(path) if path is not None else CONFIG_DIR / "classifier.yaml"
    return build(ClassifierConfig, read_yaml(p), "classifier")


class RuleState:
    """The streaming rule on its own: feed it per-second labels, read the decision.

    Pure bookkeeping (no audio, no model), so training reports and tests can replay it
    on predicted labels exactly as the live stream does.
    """

    def __init__(self, rule: StreamRule | None = None) -> None:
        self.rule = rule or StreamRule()
        self.effective: list[str | None] = []
        self.decision: Decision | None = None
        self._last_ringback: int | None = None
        self._run_label: str | None = None
        self._run = 0
        # Seconds of a run that settle a class, looked up once per second: built here
        # because a dict literal in push costs a few µs per stream-second.
        self._need = {"announcement": self.rule.announcement_seconds,
                      "silence": self.rule.silence_seconds}

    def push(self, t: int, label: str, p: float) -> Decision | None:
        """Account for second ``t`` classified as ``label`` with probability ``p``.

        Returns the decision if this second made or changed it, else None.
        """
        rule = self.rule
        effective: str | None = label if p >= rule.min_probability else None
        if effective == "ringback":
            self._last_ringback = t
        elif (effective == "silence" and self._last_ringback is not None
              and t - self._last_ringback <= rule.ringback_gap_s):
            effective = "ringback"
        self.effective.append(effective)
        if effective is not None and effective == self._run_label:
            self._run += 1
        else:
            self._run_label, self._run = effective, 1 if effective is not None else 0
        if effective is None:
            return None
        if self._run < self._need.get(effective, rule.confirm_seconds):
            return None
        if self.decision is None or (
            effective == "announcement" and self.decision.label != "announcement"
        ):
            self.decision = Decision(label=effective, at_s=float(t + 1))
            return self.decision
        return None

    def finish(self, seconds_seen: float) -> Decision | None:
        """Best decision at end of stream: the settled one, else announcement if any second
        said so, else the most frequent (cadence-corrected) class; None without seconds.

        Silence up to ``ringback_gap_s`` before a ringback second counts as ringback here
        too: a stream that started inside a cadence gap and ended before the silence rule
        settled heard the gap, then the burst.
        """
        if self.decision is not None:
            return self.decision
        seen = list(self.effective)
        gap = self.rule.ringback_gap_s
        for t, label in enumerate(seen):
            if label == "silence" and "ringback" in seen[t + 1:t + 1 + gap]:
                seen[t] = "ringback"
        seen = [e for e in seen if e is not None]
        if not seen:
            return None
        if "announcement" in seen:
            return Decision(label="announcement", at_s=seconds_seen)
        counts = {label: seen.count(label) for label in LABELS}
        best = max(LABELS, key=lambda label: (counts[label], -LABEL_INDEX[label]))
        return Decision(label=best, at_s=seconds_seen)
