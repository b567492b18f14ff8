"""Progress of long CLI work (``requeue --all``, ``purge --all``, ``vacuum``) on standard error:
one line redrawn in place, ``label [#####-----] 50% 5000/10000``. Shown when standard error is
a terminal, or when asked (``--progress``); never mixed into standard output, which stays for
results and ``--json``."""
from __future__ import annotations

import sys
import time
from typing import Any, Optional, TextIO

__all__ = ['Progress', 'wanted']

WIDTH = 30
#: Shortest time between two redraws (seconds); the last state is always drawn.
REDRAW = 0.1


def wanted(args: Any, stream: Optional[TextIO] = None) -> bool:
    """Whether to show progress: ``--progress``, or standard error is a terminal (and not
    ``--no-progress``)."""
    choice = getattr(args, 'progress', None)
    if choice is not None:
        return bool(choice)
    stream = stream or sys.stderr
    return bool(getattr(stream, 'isatty', lambda: False)())


class Progress:
    """A progress line for ``total`` units of work (None: unknown, a count only)."""

    def __init__(self, label: str, total: Optional[int], enabled: bool,
                 stream: Optional[TextIO] = None, unit: str = '') -> None:
        self.label = label
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.unit = unit
        self.done = 0
        self._drawn = 0.0

    def __enter__(self) -> 'Progress':
        self._draw(force=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self._draw(force=True)
            self.stream.write('\n')
            self.stream.flush()

    def advance(self, amount: int = 1) -> None:
        self.update(self.done + amount)

    def update(self, done: int) -> None:
        self.done = done
        self._draw()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn < REDRAW:
            return
        self._drawn = now
        self.stream.write('\r' + self.text())
        self.stream.flush()

    def text(self) -> str:
        if not self.total:
            return '%s %d%s' % (self.label, self.done, self.unit)
        share = min(max(self.done / self.total, 0.0), 1.0)
        filled = int(round(share * WIDTH))
        return '%s [%s%s] %3d%% %d/%d%s' % (self.label, '#' * filled, '-' * (WIDTH - filled),
                                            int(share * 100), self.done, self.total,
                                            self.unit)
