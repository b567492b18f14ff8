"""The Lua behind :class:`sqlq.storage.redis.RedisStorage`: the ``.lua`` files of ``scripts/``,
read at import and assembled into one EVAL script and one Redis 7 function library.

One script serves every operation (also loaded as a function library, see
:func:`_library`): its arguments are a key prefix, the caller's clock, a list
of *guards* and a list of *operations*. It first checks every guard (a fact the caller read
earlier: a claim is still held, a key still holds the value it read, ...) and applies nothing
if one fails; otherwise it applies the operations in order and publishes one wake-up per
changed topic. A single storage call is a one-operation run without guards; a
``transaction()`` block is one run with all its buffered operations and the guards of its
reads. Redis runs a script atomically, so either everything of a run is visible or nothing.

Arguments (all in ARGV, so no key needs declaring; not meant for Redis Cluster)::

    prefix-of-queue  prefix-of-globals  now  number-of-guards
    guard*   (4 arguments each: kind a b c)
    op*      (name, then the op's own arguments)

Reply: ``{1, result-of-op-1, ...}`` (each result a table, so absent values never truncate
the reply) or ``{0, index-of-failed-guard}``.

Layout under the queue prefix ``P`` (``<prefix>:q:{<name>}:``): ``seq`` (id counter),
``m:<id>`` (message hash: d data, p priority, s ready score, a attempts, r recoveries, dth
deaths, e enqueued_at, o owner, c claimed_at, st present while the claim is recorded as
started, k key), ``ready`` (zset: score -priority, member the zero-padded id, so equal scores
pop in id order), ``claimed`` (zset by claimed_at in whole microseconds), ``sched`` + ``sd``
(zset by eta + hash of data), ``kv`` (hash), ``kvexp`` (zset of expiry times), ``res`` (set of
result keys), ``dead`` + ``dl:<id>`` (dead letters), ``km``/``ks``/``kd`` (message keys -> the
message id, scheduled member, dead-letter id holding them; ``sk``: scheduled member -> key),
the history (``h:<id>``, ``hist``, ``hk``, ``hseq``) and its sums (``st:<minute>``, ``stm``,
``stt``: see ``scripts/tracking.lua``), ``dq:<request>`` (the ids claimed by a request,
space-separated, for retries), ``idle`` + ``idleinfo`` (idle workers' registrations: zset token
-> since, hash token -> "owner channel"), ``handed`` (hash: registration token -> id of the
message handed through it, until its worker reports it taken). Globals under ``G``
(``<prefix>:``): ``ostart``, ``obeat`` (owner -> first/last heartbeat) and ``oclaims`` (owner
-> claims held in every queue).
"""
from __future__ import annotations

import hashlib
import string
from importlib import resources

#: The body's fragments, in the order they are joined: helpers come before the operations
#: that use them (a Lua local is only visible below its definition).
FRAGMENTS = (
    'common',           # argument reading, id padding, ZRANGE bounds, wake-up marks, chunks
    'kv',               # key/value helpers (expiry, result keys)
    'messages',         # message, claim and dead-letter helpers
    'tracking',         # the history of finished runs and its sums: helpers
    'op_queue',         # the OPS table; enqueue, dequeue and the hand-off to idle workers
    'op_claims',        # settling claims: unstart, ack, complete, release, bury; flushq
    'op_schedule',      # the schedule
    'op_data',          # key/value operations and upkeep (purge of expired keys)
    'op_dead_letters',  # dead letters
    'op_owners',        # heartbeats, dead-owner release, forgetting owners
    'op_tracking',      # the history: recording, pruning and reads; locating keys
    'op_flush_all',     # emptying the whole queue's storage
    'op_reads',         # reads: no writes, no wake-ups
    'guards',           # the facts a transaction's commit re-checks
)


#: The directory of the .lua files (package data: in the wheel and the sdist too).
_SCRIPTS = resources.files('sqlq.storage.redis') / 'scripts'


def _read(name: str) -> str:
    """The text of ``scripts/<name>.lua``."""
    return (_SCRIPTS / (name + '.lua')).read_text(encoding='utf-8')


def _fragment(name: str) -> str:
    """A .lua file, set off from what precedes it by a blank line."""
    return '\n' + _read(name)


#: Per-run state of a script run (an EVAL script's own locals).
_SCRIPT_STATE = _fragment('script_state')

#: Helpers, operations and guards: the same text in the script and in the library.
_BODY = ''.join(_fragment(name) for name in FRAGMENTS)

#: Check the guards, apply the operations, publish the wake-ups.
_RUN = _fragment('run')

SCRIPT = _SCRIPT_STATE + _BODY + _RUN


def _library() -> tuple[str, str, str]:
    """The same operations as a Redis 7 function library: its helpers are made once, when the
    library is loaded, instead of at every run of the script (which was most of the cost of a
    small operation). Two entry points: one for any run, one flagged ``no-writes`` for
    single reads (allowed, like the script, on a server out of memory or a replica).

    Returns (library source, function name, read-only function name); the names carry a hash
    of the source, so hosts running different sqlq versions never call each other's code.
    """
    tag = hashlib.sha1((_BODY + _RUN).encode()).hexdigest()[:16]
    name, read_name = 'sqlq_%s' % tag, 'sqlq_%s_r' % tag
    template = string.Template(_read('library'))
    source = template.substitute(tag=tag, name=name, read_name=read_name, body=_BODY,
                                 run=_RUN)
    return source, name, read_name


LIBRARY, FUNCTION, READ_FUNCTION = _library()
