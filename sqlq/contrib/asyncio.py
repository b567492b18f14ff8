"""huey's ``huey.contrib.asyncio``: ``await aget_result(result)`` and
``await aget_result_group(group)``.

The same waits as ``await result`` / ``await result.aget(...)`` and ``await group.aget()``
(see :mod:`sqlq.awaiting`): woken by the storage's completion notification, not by polling.
"""
from __future__ import annotations

from sqlq.awaiting import aget_result, aget_result_group

__all__ = ['aget_result', 'aget_result_group']
