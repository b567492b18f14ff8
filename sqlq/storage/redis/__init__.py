"""Storage on a Redis server, through redis-py: :class:`RedisStorage`. The modules of this
package are the only ones of sqlq that import redis.

Producers and consumers on several hosts share one queue by pointing at the same server.

Atomicity
---------
Every operation is one run of one Lua script (:mod:`._scripts`): one round
trip, and Redis runs a script atomically, so no step can lose or duplicate a message between
two commands. On Redis 7 and later the script is a function library, loaded on first use (and
again if the server lost it) and called with ``FCALL``, so its helpers are not rebuilt on every
call; on older servers, or for a user not permitted functions, it is loaded once and called
with ``EVALSHA``.

:meth:`RedisStorage.transaction` buffers the writes made in its block (in this thread) and
applies them, at the end of the outermost block, in one script run -- all of them or none;
nested blocks are savepoints of the buffer. Reads made inside the block that decide what the
block does are answered from the block's own writes when it made them (a claim it took, a key
it wrote) and otherwise from the server, and each such read of server state becomes a *guard*:
a claim is still held with the receipt's fencing token (``ack``/``bury``/``release``), a key
still holds the value read (``put_if_empty``, ``incr``, ``pop_data``, ``peek_data``...), a
scheduled message is still there (``read_schedule``), a ready message is still ready
(``dequeue``). The script checks every guard before it writes anything; if one no longer holds,
nothing is applied and the commit raises :class:`~sqlq.exceptions.TransactionConflict` (for
example: the task's claim was taken over by dead-owner recovery while its outcome was being
committed, or two consumers fired the same periodic task in the same instant). So a stale
claim rolls the outcome back, and no one ever sees part of a block. Reads inside a block that
only report (``queue_size``, listings, ``stats``) show the committed state, not the block's
buffered writes.

Fencing: a receipt is ``(message id, owner id, attempts)``; a claim is held while the message
still has that owner and attempt count, so a receipt whose claim was released, recovered or
claimed again is stale for good.

Where each concern lives
------------------------
- :mod:`.storage`: :class:`RedisStorage`, the contract's methods, assembled from the modules
  below; the schedule, dead letters, owners and upkeep.
- :mod:`._queue`: the ready queue, dequeue and settling claims.
- :mod:`._data`: key/value data and results; key expiry.
- :mod:`._wait`: each thread's subscription, ``wait_for_change`` and the hand-off to idle
  workers (wake-up and hand-off protocols).
- :mod:`._transaction`: the buffered writes and guards of a transaction.
- :mod:`._base`: the connection pool, per-thread connections across forks, script runs
  (``FCALL``/``EVALSHA``) and errors.
- :mod:`._resp`: the transport of a thread's connection and subscription (the only code on
  redis-py private attributes, with a public-API fallback).
- :mod:`._scripts` and ``scripts/*.lua``: the Lua.

Not supported: Redis Cluster (a script touches keys it does not declare).
"""
from __future__ import annotations

from sqlq.exceptions import ConfigurationError

try:
    import redis  # noqa: F401 (before the modules that need it: a clear error if missing)
except ImportError as _exc:  # pragma: no cover - exercised by a test with redis hidden
    raise ConfigurationError("RedisQueue needs redis-py: pip install 'sqlq[redis]' (%s)"
                             % _exc) from None

from sqlq.storage.redis.storage import HAND_OFF_MAX as HAND_OFF_MAX  # noqa: E402
from sqlq.storage.redis.storage import RedisStorage  # noqa: E402

__all__ = ['RedisStorage']
