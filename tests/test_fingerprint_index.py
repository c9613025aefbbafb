"""The lookup index: time-gap neighbours of query hashes and the raw-vote prefilter."""

from __future__ import annotations

import numpy as np
import pytest

from agent.fingerprint.index import HashIndex
from agent.fingerprint.landmarks import DF_BITS, DT_BITS, Landmarks, fingerprint
from tests.test_fingerprint_landmarks import tone_melody

SR = 8000
DT_MASK = (1 << DT_BITS) - 1


def with_dt_moved(lm: Landmarks, step: int) -> Landmarks:
    """``lm`` as a codec that moved every target peak by ``step`` frames would hash it."""
    h = lm.hashes.astype(np.int64)
    dt = (h & DT_MASK) + step
    ok = (dt >= 1) & (dt <= DT_MASK)
    return Landmarks(hashes=((h[ok] & ~DT_MASK) | dt[ok]).astype(np.uint32),
                     times=lm.times[ok])


@pytest.mark.parametrize("step", [-1, 1])
def test_query_with_every_time_gap_one_frame_off_still_finds_its_entry(step: int) -> None:
    x = tone_melody(8.0, seed=5)
    entries = [(i, fingerprint(tone_melody(8.0, seed=100 + i))) for i in range(5)]
    entries.append((99, fingerprint(x)))
    clean = fingerprint(x[SR : 4 * SR])
    moved = with_dt_moved(clean, step)
    strict = HashIndex(entries, dt_slack=0)
    baseline = strict.query(clean, top=1)[0].count
    # Tones held over several frames re-create some moved hashes; most are lost though.
    assert strict.query(moved, top=1)[0].count < 0.7 * baseline
    tolerant = HashIndex(entries, dt_slack=1).query(moved, top=1)
    assert tolerant[0].entry_id == 99
    assert tolerant[0].count >= baseline


def test_time_gap_neighbours_stay_inside_the_dt_field() -> None:
    # dt = 1 and dt = 63 sit at the field's edges: a neighbour must not become dt = 0 or
    # carry into the frequency-difference bits.
    df = 5 + (1 << (DF_BITS - 1))
    hashes = np.array([(7 << (DF_BITS + DT_BITS)) | (df << DT_BITS) | dt for dt in (1, 30, 63)],
                      dtype=np.uint32)
    index = HashIndex([], dt_slack=1)
    got, times = index._with_neighbours(Landmarks(hashes, np.array([0, 10, 20], np.int32)))
    fields = [(int(h) >> (DF_BITS + DT_BITS), (int(h) >> DT_BITS) & ((1 << DF_BITS) - 1),
               int(h) & DT_MASK) for h in got]
    assert sorted(f[2] for f in fields) == [1, 2, 29, 30, 31, 62, 63]
    assert {f[:2] for f in fields} == {(7, df)}
    assert sorted(times.tolist()) == [0, 0, 10, 10, 10, 20, 20]


def test_true_entry_outvoted_offset_blind_by_a_hundred_others_is_still_found() -> None:
    # Long entries collect more offset-blind votes by chance than the true entry of a
    # heavily coded query; the prefilter must keep enough entries for the time-consistent
    # vote to see it. Here 100 decoys each hold more of the query's hashes than the true
    # entry, but at scattered times.
    rng = np.random.default_rng(7)
    query = Landmarks(hashes=rng.choice(1 << 20, size=60, replace=False).astype(np.uint32),
                      times=np.sort(rng.integers(0, 180, size=60)).astype(np.int32))
    keep = np.sort(rng.choice(60, size=25, replace=False))
    true_entry = Landmarks(hashes=query.hashes[keep], times=query.times[keep] + 500)
    entries: list[tuple[int, Landmarks]] = [(999, true_entry)]
    for i in range(100):
        pick = rng.choice(60, size=40, replace=False)
        entries.append((i, Landmarks(hashes=query.hashes[pick],
                                     times=rng.integers(0, 5000, size=40).astype(np.int32))))
    assert HashIndex(entries, prefilter=64).query(query, top=1)[0].entry_id != 999
    found = HashIndex(entries).query(query, top=1)
    assert found[0].entry_id == 999
    assert found[0].offset == 500
