"""The time left in a corpus build: an estimate that holds still while the build runs.

tqdm's estimate divides the seconds of audio left by the recent rate over all of them, and
a corpus build breaks that both ways. A second of each class costs very differently to
make: music sources are decoded (MIDI rendered) once for the whole class before its first
file (~50 s here) and again for ``more_music``, silence is generated; an announcement
costs four times more while Festival renders its sentences than once they are cached. And
the files a resumed build skips pass in a blink. The estimate swung from 11 s (skipping)
to 26 min (rendering).

:class:`BuildEstimate` counts the work left in *expected seconds* (:class:`CostModel`:
seconds of each class's audio, Festival renders, each class's one-off set-up, as measured
on a reference machine), and learns how much slower or faster this machine is from the
work it has done: cumulative sums with a prior, so one slow file cannot swing it; skipped
files excluded; a file that overruns its class's expected set-up is counted as that
set-up, not as a slow machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from agent.corpus.config import CorpusConfig


@dataclass(frozen=True)
class CostModel:
    """What the parts of a build cost on the reference machine, in wall seconds.

    Measured with ``config/corpus.yaml`` on the 2-core development machine (busy with
    other work, as builds usually are): the absolute values only set the first guess,
    the ratios between them are what keeps the estimate steady.
    """

    #: Per second of audio, by class, once its sources are loaded.
    per_second: Mapping[str, float] = field(default_factory=lambda: {
        "announcement": 0.014, "ringback": 0.019, "music": 0.032, "silence": 0.016})
    #: One-off loading before a class's first file: music decodes and screens every
    #: source file (47 s), and the ``more_music`` pool again when the class reaches it
    #: (66 s).
    setup: Mapping[str, float] = field(default_factory=lambda: {"music": 47.0})
    more_music_setup: float = 66.0
    #: One Festival sentence rendered (not read from the render cache).
    render: float = 0.11
    #: Renders per second of announcement audio when the cache is empty (a default build:
    #: 602 renders for 3,899 s; 13 of its 21 voices are Festival's).
    renders_per_second: float = 0.16

    def setup_for(self, label: str, cfg: CorpusConfig) -> float:
        """The one-off cost of ``label`` in a build with ``cfg``."""
        extra = (self.more_music_setup
                 if label == "music" and cfg.more_music and cfg.more_music_seconds > 0 else 0.0)
        return self.setup.get(label, 0.0) + extra


REFERENCE = CostModel()

#: How much expected work the prior speed (1.0, the reference machine) is worth.
PRIOR_WORK_S = 2.0
#: Announcement audio the prior render rate (an empty cache) is worth.
PRIOR_ANNOUNCEMENT_S = 30.0


class BuildEstimate:
    """The work a build has done and how long the rest will take.

    Parameters
    ----------
    planned : mapping of str to float
        Seconds of audio the build makes per class.
    setup : mapping of str to float, optional
        Each class's one-off cost (default: none; :meth:`CostModel.setup_for` in a build).
    model : CostModel
        Reference costs.
    clock : callable
        Wall-clock seconds (monotonic); injected by tests.

    Examples
    --------
    >>> t = iter([0.0, 1.0, 2.0])
    >>> est = BuildEstimate({"silence": 100.0}, clock=lambda: next(t))
    >>> est.built("silence", 50.0)  # 1 s, where the reference machine takes 0.8 s
    >>> round(est.remaining_s(), 2)
    0.81
    """

    def __init__(self, planned: Mapping[str, float], *,
                 setup: Mapping[str, float] | None = None, model: CostModel = REFERENCE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.model = model
        self.planned = dict(planned)
        self.done = dict.fromkeys(self.planned, 0.0)
        self.setup_left = {label: (setup or {}).get(label, 0.0) for label in self.planned}
        self._clock = clock
        self._mark = clock()
        self._spent = 0.0  # wall seconds of the work built (not skipped)
        self._expected = 0.0  # the same work in expected seconds
        self._announcement_s = 0.0
        self._renders = 0

    @property
    def speed(self) -> float:
        """Wall seconds per expected second here (1.0 = the reference machine)."""
        return (self._spent + PRIOR_WORK_S) / (self._expected + PRIOR_WORK_S)

    def renders_per_second(self) -> float:
        """Festival renders per second of announcement audio still to come."""
        return ((self._renders + self.model.renders_per_second * PRIOR_ANNOUNCEMENT_S)
                / (self._announcement_s + PRIOR_ANNOUNCEMENT_S))

    def _cost_per_second(self, label: str) -> float:
        cost = self.model.per_second.get(label, 0.0)
        if label == "announcement":
            cost += self.model.render * self.renders_per_second()
        return cost

    def skipped(self, label: str, seconds: float) -> None:
        """``seconds`` of ``label`` already on disk: done, and no measure of speed."""
        self.done[label] += seconds
        self._mark = self._clock()

    def built(self, label: str, seconds: float, *, renders: int = 0) -> None:
        """A file of ``seconds`` of ``label`` was made, running Festival ``renders`` times;
        its cost is the wall time since the previous file."""
        now = self._clock()
        wall, self._mark = now - self._mark, now
        expected = self.model.per_second.get(label, 0.0) * seconds + self.model.render * renders
        overrun = wall / self.speed - expected
        if overrun > 0 and self.setup_left[label] > 0:
            absorbed = min(self.setup_left[label], overrun)
            self.setup_left[label] -= absorbed
            expected += absorbed
        self._spent += wall
        self._expected += expected
        if label == "announcement":
            self._announcement_s += seconds
            self._renders += renders
        self.done[label] += seconds

    def class_finished(self, label: str) -> None:
        """``label`` is complete: set-up it never needed is no longer to come."""
        self.setup_left[label] = 0.0
        self.done[label] = max(self.done[label], self.planned[label])

    def remaining_s(self) -> float:
        """Estimated wall seconds until the build is done."""
        expected = sum(
            self.setup_left[label]
            + max(0.0, self.planned[label] - self.done[label]) * self._cost_per_second(label)
            for label in self.planned)
        return expected * self.speed


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min 05 s``, ``1 h 03 min``: the remaining time at a glance.

    Examples
    --------
    >>> format_duration(725.4)
    '12 min 05 s'
    """
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
