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
  ``ringback_gap_s`` seconds after a ringback second counts as ringback;
* an announcement also overturns a settled class on the model's own evidence, before
  the carried probabilities follow: when the odds it gives announcement, multiplied
  over the seconds since they turned in its favour, reach ``announcement_odds`` over at
  least ``announcement_seconds`` seconds. After a run of ringback the carry-over needs
  odds of ~57:1 in one second to leave it: an announcement the model hears at 5:1 a
  second is carried as ringback for its first two seconds, and a short one is over
  before the rule could settle it;
* at the end of the stream (the carrier's final response) the decision weighs what was
  heard since the settled class was last heard (a second the model does not favour
  announcement in, carried as that class) or another class held for ``confirm_seconds``:
  ``announcement_seconds`` seconds the model favoured announcement in make it
  announcement, even when a second of another class came between them or the call ended
  before they settled. An announcement, once decided, stays:
  silence or music after it does not undo it.

Every decision is kept in order in :attr:`RuleState.decisions` (the decision history).

Before the rule sees them, each second's model probabilities pass through
:func:`carry_over`: early media rarely changes class from one second to the next, so a
lone second of, say, announcement in the middle of music needs stronger evidence than the
first second of a call.
"""

from __future__ import annotations

import math
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
    announcement_odds: float = 20.0

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
        if self.announcement_odds != 0 and not 1.0 < self.announcement_odds <= 1e9:
            raise ConfigError("announcement_odds: expected 1 < odds <= 1e9 (0 turns it off)")


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


#: Where the model's announcement probability sits in its output.
ANNOUNCEMENT = LABEL_INDEX["announcement"]
# Probabilities are clipped this far from 0 and 1 before their log-odds are taken: a
# second the model is certain of counts ~14 nats, not infinitely many.
_CLIP = 1e-6


class RuleState:
    """The streaming rule on its own: feed it per-second labels, read the decisions.

    Pure bookkeeping (no audio, no model), so training reports and tests can replay it
    on predicted labels exactly as the live stream does.

    Attributes
    ----------
    decision : Decision or None
        The current decision (the last of :attr:`decisions`).
    decisions : list of Decision
        Every decision in the order it was made; ``at_s`` is when (a streaming decision
        is made at the end of the second ``t`` that settled it, ``at_s = t + 1``).
    announcement_since : int or None
        First second of the evidence behind the announcement decision, once there is
        one: where its audio starts, for the fingerprint lookup.
    """

    def __init__(self, rule: StreamRule | None = None) -> None:
        self.rule = rule or StreamRule()
        self.effective: list[str | None] = []
        self.decision: Decision | None = None
        self.decisions: list[Decision] = []
        self.announcement_since: int | None = None
        self._last_ringback: int | None = None
        self._run_label: str | None = None
        self._run = 0
        # Seconds of a run that settle a class, looked up once per second: built here
        # because a dict literal in push costs a few µs per stream-second.
        self._need = {"announcement": self.rule.announcement_seconds,
                      "silence": self.rule.silence_seconds}
        odds = self.rule.announcement_odds
        self._log_odds_needed = math.log(odds) if odds else math.inf
        # The model's announcement evidence: summed log-odds since they turned positive
        # (a CUSUM change detector), how many seconds that stretch holds and where it
        # starts; and the seconds it favoured announcement since the decided class was
        # last heard (for the end of the stream).
        self._odds = 0.0
        self._stretch = 0
        self._stretch_from = 0
        self._heard = 0
        self._heard_from = 0

    def _decide(self, label: str, at_s: float, since: int | None = None) -> Decision:
        self.decision = Decision(label=label, at_s=at_s)
        self.decisions.append(self.decision)
        if label == "announcement":
            self.announcement_since = since
        self._heard = 0
        return self.decision

    def push(self, t: int, label: str, p: float, announcement_p: float | None = None
             ) -> Decision | None:
        """Account for second ``t`` classified as ``label`` with probability ``p``.

        ``announcement_p`` is the model's own probability of announcement for the second
        (before the carry-over); without it only the labels count.

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
        decided = self.decision
        if announcement_p is not None and (decided is None or decided.label != "announcement"):
            favours = announcement_p > 0.5
            # Most seconds neither favour announcement nor extend a stretch that does:
            # nothing to add, and no logarithm to take (it tripled this method's 0.35 µs).
            if favours or self._odds > 0.0:
                a = min(max(announcement_p, _CLIP), 1.0 - _CLIP)
                step = math.log(a / (1.0 - a))
                if self._odds + step > 0.0:
                    if self._odds <= 0.0:
                        self._stretch, self._stretch_from = 0, t
                    self._odds += step
                    self._stretch += 1
                else:
                    self._odds, self._stretch = 0.0, 0
            if decided is not None:
                # A second the model favours announcement in counts for it even while
                # the carried label still says the decided class. The count starts over
                # when the decided class comes back, or another class holds long enough
                # to settle: a lone speech-like second where ringback gives way to
                # music, and another where the music stops, are not an announcement.
                if favours:
                    if self._heard == 0:
                        self._heard_from = t
                    self._heard += 1
                elif effective == decided.label or (
                        effective != "announcement" and self._run >= rule.confirm_seconds):
                    self._heard = 0
            if (self._odds >= self._log_odds_needed
                    and self._stretch >= rule.announcement_seconds):
                return self._decide("announcement", float(t + 1), self._stretch_from)
        if effective is None:
            return None
        if self._run < self._need.get(effective, rule.confirm_seconds):
            return None
        if decided is None or (
            effective == "announcement" and decided.label != "announcement"
        ):
            return self._decide(effective, float(t + 1), t + 1 - self._run)
        return None

    def finish(self, seconds_seen: float) -> Decision | None:
        """The decision at the end of the stream, weighing everything heard; None without
        seconds. It joins :attr:`decisions` if it is new; calling again changes nothing.

        A settled class gives way to announcement when, since that class was last heard,
        ``announcement_seconds`` seconds favoured announcement (with ``announcement_p``
        given to :meth:`push`). Without a settled class: announcement if any second said
        so, else the most frequent (cadence-corrected) class. Silence up to
        ``ringback_gap_s`` before a ringback second counts as ringback here too: a stream
        that started inside a cadence gap and ended before the silence rule settled heard
        the gap, then the burst.
        """
        if self.decision is not None:
            if (self.decision.label != "announcement"
                    and self._heard >= self.rule.announcement_seconds):
                self._decide("announcement", seconds_seen, self._heard_from)
            return self.decision
        seen = list(self.effective)
        gap = self.rule.ringback_gap_s
        for t, label in enumerate(seen):
            if label == "silence" and "ringback" in seen[t + 1:t + 1 + gap]:
                seen[t] = "ringback"
        heard = [(t, e) for t, e in enumerate(seen) if e is not None]
        if not heard:
            return None
        announced = [t for t, e in heard if e == "announcement"]
        if announced:
            return self._decide("announcement", seconds_seen, announced[0])
        labels = [e for _, e in heard]
        counts = {label: labels.count(label) for label in LABELS}
        best = max(LABELS, key=lambda label: (counts[label], -LABEL_INDEX[label]))
        return self._decide(best, seconds_seen)
