"""The Redis backend while its server restarts: every path answers StorageUnavailableError
while the server is still loading its data set (on both transports, through FCALL and EVALSHA,
in RESP2 and RESP3, for producers and workers), and the claims of a transaction whose commit
reply was lost do not stay held by this live process."""
from __future__ import annotations

import logging
import threading

import pytest

from sqlq import StorageUnavailableError
from sqlq.storage.types import Receipt
from tests._redis_server import RedisServer
from tests.storage._helpers import as_owner

pytestmark = pytest.mark.usefixtures('redis_available')


# ---------------------------------------------------------------------- a server still loading

@pytest.fixture(scope='module')
def loading_server():
    """A redis-server that answers ``-LOADING`` for the whole module (its data set takes about
    30 s to load)."""
    from tests._redis_server import skip_unless_available
    skip_unless_available()
    server = RedisServer()
    try:
        server.start_loading()
    except RuntimeError as exc:  # pragma: no cover - a redis-server without key-load-delay
        server.close()
        pytest.skip('cannot keep redis-server loading: %s' % exc)
    yield server
    server.close()


@pytest.fixture
def loading(loading_server):
    yield loading_server
    assert loading_server.is_loading(), 'the server finished loading during the test'


def _storage_calls(s):
    """What producers, workers and the consumer's loops ask of the storage: name -> call."""
    def in_transaction(fn):
        def run():
            with s.transaction():
                fn()
        return run

    def worker_session():
        with s.worker_session():
            s.dequeue_many(8)

    return {
        'enqueue (hand-off script)': lambda: s.enqueue(b'x'),
        'enqueue_many': lambda: s.enqueue_many([(b'x', 0), (b'y', 1)]),
        'enqueue in a transaction': in_transaction(lambda: s.enqueue(b'x')),
        'dequeue': s.dequeue,
        'dequeue in a worker session': worker_session,
        'dequeue in a transaction': in_transaction(lambda: s.dequeue_many(2)),
        'complete_many': lambda: s.complete_many([(Receipt(1, s.owner_id, 1), 'k', b'v', None)]),
        'release_unstarted': lambda: s.release_unstarted([Receipt(1, s.owner_id, 1)]),
        'put_data': lambda: s.put_data('k', b'v', is_result=True),
        'peek_many (revoke flags)': lambda: s.peek_many(['revoke:1']),
        'add_to_schedule': lambda: s.add_to_schedule(b'x', 1.0),
        'read_schedule': lambda: s.read_schedule(1.0),
        'next_scheduled_time (redis-py command)': s.next_scheduled_time,
        'dead letter in a transaction (redis-py command)':
            in_transaction(lambda: s.add_dead_letter(b'x', 'why')),
        'delete_prefix in a transaction (redis-py command)':
            in_transaction(lambda: s.delete_prefix('k')),
        'stats (redis-py command)': s.stats,
        'heartbeat': s.heartbeat,
        'recovery of dead owners': lambda: s.release_owner('deadhost:1:abcd'),
    }


@pytest.mark.parametrize('protocol', [2, 3])
@pytest.mark.parametrize('scripts', ['fcall', 'evalsha'])
def test_every_call_on_a_loading_server_is_unavailable(loading, transport, scripts, protocol):
    from sqlq.storage.redis import RedisStorage
    s = RedisStorage('loading', url=loading.url, protocol=protocol)
    if scripts == 'evalsha':
        s._functions = False                 # as on a server without functions
    try:
        wrong = {}
        for name, call in _storage_calls(s).items():
            try:
                call()
            except StorageUnavailableError as exc:
                if 'loading' not in str(exc) or '127.0.0.1:%d' % loading.port not in str(exc):
                    wrong[name] = str(exc)
            except Exception as exc:         # e.g. TypeError: the error reply as a value
                wrong[name] = '%s: %s' % (type(exc).__name__, exc)
            else:
                wrong[name] = 'no error'
        assert wrong == {}
        # SUBSCRIBE is served while loading: waiting works (and wakes once data changes)
        assert s.wait_for_change(0.05, 'queue') in (True, False)
        assert s.wait_for_change(0.05, 'queue') in (True, False)
    finally:
        s.close()


