"""Reading a call's early media from the WAV file a pjsua2 worker is still writing.

The worker's :class:`agent.sip.tap.FrameTap` appends each 20 ms frame of the carrier leg
to a WAV file on tmpfs. The reader here is the other end: it polls the file's size and
turns each new stretch of 16-bit PCM into float32 samples. ``agent.audio.io`` reads
finished files; this module exists because the file is still growing and its header
(sizes) is only filled in when the tap closes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: The tap writes a canonical 44-byte RIFF/fmt/data header before the PCM data.
WAV_HEADER_BYTES = 44


class WavTail:
    """Incremental reader of a PCM16 mono WAV file that is being appended to.

    Parameters
    ----------
    path : str or Path
        The tap's file. It may not exist yet; :meth:`read` then returns nothing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._pos = WAV_HEADER_BYTES
        self.samples_read = 0

    def read(self, *, max_samples: int | None = None) -> np.ndarray:
        """The samples appended since the last call, as float32 in [-1, 1].

        Only whole samples are returned; a half-written sample waits for the next call.
        """
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return np.zeros(0, dtype=np.float32)
        size = os.fstat(self._fd).st_size
        available = (size - self._pos) // 2
        if max_samples is not None:
            available = min(available, max_samples)
        if available <= 0:
            return np.zeros(0, dtype=np.float32)
        data = os.pread(self._fd, available * 2, self._pos)
        n = len(data) // 2
        self._pos += n * 2
        self.samples_read += n
        return np.frombuffer(data[: n * 2], dtype="<i2").astype(np.float32) / 32768.0

    def close(self) -> None:
        """Release the file descriptor (the worker unlinks the file)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
