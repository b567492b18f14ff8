"""Helpers shared by the storage backends (not part of the contract)."""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional

__all__ = ['as_bytes', 'parse_counter', 'limit', 'TOPIC_CODES', 'warn_hand_offs_kept']

#: One-letter codes of the wait topics, as the backends' notifications carry them.
TOPIC_CODES: Dict[str, str] = {'queue': 'q', 'schedule': 's', 'data': 'd'}


def as_bytes(data: Any) -> bytes:
    """``data`` as bytes; TypeError naming the type if it is not bytes-like."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError('storage stores bytes, not %s' % type(data).__name__)


def parse_counter(key: str, value: Any) -> int:
    """The integer a counter key holds; ValueError naming the key if it holds something else."""
    try:
        return int(bytes(value).decode('ascii'))
    except (TypeError, UnicodeDecodeError, ValueError):
        raise ValueError('key %r does not hold an integer: %r' % (key, value[:40])) from None


def limit(count: Optional[int]) -> int:
    """A listing's ``limit`` as the backends pass it on: ``-1`` for no limit."""
    return -1 if count is None else max(int(count), 0)


def warn_hand_offs_kept(exc: BaseException) -> None:
    """Log that a worker session could not release the messages handed to it."""
    logging.getLogger('sqlq.storage').warning(
        'could not release the messages handed to this worker (%s): dead-owner recovery will '
        'return them when this process ends', exc)
