"""The in-memory lookup index: sorted hashes with their entry and time, and offset voting.

All postings of the library live in three parallel numpy arrays sorted by hash. A query
looks each of its hashes up with ``searchsorted``, gathers the postings, and votes for
(entry, reference time − query time) pairs; a true match piles its votes on one offset,
chance coincidences spread theirs. Each query hash is also looked up with its time gap
one frame shorter and longer, since low-rate codecs nudge peaks by a frame. Everything is
vectorised, so a 3-s query against 10,000 entries costs a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from agent.fingerprint.landmarks import DT_BITS, Landmarks

# Votes this many frames off the best offset still count for it.
_OFFSET_TOLERANCE = 1
_OFFSET_SHIFT = 1 << 20


@dataclass(frozen=True, slots=True)
class Candidate:
    """One entry's best time-consistent vote.

    Attributes
    ----------
    entry_id : int
        The library entry.
    count : int
        Query hashes agreeing on one offset (±1 frame).
    offset : int
        Reference frame − query frame of the agreeing hashes.
    query_hashes : int
        Hashes in the query.
    blocks : int
        Distinct quarter-second blocks of the query holding agreeing hashes: a true match
        agrees all along the query, a word two announcements share only in one place.
    evidence : int
        Agreeing hashes with at most ``block_cap`` counted per block: what the score is
        calibrated on, so that one shared word cannot outweigh agreement along the query.
    """

    entry_id: int
    count: int
    offset: int
    query_hashes: int
    blocks: int
    evidence: int
    query_blocks: int = 0

    @property
    def coverage(self) -> float:
        """Share of the query's blocks (those holding any hash) that agree with the entry."""
        return self.blocks / self.query_blocks if self.query_blocks else 0.0