def test_producers_and_workers_of_a_queue_on_a_loading_server(loading, transport, caplog):
    from sqlq import RedisQueue
    from sqlq.worker import Worker
    queue = RedisQueue('loading-app', url=loading.url)

    @queue.task()
    def add(a, b):
        return a + b

    try:
        for call in (lambda: add(1, 2), lambda: add.map([(1, 2), (3, 4)]),
                     lambda: add.schedule((1, 2), delay=60), lambda: queue.result('some-id'),
                     lambda: queue.revoke_by_id('some-id'), queue.pending_count):
            with pytest.raises(StorageUnavailableError, match='loading'):
                call()
        # a worker backs off and keeps trying (until stopped), without a traceback
        caplog.set_level(logging.INFO, logger='sqlq.worker')
        stop = threading.Event()
        worker = Worker(queue, stop, name='loading-worker', idle_wait=0.05)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            from tests._helpers import wait_for
            wait_for(lambda: 'storage unavailable' in caplog.text, 10,
                     'the worker to report the outage', lambda: caplog.text)
            assert thread.is_alive()
        finally:
            stop.set()
            thread.join(10)
        assert not thread.is_alive()
        assert 'loading the dataset' in caplog.text
        assert 'Traceback' not in caplog.text and 'TypeError' not in caplog.text
    finally:
        queue.close()


# ---------------------------------------------------------------------- a lost commit reply

def _lose_the_next_commit_reply(s, monkeypatch, applied):
    """The next write run of ``s`` fails with a dropped connection, after the server applied
    it (``applied``: the reply was lost) or before it reached the server."""
    import redis
    original, done = s._call, []

    def call(link, args, read_only):
        if read_only or done:
            return original(link, args, read_only)
        done.append(args)
        if applied:
            original(link, args, read_only)
        link.disconnect()
        raise redis.ConnectionError('Connection closed by server.')

    monkeypatch.setattr(s, '_call', call)
    return done


def test_the_claims_of_a_commit_whose_reply_was_lost_go_back(pair, transport, monkeypatch):
    s, other = pair
    s.enqueue_many([(b'a', 0), (b'b', 0), (b'c', 0)])
    lost = _lose_the_next_commit_reply(s, monkeypatch, applied=True)
    with pytest.raises(StorageUnavailableError):
        with s.transaction():
            assert [c.data for c in s.dequeue_many(2)] == [b'a', b'b']
    assert lost
    # applied on the server: two claims of this live process, which it never got
    assert other.claim_owners() == {s.owner_id: 2} and other.queue_size() == 1
    assert s.queue_size() == 3                   # its next run gave them back first
    assert other.claimed_size() == 0 and other.claim_owners() == {}
    claims = s.dequeue_many(3)
    assert [(c.data, c.attempts) for c in claims] == [(b'a', 2), (b'b', 2), (b'c', 1)]


def test_a_commit_lost_before_the_server_leaves_later_claims_alone(pair, transport,
                                                                  monkeypatch):
    s, other = pair
    s.enqueue_many([(b'a', 0), (b'b', 0)])
    _lose_the_next_commit_reply(s, monkeypatch, applied=False)
    with pytest.raises(StorageUnavailableError):
        with s.transaction():
            s.dequeue_many(2)
    assert other.queue_size() == 2               # never applied
    # meanwhile the same messages are claimed with the same owner and attempt by another
    # run (of another thread of this process): not the lost commit's claims
    with as_owner(other, s.owner_id):
        claims = other.dequeue_many(2)
        assert [c.attempts for c in claims] == [1, 1]
    assert s.queue_size() == 0                   # s's next run gave nothing back
    with as_owner(other, s.owner_id):
        assert [other.ack(c.receipt) for c in claims] == [True, True]
