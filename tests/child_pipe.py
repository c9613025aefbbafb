"""A stand-in for the supervisor's end of a child's socket, for tests that drive the
supervisor's handlers without starting workers."""

from __future__ import annotations

from typing import Any

from agent.sip import messages as m


class Pipe:
    """The supervisor's end of a child's socket: keeps what it was sent."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        self.sent += m.Decoder().feed(data)
