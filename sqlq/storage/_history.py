"""Helpers the backends share to keep the history of finished runs (see
:class:`~sqlq.storage.capabilities.Tracking`): per-minute sums of the runs of a batch, and
the merge of such sums (not part of the contract)."""
from __future__ import annotations

import bisect
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .types import DURATION_BUCKETS, Finished, RunStats

__all__ = ['BUCKETS', 'StatKey', 'aggregate', 'add_sums', 'minute_of', 'to_stats',
           'outcome_error']

#: Number of duration buckets (the last one: longer than every bound).
BUCKETS = len(DURATION_BUCKETS) + 1
#: (minute, name, outcome) of a row of sums.
StatKey = Tuple[float, str, str]


def minute_of(ts: float) -> float:
    """The start of the minute ``ts`` falls in (epoch seconds)."""
    return float(int(ts // 60) * 60)


def aggregate(entries: Iterable[Optional[Finished]]) -> Dict[StatKey, List[float]]:
    """Per (minute, name, outcome): ``[count, seconds, bucket 0, ..., bucket BUCKETS-1]``."""
    sums: Dict[StatKey, List[float]] = {}
    bounds = DURATION_BUCKETS
    for entry in entries:
        if entry is None:
            continue
        key = (minute_of(entry.finished_at), entry.name, entry.outcome)
        row = sums.get(key)
        if row is None:
            row = sums[key] = [0] * (BUCKETS + 2)
        row[0] += 1
        duration = entry.duration
        if duration is not None:
            row[1] += duration
            row[2 + bisect.bisect_left(bounds, duration)] += 1
    return sums


def add_sums(into: Dict[Tuple[str, str], List[float]], name: str, outcome: str,
             row: Sequence[float]) -> None:
    """Add a row of sums to ``into[(name, outcome)]``."""
    found = into.get((name, outcome))
    if found is None:
        into[(name, outcome)] = list(row)
    else:
        for i, value in enumerate(row):
            found[i] += value


def to_stats(name: str, outcome: str, row: Sequence[float],
             minute: Optional[float] = None) -> RunStats:
    """A :class:`RunStats` of a row of sums."""
    return RunStats(name, outcome, int(row[0]), float(row[1]),
                    tuple(int(b) for b in row[2:2 + BUCKETS]), minute)


def outcome_error(error: Optional[str], limit: int = 500) -> Optional[str]:
    """An error summary as stored: at most ``limit`` characters."""
    if error is None:
        return None
    return error if len(error) <= limit else error[:limit - 1] + '\u2026'
