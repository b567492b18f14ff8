"""What an enqueue costs the Redis server, counted (not timed): the commands its script runs
(``INFO commandstats`` of the test's server), and the bytes the client sends."""
from __future__ import annotations

import pytest


@pytest.fixture
def admin(redis_url):
    """A plain redis-py client of the test's server."""
    import redis
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def inner_calls(admin) -> dict[str, int]:
    """command -> calls since the last CONFIG RESETSTAT, without the script entry points."""
    stats = admin.info('commandstats')
    return {name[len('cmdstat_'):]: int(v['calls']) for name, v in stats.items()
            if name[len('cmdstat_'):] not in ('fcall', 'evalsha', 'eval', 'config|resetstat')}


def test_a_batch_enqueue_runs_a_command_per_message_not_four(redis_url, admin, transport):
    """enqueue_many of n messages (with keys): one HSET each (the message), and a bounded
    number of commands for the rest (one id range, one ZADD, one key index write per chunk).
    It used to run INCR, HSET, HSET and ZADD per message."""
    from sqlq.storage.redis import RedisStorage
    s = RedisStorage('costs', url=redis_url)
    try:
        s.enqueue(b'warm')  # loads the function library
        s.flush_queue()
        n = 500
        admin.config_resetstat()
        assert s.enqueue_many([(b'm%d' % i, i % 3) for i in range(n)],
                              ['k%d' % i for i in range(n)]) == n
        calls = inner_calls(admin)
        assert calls.get('hset', 0) <= n + 1, calls
        assert sum(calls.values()) <= n + 6, calls
        # and nothing of it changed: FIFO within a priority, keys indexed
        claims = s.dequeue_many(n)
        assert [c.data for c in claims] == (
            [b'm%d' % i for i in range(n) if i % 3 == 2] +
            [b'm%d' % i for i in range(n) if i % 3 == 1] +
            [b'm%d' % i for i in range(n) if i % 3 == 0])
        assert [c.priority for c in claims[:3]] == [2, 2, 2]
        first = claims[0].seq - 2  # m0's id: one consecutive range of ids
        assert sorted(c.seq for c in claims) == list(range(first, first + n))
        assert admin.hlen(s._qprefix + 'km') == n
    finally:
        s.close()


def test_a_single_enqueue_runs_at_most_five_commands(redis_url, admin, transport):
    """A single enqueue with nothing handed off: ZCARD (is anything ready: else an idle worker
    may take it), INCR (its id), HSET (the message), ZADD (ready), PUBLISH (the wake-up); one
    more HSET with a key (the key index)."""
    from sqlq.storage.redis import RedisStorage
    s = RedisStorage('costs', url=redis_url)
    try:
        s.enqueue(b'warm')
        admin.config_resetstat()
        s.enqueue(b'x', 1)
        assert sum(inner_calls(admin).values()) <= 5
        admin.config_resetstat()
        s.enqueue(b'y', 1, key='the-key')
        assert sum(inner_calls(admin).values()) <= 6
        assert [c.data for c in s.dequeue_many(3)] == [b'x', b'y', b'warm']
    finally:
        s.close()


def test_claims_are_scored_in_whole_microseconds(redis_url, admin, transport):
    """The claimed set is a listpack up to 128 members, and every insert walks it comparing
    scores: a fractional score is parsed (strtod) at each step, an integer one is not. A batch
    of 128 claims spent most of its run there with ``now`` in seconds as the score."""
    from sqlq.storage.redis import RedisStorage
    s = RedisStorage('costs', url=redis_url, clock=lambda: 1764772345.1234567)
    try:
        s.enqueue_many([(b'm%d' % i, 0) for i in range(3)])
        claims = s.dequeue_many(3)
        scored = admin.zrange(s._qprefix + 'claimed', 0, -1, withscores=True)
        assert [score for _, score in scored] == [1764772345123456.0] * 3
        assert [c.data for c in claims] == [b'm0', b'm1', b'm2']
        assert [item.claimed_at for item in s.claimed_items()] == [1764772345.1234567] * 3
    finally:
        s.close()


def test_the_fcall_head_is_packed_once_and_sends_the_same_bytes(redis_url, transport):
    """An FCALL's first five arguments (command, function, 0, the two key prefixes) are packed
    once per connection; what goes on the wire is what packing the whole command gives."""
    from sqlq.storage.redis import RedisStorage
    from sqlq.storage.redis._scripts import FUNCTION
    s = RedisStorage('cöst', url=redis_url, clock=lambda: 1764772345.25)
    try:
        s.enqueue(b'x', 2, key='k')
        link = s._link(s._thread())
        assert set(link.heads) == {False}
        sent = []
        original = link.send
        link.send = lambda payload, check=True: (sent.append(payload), original(payload, check))
        s.enqueue(b'y', 1, key='ключ')
        assert sent == [link.pack(['FCALL', FUNCTION, 0, s._qprefix, s._gprefix,
                                   '1764772345.25', 0, 'enq1', b'y', 1, -1, '', 'ключ'])]
        assert s.queue_size() == 2 and set(link.heads) == {False, True}
    finally:
        s.close()


def test_completing_a_batch_runs_a_few_commands_per_task(redis_url, admin, transport):
    """complete_many of n claims with results and history: per task the claim check, the
    message's removal and its run's record; the claimed set, the owner's count, the results
    and the history indexes are written once per batch. It used to be ~16 commands a task."""
    from sqlq.storage.redis import RedisStorage
    from sqlq.storage.types import Finished
    s = RedisStorage('costs', url=redis_url, clock=lambda: 1764772345.5)
    try:
        n = 100
        s.enqueue_many([(b'm%d' % i, 0) for i in range(n)], ['t%d' % i for i in range(n)])
        claims = s.dequeue_many(n)
        admin.config_resetstat()
        items = [(c.receipt, 'r%d' % (i % 90), b'v%d' % i, 60.0 if i % 2 else None)
                 for i, c in enumerate(claims)]
        runs = [Finished('t%d' % (i if i < 95 else 0), 'noop', 'success', 1764772345.5, 0.001)
                for i in range(n)]  # t0: 6 runs, 5 of them in this batch
        assert s.complete_many(items, runs) == [True] * n
        calls = inner_calls(admin)
        assert sum(calls.values()) <= 8 * n + 20, calls
        # what was written: the last result of each key, with its own expiry
        assert s.claimed_size() == 0 and s.claim_owners() == {}
        assert s.peek_data('r5') == b'v95' and s.peek_data('r6') == b'v96'
        assert admin.zscore(s._qprefix + 'kvexp', 'r5') is not None
        assert admin.zscore(s._qprefix + 'kvexp', 'r6') is None
        assert s.result_store_size() == 90
        assert [e.key for e in s.history(limit=3)] == ['t0', 't0', 't0']
        chain = s.history(key='t0', limit=None)  # followed through each run's previous one
        assert len(chain) == 6 and [e.id for e in chain] == sorted((e.id for e in chain),
                                                                   reverse=True)
    finally:
        s.close()
