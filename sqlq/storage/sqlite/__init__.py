"""Storage in one SQLite file, through apsw: :class:`SqliteStorage`.

The modules of this package are the only ones of sqlq that import apsw.
"""
from __future__ import annotations

from sqlq.storage.sqlite.storage import BUSY_SPIN as BUSY_SPIN
from sqlq.storage.sqlite.storage import HAND_OFF_MAX as HAND_OFF_MAX
from sqlq.storage.sqlite.storage import SYNCHRONOUS_MODES as SYNCHRONOUS_MODES
from sqlq.storage.sqlite.storage import SqliteStorage

__all__ = ['SqliteStorage']
