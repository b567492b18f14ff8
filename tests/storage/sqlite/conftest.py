"""Fixtures of the SQLite-only tests: the backend is 'sqlite'; ``storage`` is a SqliteStorage
of its own on ``db_path``."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from sqlq.storage.sqlite import SqliteStorage


@pytest.fixture
def backend() -> str:
    return 'sqlite'


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / 'queue.db')


@pytest.fixture
def storage(db_path: str) -> Iterator[SqliteStorage]:
    s = SqliteStorage(db_path, 'test')
    yield s
    s.close()
