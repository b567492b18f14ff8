"""Tracking on Redis (see :class:`~sqlq.storage.capabilities.Tracking`): messages by key, the
history of finished runs and its sums, as script operations (``scripts/tracking.lua``,
``scripts/op_tracking.lua``). A run is recorded by the same script run that releases its
claim (``fin``, ``complete``)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

from sqlq.storage._history import BUCKETS, add_sums, to_stats
from sqlq.storage.redis._args import NO_ARG, num, opt_float, run_args
from sqlq.storage.redis._queue import QueueOps
from sqlq.storage.types import Finished, HistoryEntry, Location, Receipt, RunStats


def _text(raw: Any) -> Optional[str]:
    return None if raw in (None, b'') else bytes(raw).decode()


class TrackingOps(QueueOps):
    """Locate messages by key; record, list, sum and prune the history."""

    def finish(self, receipt: Any, finished: Optional[Finished] = None,
               reason: Optional[str] = None) -> bool:
        Receipt.of(receipt)
        return self._settle('fin', receipt, NO_ARG if reason is None else str(reason) or ' ',
                            *run_args(finished))

    def record_finished(self, entries: Sequence[Finished]) -> None:
        if entries:
            args: list[Any] = [len(entries)]
            for entry in entries:
                args.extend(run_args(entry))
            self._write(self._tx(), 'hist', *args)

    def locate(self, key: str) -> list[Location]:
        return [Location(state.decode(), int(i), data, opt_float(e), opt_float(eta),
                         _text(owner), opt_float(c), int(a), int(r), int(p), _text(why),
                         opt_float(t))
                for state, i, data, e, eta, owner, c, a, r, p, why, t
                in self._read('locate', str(key))]

    def history(self, limit: Optional[int] = 50, before: Optional[int] = None,
                key: Optional[str] = None, name: Optional[str] = None,
                outcome: Optional[str] = None) -> list[HistoryEntry]:
        rows = self._read('history', -1 if limit is None else max(int(limit), 0),
                          NO_ARG if before is None else int(before), key or NO_ARG,
                          name or NO_ARG, outcome or NO_ARG)
        return [HistoryEntry(int(i), k.decode(), n.decode(), x.decode(), float(f),
                             opt_float(u), _text(r), opt_float(e), opt_float(c), int(a),
                             _text(o))
                for i, k, n, x, f, u, r, e, c, a, o in rows]

    def history_stats(self, since: Optional[float] = None,
                      per_minute: bool = False) -> list[RunStats]:
        per: dict[tuple[float, str, str], list[float]] = {}
        if since is None and per_minute:
            since = 0.0
        for minute, flat in self._read('hstats', NO_ARG if since is None else num(since)):
            at = float(minute) if minute else 0.0
            for i in range(0, len(flat), 2):
                name, outcome, field = bytes(flat[i]).decode().split('\0')
                row = per.setdefault((at, name, outcome), [0.0] * (BUCKETS + 2))
                index = 0 if field == 'c' else 1 if field == 's' else 2 + int(field[1:])
                row[index] += float(flat[i + 1])
        if per_minute:
            return [to_stats(name, outcome, row, at)
                    for (at, name, outcome), row in sorted(per.items()) if at]
        sums: dict[tuple[str, str], list[float]] = {}
        for (_, name, outcome), row in per.items():
            add_sums(sums, name, outcome, row)
        return [to_stats(name, outcome, row) for (name, outcome), row in sorted(sums.items())]

    def prune_history(self, before: Optional[float] = None, keep: Optional[int] = None,
                      stats_before: Optional[float] = None) -> int:
        self._refuse_in_transaction('prune_history')
        return int(self._one('prunehist', NO_ARG if before is None else num(before),
                             NO_ARG if keep is None else max(int(keep), 0),
                             NO_ARG if stats_before is None else num(stats_before))[0])
