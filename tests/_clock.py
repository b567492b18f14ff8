"""The one fake clock of the tests."""
from __future__ import annotations


class FakeClock:
    """Epoch-seconds clock the test advances by hand (the ``clock=`` option of queues and
    storages)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