class HashIndex:
    """Sorted postings of many entries' landmarks.

    Parameters
    ----------
    entries : iterable of (entry_id, Landmarks)
        The references to index.
    max_postings : int
        Hashes with more postings than this are skipped at query time: they are too
        common to tell entries apart and would dominate the cost.
    prefilter : int
        In a large library, only the entries with the most raw (offset-blind) votes get
        the full offset voting, so its cost stays flat as the library grows. Raw votes
        favour long entries, so the true entry of a heavily coded query can rank well below
        the top hundred: 256 keeps it (64 lost 2% of 3-s Opus 8 kb/s queries at 10,000
        entries).
    dt_slack : int
        Each query hash is also looked up with its time gap this many frames shorter and
        longer: a codec that nudges either peak by one frame (Opus at 8 kb/s moves about
        one peak in twelve that way) then still finds the reference's hash.
    """

    def __init__(self, entries: Iterable[tuple[int, Landmarks]], *, max_postings: int = 5000,
                 prefilter: int = 256, dt_slack: int = 1):
        slots: list[np.ndarray] = []
        hashes: list[np.ndarray] = []
        times: list[np.ndarray] = []
        entry_ids: list[int] = []
        for entry_id, lm in entries:
            slots.append(np.full(len(lm), len(entry_ids), dtype=np.int32))
            entry_ids.append(int(entry_id))
            hashes.append(lm.hashes)
            times.append(lm.times)
        self.entry_ids = np.array(entry_ids, dtype=np.int64)
        if hashes:
            h = np.concatenate(hashes)
            order = np.argsort(h, kind="stable")
            self.hashes = h[order]
            self.times = np.concatenate(times)[order].astype(np.int32)
            self.slots = np.concatenate(slots)[order]
        else:
            self.hashes = np.zeros(0, np.uint32)
            self.times = np.zeros(0, np.int32)
            self.slots = np.zeros(0, np.int32)
        self.max_postings = max_postings
        self.prefilter = prefilter
        self.dt_slack = dt_slack

    def __len__(self) -> int:
        return len(self.entry_ids)

    @property
    def postings(self) -> int:
        """Total number of stored hashes."""
        return int(self.hashes.size)

    @property
    def nbytes(self) -> int:
        """Memory held by the posting arrays."""
        return int(self.hashes.nbytes + self.times.nbytes + self.slots.nbytes)

    def _with_neighbours(self, lm: Landmarks) -> tuple[np.ndarray, np.ndarray]:
        """The query's hashes plus their ``dt_slack`` neighbours in time gap, with times."""
        h = lm.hashes.astype(np.int64)
        t = lm.times.astype(np.int64)
        dt = h & ((1 << DT_BITS) - 1)
        hashes, times = [h], [t]
        for d in range(1, self.dt_slack + 1):
            for step in (-d, d):
                # dt is the hash's low field: adding to the hash changes only dt while it
                # stays in range.
                ok = (dt + step >= 1) & (dt + step < (1 << DT_BITS))
                hashes.append(h[ok] + step)
                times.append(t[ok])
        return np.concatenate(hashes).astype(np.uint32), np.concatenate(times)

    def query(self, lm: Landmarks, *, top: int = 2, block_frames: int = 16,
              block_cap: int = 4, shortlist: int = 8) -> list[Candidate]:
        """The ``top`` entries with the most time-consistent votes, best first.

        Parameters
        ----------
        lm : Landmarks
            The query's landmarks.
        top : int
            How many distinct entries to return, best first.
        block_frames : int
            Frames per block when counting how much of the query agrees.
        block_cap : int
            Most agreeing hashes one block adds to ``evidence``.
        shortlist : int
            Entries with the most raw votes that are re-ranked by evidence.
        """
        if len(lm) == 0 or self.hashes.size == 0:
            return []
        q_h, q_times = self._with_neighbours(lm)
        lo = np.searchsorted(self.hashes, q_h, side="left")
        hi = np.searchsorted(self.hashes, q_h, side="right")
        n = hi - lo
        n[n > self.max_postings] = 0
        total = int(n.sum())
        if total == 0:
            return []
        # Expand [lo, hi) ranges into one flat posting index array.
        flat = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(total)
        q_t = np.repeat(q_times, n)
        slot = self.slots[flat]
        if self.entry_ids.size > self.prefilter:
            votes = np.bincount(slot, minlength=self.entry_ids.size)
            chosen = np.zeros(self.entry_ids.size, dtype=bool)
            chosen[np.argpartition(votes, -self.prefilter)[-self.prefilter:]] = True
            keep = chosen[slot]
            flat, q_t, slot = flat[keep], q_t[keep], slot[keep]
        offset = self.times[flat].astype(np.int64) - q_t
        key = slot.astype(np.int64) * (2 * _OFFSET_SHIFT) + (offset + _OFFSET_SHIFT)
        keys, counts = np.unique(key, return_counts=True)
        # Votes one frame off an offset belong to it too (a query cut between two hops, a
        # codec nudging a peak): add the neighbouring keys' counts.
        summed = counts.copy()
        adjacent = np.diff(keys) == 1
        summed[1:] += np.where(adjacent, counts[:-1], 0)
        summed[:-1] += np.where(adjacent, counts[1:], 0)
        entry = keys // (2 * _OFFSET_SHIFT)
        order = np.lexsort((-summed, entry))
        first = np.ones(order.size, dtype=bool)
        first[1:] = entry[order][1:] != entry[order][:-1]
        best = order[first]
        best = best[np.argsort(-summed[best], kind="stable")][:shortlist]
        query_blocks = int(np.unique(lm.times // block_frames).size)
        out = []
        for i in best:
            off = int(keys[i] % (2 * _OFFSET_SHIFT) - _OFFSET_SHIFT)
            agree = (slot == entry[i]) & (np.abs(offset - off) <= _OFFSET_TOLERANCE)
            _, per_block = np.unique(q_t[agree] // block_frames, return_counts=True)
            out.append(
                Candidate(
                    entry_id=int(self.entry_ids[entry[i]]),
                    count=int(summed[i]),
                    offset=off,
                    query_hashes=len(lm),
                    blocks=int(per_block.size),
                    evidence=int(np.minimum(per_block, block_cap).sum()),
                    query_blocks=query_blocks,
                )
            )
        out.sort(key=lambda c: (-c.evidence, -c.count))
        return out[:top]
