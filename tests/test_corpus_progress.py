"""The corpus build's time-left estimate holds still through what made tqdm's swing:
skipped files, classes of very different cost, set-up bursts and Festival batches."""

from __future__ import annotations

import pytest

from agent.corpus.config import CorpusConfig
from agent.corpus.progress import REFERENCE, BuildEstimate, format_duration

#: The default build (config/corpus.yaml): 21 voices of 180 s, 2400 s per class, music
#: and 1800 s of more_music.
PLANNED = {"announcement": 3780.0, "ringback": 2400.0, "music": 4200.0, "silence": 2400.0}
CLIP_S = 10.0


def simulated_build(*, slowness: float, resumed_s: float = 1500.0, batch_every: int = 3
                    ) -> list[tuple[str, int, float]]:
    """(label, Festival renders, wall seconds) per file of a build on a machine
    ``slowness`` times slower than the reference: announcements render a batch of 12
    sentences every few files (the rest come from the cache), music loads its sources
    before its first file and its ``more_music`` pool halfway, and the first
    ``resumed_s`` of announcements are already on disk (renders 0, wall ~0, skipped)."""
    steps: list[tuple[str, int, float]] = []
    for label, seconds in PLANNED.items():
        for i in range(int(seconds // CLIP_S)):
            if label == "announcement" and i * CLIP_S < resumed_s:
                steps.append(("skip:announcement", 0, 0.002))
                continue
            renders = 12 if label == "announcement" and i % batch_every == 0 else 0
            cost = REFERENCE.per_second[label] * CLIP_S + REFERENCE.render * renders
            if label == "music" and i == 0:
                cost += REFERENCE.setup["music"]
            if label == "music" and i == int(seconds // CLIP_S) // 2:
                cost += REFERENCE.more_music_setup
            steps.append((label, renders, cost * slowness))
        steps.append((f"end:{label}", 0, 0.0))
    return steps


def estimates(steps: list[tuple[str, int, float]]) -> list[tuple[float, float]]:
    """(estimated, true) seconds left after each file."""
    now = [0.0]
    setup = {"music": REFERENCE.setup["music"] + REFERENCE.more_music_setup}
    est = BuildEstimate(PLANNED, setup=setup, clock=lambda: now[0])
    total = sum(wall for _, _, wall in steps)
    out = []
    for kind, renders, wall in steps:
        now[0] += wall
        if kind.startswith("skip:"):
            est.skipped(kind[5:], CLIP_S)
        elif kind.startswith("end:"):
            est.class_finished(kind[4:])
        else:
            est.built(kind, CLIP_S, renders=renders)
        out.append((est.remaining_s(), total - now[0]))
    return out


def naive(steps: list[tuple[str, int, float]]) -> list[float]:
    """What a bar divided by: audio left over audio per second so far."""
    done = elapsed = 0.0
    total_audio = sum(PLANNED.values())
    out = []
    for kind, _, wall in steps:
        elapsed += wall
        done += 0.0 if kind.startswith("end:") else CLIP_S
        out.append((total_audio - done) / (done / elapsed))
    return out


@pytest.mark.parametrize(("slowness", "batch_every"), [(0.5, 3), (1.0, 3), (3.0, 3), (0.5, 5),
                                                     (3.0, 2)])
def test_the_time_left_stays_near_the_truth_on_any_machine(slowness, batch_every):
    steps = simulated_build(slowness=slowness, batch_every=batch_every)
    pairs = estimates(steps)
    built = [i for i, (kind, _, _) in enumerate(steps) if kind in PLANNED]
    # Once ten files have shown how fast this machine is, and while there is something
    # left to estimate.
    for i in built[10:]:
        estimated, true = pairs[i]
        if true > 10.0 * slowness:
            assert 0.75 < estimated / true < 1.4, (i, steps[i], estimated, true)


def test_the_predicted_finish_moves_little_where_a_plain_rate_swings():
    steps = simulated_build(slowness=2.0)
    pairs = estimates(steps)
    elapsed = 0.0
    finish, plain_finish = [], []
    for (kind, _, wall), (estimated, _), plain in zip(steps, pairs, naive(steps), strict=True):
        elapsed += wall
        if kind in PLANNED:
            finish.append(elapsed + estimated)
            plain_finish.append(elapsed + plain)
    settled = finish[10:-3]
    assert max(settled) / min(settled) < 1.25
    plain = plain_finish[10:-3]
    assert max(plain) / min(plain) > 5  # the trap this estimate is for


def test_skipped_files_count_as_done_but_not_as_speed():
    now = [0.0]
    est = BuildEstimate({"silence": 1000.0}, clock=lambda: now[0])
    for _ in range(50):
        now[0] += 0.001
        est.skipped("silence", 10.0)
    assert est.speed == 1.0
    assert est.remaining_s() == pytest.approx(500.0 * REFERENCE.per_second["silence"])


def test_a_set_up_burst_is_spent_from_the_class_budget_not_taken_for_a_slow_machine():
    now = [0.0]
    est = BuildEstimate({"music": 100.0}, setup={"music": 50.0}, clock=lambda: now[0])
    now[0] += 50.0 + 10 * REFERENCE.per_second["music"]
    est.built("music", 10.0)
    assert est.speed == pytest.approx(1.0)
    assert est.setup_left["music"] == pytest.approx(0.0)
    assert est.remaining_s() == pytest.approx(90 * REFERENCE.per_second["music"])


def test_cached_festival_renders_lower_the_announcement_cost_still_to_come():
    now = [0.0]
    cached = BuildEstimate({"announcement": 1000.0}, clock=lambda: now[0])
    before = cached.remaining_s()
    for _ in range(30):
        now[0] += 10 * REFERENCE.per_second["announcement"]
        cached.built("announcement", 10.0, renders=0)
    assert cached.renders_per_second() < 0.1 * REFERENCE.renders_per_second
    assert cached.remaining_s() < 0.35 * before


def test_music_set_up_includes_more_music_only_when_configured():
    cfg = CorpusConfig()
    assert REFERENCE.setup_for("music", cfg) == REFERENCE.setup["music"] + \
        REFERENCE.more_music_setup
    none = CorpusConfig(more_music=[])
    assert REFERENCE.setup_for("music", none) == REFERENCE.setup["music"]
    assert REFERENCE.setup_for("silence", cfg) == 0.0


@pytest.mark.parametrize(("seconds", "text"), [
    (0.4, "0 s"), (59.6, "1 min 00 s"), (725.4, "12 min 05 s"), (3780.0, "1 h 03 min")])
def test_time_left_reads_at_a_glance(seconds, text):
    assert format_duration(seconds) == text
