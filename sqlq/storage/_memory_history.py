"""The history of finished runs of :class:`~sqlq.storage.memory.MemoryStorage` (see
:class:`~sqlq.storage.capabilities.Tracking`): entries by id and by key, and per-minute sums.

Not thread-safe by itself: the storage calls it with its lock held. Kept apart from the state
a transaction snapshots (a deep copy per transaction would grow with the history): an entry
is only ever appended inside a transaction, so a rollback removes the entries written since
its :meth:`MemoryHistory.mark`.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ._history import StatKey, add_sums, aggregate, outcome_error, to_stats
from .types import Finished, HistoryEntry, RunStats

__all__ = ['MemoryHistory']

#: Most entries kept: a MemoryQueue often runs without a consumer (immediate mode, tests),
#: whose maintenance would prune them; past this the oldest go as new ones come.
MAX_ENTRIES = 100_000
#: (newest entry id, copy of the per-minute sums, copy of the all-time sums)
Mark = Tuple[int, Dict[StatKey, List[float]], Dict[Tuple[str, str], List[float]]]


class MemoryHistory:
    """Entries (oldest first), an index by key, and sums per minute and of pruned minutes."""

    def __init__(self) -> None:
        self.seq = 0
        self.entries: Dict[int, HistoryEntry] = {}
        self.by_key: Dict[str, List[int]] = {}
        self.minutes: Dict[StatKey, List[float]] = {}
        self.folded: Dict[Tuple[str, str], List[float]] = {}

    def clear(self) -> None:
        seq = self.seq
        self.__init__()  # type: ignore[misc]
        self.seq = seq

    def mark(self) -> Mark:
        return self.seq, copy.deepcopy(self.minutes), copy.deepcopy(self.folded)

    def rollback(self, mark: Mark) -> None:
        seq, self.minutes, self.folded = mark
        for entry_id in [i for i in reversed(self.entries) if i > seq]:
            self._remove(entry_id)

    def add(self, finished: Finished, enqueued_at: Optional[float] = None,
            claimed_at: Optional[float] = None, attempts: int = 0,
            owner: Optional[str] = None) -> None:
        self.seq += 1
        entry = HistoryEntry(self.seq, finished.key, finished.name, finished.outcome,
                             float(finished.finished_at), finished.duration,
                             outcome_error(finished.error), enqueued_at, claimed_at, attempts,
                             owner)
        self.entries[entry.id] = entry
        self.by_key.setdefault(entry.key, []).append(entry.id)
        if len(self.entries) > MAX_ENTRIES:
            self._remove(next(iter(self.entries)))
        for stat_key, row in aggregate([finished]).items():
            found = self.minutes.get(stat_key)
            if found is None:
                self.minutes[stat_key] = row
            else:
                for i, value in enumerate(row):
                    found[i] += value

    def _remove(self, entry_id: int) -> None:
        entry = self.entries.pop(entry_id)
        ids = self.by_key.get(entry.key)
        if ids is not None:
            ids.remove(entry_id)
            if not ids:
                del self.by_key[entry.key]

    def listing(self, limit: Optional[int], before: Optional[int], key: Optional[str],
                name: Optional[str], outcome: Optional[str]) -> List[HistoryEntry]:
        if limit is not None and limit <= 0:
            return []
        ids: Sequence[int] = self.by_key.get(key, []) if key is not None else list(self.entries)
        found = []
        for entry_id in reversed(ids):
            if before is not None and entry_id >= before:
                continue
            entry = self.entries[entry_id]
            if (name is None or entry.name == name) and \
                    (outcome is None or entry.outcome == outcome):
                found.append(entry)
                if limit is not None and len(found) >= limit:
                    break
        return found

    def stats(self, since: Optional[float], per_minute: bool) -> List[RunStats]:
        if per_minute:
            return [to_stats(name, outcome, row, minute)
                    for (minute, name, outcome), row in sorted(self.minutes.items())
                    if since is None or minute >= since]
        sums: Dict[Tuple[str, str], List[Any]] = {}
        if since is None:
            for (name, outcome), row in self.folded.items():
                add_sums(sums, name, outcome, row)
        for (minute, name, outcome), row in self.minutes.items():
            if since is None or minute >= since:
                add_sums(sums, name, outcome, row)
        return [to_stats(name, outcome, row) for (name, outcome), row in sorted(sums.items())]

    def prune(self, before: Optional[float], keep: Optional[int],
              stats_before: Optional[float]) -> int:
        doomed = []
        excess = len(self.entries) - keep if keep is not None else 0
        for entry_id, entry in self.entries.items():
            if excess > 0:
                excess -= 1
            elif before is None or entry.finished_at >= before:
                break
            doomed.append(entry_id)
        for entry_id in doomed:
            self._remove(entry_id)
        if stats_before is not None:
            for stat_key in [k for k in self.minutes if k[0] < stats_before]:
                add_sums(self.folded, stat_key[1], stat_key[2], self.minutes.pop(stat_key))
        return len(doomed)

