"""Path logic the framework integrations share (no framework imported)."""
from __future__ import annotations

import os

__all__ = ['same_file', 'beside']


def same_file(a: str, b: str) -> bool:
    """Whether two paths name one file: the same path once links are resolved, or, both
    existing, the same inode (a hard link)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def beside(database: str) -> str:
    """The queue file sqlq suggests for an application database: ``db.sqlite3`` ->
    ``db-queue.sqlite3`` (the name the storage's DatabaseSharedError suggests too)."""
    root, ext = os.path.splitext(database)
    return root + '-queue' + (ext or '.sqlite3')
