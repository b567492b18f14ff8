"""How values cross the script boundary: arguments as the script stores them, and claims as
its rows describe them."""
from __future__ import annotations

import bisect
from typing import Any, Optional

from sqlq.storage._history import minute_of, outcome_error
from sqlq.storage.types import DURATION_BUCKETS, Claim, Finished, new_receipt

#: An absent script argument (no ttl, no id, unused guard slot).
NO_ARG = ''


def num(value: float) -> str:
    """A float as the script stores it (exact round trip)."""
    return repr(float(value))


#: The 8 history arguments of no run (see ``scripts/tracking.lua``).
NO_RUN = (NO_ARG,) * 8


def run_args(run: Optional[Finished]) -> tuple[Any, ...]:
    """A run's 8 history arguments: key name outcome finished duration error minute bucket."""
    if run is None:
        return NO_RUN
    duration = run.duration
    return (run.key, run.name, run.outcome, num(run.finished_at),
            NO_ARG if duration is None else num(duration), outcome_error(run.error) or NO_ARG,
            '%d' % minute_of(run.finished_at),
            NO_ARG if duration is None else bisect.bisect_left(DURATION_BUCKETS, duration))


def opt_float(raw: Any) -> Optional[float]:
    return None if raw in (None, b'') else float(raw)


def claim(owner: str, msg_id: Any, data: bytes, attempts: Any, recoveries: Any,
          priority: Any, deaths: Any = 0, started: Any = 0) -> Claim:
    """The claim of a script's row (``id, data, attempts, recoveries, priority, deaths,
    started``; the FIFO position is the message id)."""
    attempts = int(attempts)
    return Claim(data, new_receipt((int(msg_id), owner, attempts)), attempts, int(recoveries),
                 int(priority), int(msg_id), None, bool(int(started)), int(deaths))
