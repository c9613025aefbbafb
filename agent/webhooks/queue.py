"""A bounded queue that never makes its producer wait: when full, it drops an item."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class DropQueue(Generic[T]):
    """First in, first out, at most ``maxsize`` items, for one event loop.

    Parameters
    ----------
    maxsize : int
        Items held at most.
    drop_oldest : bool
        When full, :meth:`put` evicts the oldest item to make room (True) or refuses the
        new one (False).

    Examples
    --------
    >>> q = DropQueue(2, drop_oldest=True)
    >>> [q.put(i) for i in range(3)]
    [None, None, 0]
    >>> len(q)
    2
    """

    def __init__(self, maxsize: int, *, drop_oldest: bool) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize: expected >= 1, got {maxsize}")
        self.maxsize = maxsize
        self.drop_oldest = drop_oldest
        self._items: deque[T] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> T | None:
        """Add ``item`` at once; returns the item dropped to keep the bound, if any."""
        dropped = None
        if len(self._items) >= self.maxsize:
            if not self.drop_oldest:
                return item
            dropped = self._items.popleft()
        self._items.append(item)
        self._ready.set()
        return dropped

    async def get(self) -> T:
        """The oldest item, waiting for one if the queue is empty."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()
