"""Signal names (huey's) and the dispatcher that delivers them to receivers.

A receiver is called as ``receiver(signal, task, *extra)``; a receiver that raises is logged
and does not stop the task or the other receivers.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List

logger = logging.getLogger('sqlq.signals')

SIGNAL_CANCELED = 'canceled'
SIGNAL_COMPLETE = 'complete'
SIGNAL_ERROR = 'error'
SIGNAL_EXECUTING = 'executing'
SIGNAL_EXPIRED = 'expired'
SIGNAL_LOCKED = 'locked'
SIGNAL_RETRYING = 'retrying'
SIGNAL_REVOKED = 'revoked'
SIGNAL_SCHEDULED = 'scheduled'
SIGNAL_INTERRUPTED = 'interrupted'
SIGNAL_ENQUEUED = 'enqueued'
SIGNAL_TIMEOUT = 'timeout'
SIGNAL_RATE_LIMITED = 'rate-limited'

ALL_SIGNALS = frozenset((
    SIGNAL_CANCELED, SIGNAL_COMPLETE, SIGNAL_ERROR, SIGNAL_EXECUTING, SIGNAL_EXPIRED,
    SIGNAL_LOCKED, SIGNAL_RETRYING, SIGNAL_REVOKED, SIGNAL_SCHEDULED, SIGNAL_INTERRUPTED,
    SIGNAL_ENQUEUED, SIGNAL_TIMEOUT, SIGNAL_RATE_LIMITED))

Receiver = Callable[..., Any]


class Signals:
    """Receivers connected per signal name; delivery in connection order."""

    def __init__(self) -> None:
        self._receivers: Dict[str, List[Receiver]] = {name: [] for name in ALL_SIGNALS}

    def connect(self, receiver: Receiver, *signals: str) -> None:
        """Connect ``receiver`` to ``signals`` (to every signal when none are named)."""
        for name in self._validate(signals or ALL_SIGNALS):
            if receiver not in self._receivers[name]:
                self._receivers[name].append(receiver)

    def disconnect(self, receiver: Receiver, *signals: str) -> None:
        """Disconnect ``receiver`` from ``signals`` (from every signal when none are named)."""
        for name in self._validate(signals or ALL_SIGNALS):
            if receiver in self._receivers[name]:
                self._receivers[name].remove(receiver)

    def has_receivers(self) -> bool:
        return any(self._receivers.values())

    def send(self, signal: str, task: Any, *extra: Any) -> None:
        """Deliver ``signal`` to its receivers."""
        for receiver in tuple(self._receivers[signal]):
            try:
                receiver(signal, task, *extra)
            except Exception:
                logger.exception('signal receiver %r failed on %s', receiver, signal)

    @staticmethod
    def _validate(signals: Any) -> List[str]:
        unknown = [s for s in signals if s not in ALL_SIGNALS]
        if unknown:
            raise ValueError('unknown signal name(s) %s; known: %s'
                             % (', '.join(map(repr, unknown)), ', '.join(sorted(ALL_SIGNALS))))
        return list(signals)


__all__ = ['Signals', 'ALL_SIGNALS'] + sorted(
    name for name in list(globals()) if name.startswith('SIGNAL_'))
