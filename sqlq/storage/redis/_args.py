"""How values cross the script boundary: arguments as the script stores them, and claims as
its rows describe them."""
from __future__ import annotations

from typing import Any, Optional

from sqlq.storage.types import Claim, new_receipt

#: An absent script argument (no ttl, no id, unused guard slot).
NO_ARG = ''


def num(value: float) -> str:
    """A float as the script stores it (exact round trip)."""
    return repr(float(value))


def opt_float(raw: Any) -> Optional[float]:
    return None if raw in (None, b'') else float(raw)


def claim(owner: str, msg_id: Any, data: bytes, attempts: Any, recoveries: Any,
          priority: Any, deaths: Any = 0, started: Any = 0) -> Claim:
    """The claim of a script's row (``id, data, attempts, recoveries, priority, deaths,
    started``; the FIFO position is the message id)."""
    attempts = int(attempts)
    return Claim(data, new_receipt((int(msg_id), owner, attempts)), attempts, int(recoveries),
                 int(priority), int(msg_id), None, bool(int(started)), int(deaths))
