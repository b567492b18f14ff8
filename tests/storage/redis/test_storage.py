"""What only the Redis backend has: the missing-extra error, connection settings, errors naming
the server, transaction conflicts, reconnection after a restart, and wake-ups across
connections. The shared behaviour is in ``tests/storage/test_contract.py`` and the
backend-parametrized suites."""
from __future__ import annotations

import pathlib
import subprocess
import sys
import threading

import pytest

from sqlq import ConfigurationError, StorageError, StorageUnavailableError, TransactionConflict
from sqlq.storage import EMPTY
from tests._helpers import ROOT_DIR
from tests._redis_server import RedisServer, free_port

ROOT = pathlib.Path(ROOT_DIR)
needs_redis = pytest.mark.usefixtures('redis_available')


def test_only_the_redis_backend_imports_redis():
    users = set()
    for path in (ROOT / 'sqlq').rglob('*.py'):
        text = path.read_text()
        if '\nimport redis' in text or '\n    import redis' in text or \
                '\nfrom redis' in text or '\n    from redis' in text:
            users.add(path.relative_to(ROOT).as_posix())
    assert users  # the backend is found, and nothing outside its package imports redis
    assert all(user.startswith('sqlq/storage/redis/') for user in users), users


@pytest.mark.subprocess
def test_missing_redis_py_is_a_clear_configuration_error():
    # A fresh interpreter in which ``import redis`` fails.
    code = ('import sys; sys.modules["redis"] = None\n'
            'import sqlq\n'
            'try:\n'
            '    sqlq.RedisQueue("q", url="redis://127.0.0.1:1/0")\n'
            'except sqlq.ConfigurationError as exc:\n'
            '    print("ERR", exc)\n')
    out = subprocess.run([sys.executable, '-c', code], cwd=str(ROOT), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith('ERR RedisQueue needs redis-py')
    assert "pip install 'sqlq[redis]'" in out.stdout


@needs_redis
def test_connection_settings_are_checked():
    from sqlq import RedisQueue
    with pytest.raises(ConfigurationError):
        RedisQueue('q', url='redis://127.0.0.1:1/0', host='localhost')
    import redis
    pool = redis.ConnectionPool(host='127.0.0.1', port=1, decode_responses=True)
    with pytest.raises(ConfigurationError, match='decode_responses'):
        RedisQueue('q', connection_pool=pool)


@needs_redis
def test_unreachable_server_is_a_clear_error_naming_it(transport):
    from sqlq import RedisQueue
    port = free_port()
    q = RedisQueue('q', host='127.0.0.1', port=port)
    try:
        with pytest.raises(StorageUnavailableError, match='127.0.0.1:%d' % port):
            q.storage.enqueue(b'x')
        with pytest.raises(StorageError):
            q.pending_count()
    finally:
        q.close()


@needs_redis
def test_out_of_memory_is_a_clear_error(redis_url, transport):
    import redis

    from sqlq.storage.redis import RedisStorage
    admin = redis.Redis.from_url(redis_url)
    s = RedisStorage('oom', url=redis_url)
    try:
        s.put_data('k', b'v')
        admin.config_set('maxmemory', '1')
        with pytest.raises(StorageError, match='out of memory'):
            s.enqueue(b'x' * 1000)
        assert s.peek_data('k') == b'v'             # reads still run
    finally:
        admin.config_set('maxmemory', '0')
        admin.close()
        s.close()


@needs_redis
def test_stale_claim_at_commit_rolls_the_whole_transaction_back(pair):
    s, other = pair
    s.enqueue(b'task')
    claim = s.dequeue()
    with pytest.raises(TransactionConflict, match='claim'):
        with s.transaction():
            assert s.ack(claim.receipt)                # held when read...
            s.put_data('result', b'42', is_result=True)
            s.enqueue(b'follower')
            other.release_owner(s.owner_id)            # ...taken over before the commit
    assert s.peek_data('result') is EMPTY               # nothing of the outcome applied
    assert s.enqueued_items() == [b'task']              # back in the queue, no follower
    assert not s.ack(claim.receipt)                     # the receipt is stale for good


@needs_redis
def test_concurrent_put_if_empty_in_transactions_has_one_winner(pair):
    a, b = pair
    with pytest.raises(TransactionConflict):
        with a.transaction():
            assert a.put_if_empty('mark', b'a')
            assert b.put_if_empty('mark', b'b')        # b commits first
            a.enqueue(b'fired by a')
    assert a.peek_data('mark') == b'b' and a.queue_size() == 0


@pytest.mark.subprocess
@needs_redis
def test_storage_reconnects_after_a_server_restart(transport):
    from sqlq.storage.redis import RedisStorage
    server = RedisServer().start()
    s = RedisStorage('r', url=server.url)
    try:
        assert s.wait_for_change(0, 'queue') is True       # subscribed
        s.enqueue(b'before')
        server.restart()                                    # no persistence: data is gone
        with pytest.raises(StorageUnavailableError):
            s.wait_for_change(1, 'queue')                   # the subscription broke
        assert s.wait_for_change(0, 'queue') is True        # subscribed again: re-check
        s.enqueue(b'after')                                 # the pool reconnects by itself
        assert s.wait_for_change(5, 'queue') is True
        assert s.dequeue().data == b'after'
    finally:
        s.close()
        server.close()


@needs_redis
def test_a_waiter_on_another_connection_wakes_for_an_enqueue(pair, transport):
    consumer, producer = pair
    woke = []
    started = threading.Event()

    def wait():
        consumer.wait_for_change(0, 'queue')
        started.set()
        woke.append(consumer.wait_for_change(30, 'queue'))

    t = threading.Thread(target=wait, daemon=True)
    t.start()
    assert started.wait(10)
    producer.enqueue(b'x')
    t.join(30)
    assert woke == [True]
    assert consumer.dequeue().data == b'x'


@needs_redis
def test_a_dequeue_retried_after_a_lost_reply_returns_the_same_claims(redis_url):
    from sqlq.storage.redis import RedisStorage
    s = RedisStorage('lost', url=redis_url)
    try:
        for data in (b'a', b'b', b'c'):
            s.enqueue(data)
        s._thread().dequeue_request = 'r1'   # a request id, as if its reply were lost...
        first = s.dequeue_many(2)
        s._thread().dequeue_request = 'r1'   # ...so that the next dequeue repeats it
        again = s.dequeue_many(2)
        assert [c.receipt for c in again] == [c.receipt for c in first]
        assert [c.data for c in again] == [b'a', b'b']
        assert [c.data for c in s.dequeue_many(5)] == [b'c']
    finally:
        s.close()


def _exercise(s):
    """A little of everything: writes, reads, a transaction, a wake-up."""
    assert s.wait_for_change(0, 'queue') is True
    s.enqueue(b'a', priority=1)
    s.put_data('k', b'v', ttl=60)
    assert s.wait_for_change(5, 'queue') is True
    with s.transaction():
        claim = s.dequeue()
        assert s.ack(claim.receipt)
        s.put_data('r', b'42', is_result=True)
    assert claim.data == b'a' and claim.priority == 1
    assert s.peek_many(['k', 'r', 'missing']) == {'k': b'v', 'r': b'42'}
    assert s.queue_size() == 0 and s.claimed_size() == 0
    assert s.incr('n', 2) == 2


@pytest.fixture
def admin(redis_url):
    """A plain redis-py client of the test's server."""
    import redis
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@needs_redis
def test_a_lost_function_library_or_script_is_loaded_again(redis_url, admin, transport):
    from sqlq.storage.redis import RedisStorage
    s = RedisStorage('reload', url=redis_url)
    try:
        s.enqueue(b'x')
        admin.function_flush()
        assert s.queue_size() == 1                  # read-only entry point reloaded
        s.enqueue(b'y')                             # and the other one
        s._functions = False                        # as on a server without functions
        admin.script_flush()
        assert s.queue_size() == 2
        s.enqueue(b'z')
        assert s.queue_size() == 3
    finally:
        s.close()


@needs_redis
def test_a_user_not_allowed_functions_runs_the_script(admin, transport):
    from sqlq.storage.redis import RedisStorage
    admin.function_flush()
    admin.acl_setuser('nofn', enabled=True, nopass=True, keys=['*'], channels=['*'],
                      commands=['+@all', '-fcall', '-fcall_ro', '-function'])
    host, port = admin.connection_pool.connection_kwargs['host'], \
        admin.connection_pool.connection_kwargs['port']
    s = RedisStorage('nofn', url='redis://nofn:x@%s:%s/0' % (host, port))
    try:
        _exercise(s)
        assert s._functions is False
        assert admin.function_list() == []
    finally:
        admin.acl_deluser('nofn')
        s.close()


@needs_redis
@pytest.mark.parametrize('protocol', [2, 3])
def test_both_protocol_versions(redis_url, protocol, transport):
    from sqlq.storage.redis import RedisStorage
    s = RedisStorage('proto', url=redis_url, protocol=protocol)
    try:
        _exercise(s)
    finally:
        s.close()


@needs_redis
def test_a_thread_keeps_one_connection_and_gives_it_back_when_it_ends(redis_url,
                                                                      transport):
    import gc

    import redis

    from sqlq.storage.redis import RedisStorage
    pool = redis.ConnectionPool.from_url(redis_url)
    s = RedisStorage('conn', connection_pool=pool)
    try:
        s.enqueue(b'x')
        assert len(pool._in_use_connections) == 1   # this thread's, kept between calls
        s.queue_size()
        assert len(pool._in_use_connections) == 1

        def work():
            s.enqueue(b'y')
            assert len(pool._in_use_connections) == 2

        t = threading.Thread(target=work)
        t.start()
        t.join(30)
        gc.collect()
        assert len(pool._in_use_connections) == 1   # the ended thread's went back
        assert s.queue_size() == 2
    finally:
        s.close()
        pool.disconnect()


@needs_redis
def test_a_connection_closed_by_the_server_while_idle_is_replaced(redis_url, admin,
                                                                  transport):
    from sqlq.storage.redis import RedisStorage
    s = RedisStorage('killed', url=redis_url)
    try:
        s.enqueue(b'x')
        admin.client_kill_filter(_type='normal', skipme=True)
        assert s.queue_size() == 1                  # reconnected before sending
    finally:
        s.close()


@needs_redis
def test_a_blocking_pool_lends_a_connection_per_call(redis_url, transport):
    import redis

    from sqlq.storage.redis import RedisStorage
    pool = redis.BlockingConnectionPool.from_url(redis_url, max_connections=2, timeout=5)
    s = RedisStorage('blocking', connection_pool=pool)
    try:
        _exercise(s)                    # this thread keeps its subscription, not a connection
        done = []
        t = threading.Thread(target=lambda: done.append(s.incr('n')))
        t.start()
        t.join(30)
        assert done == [3]              # the other connection was free for another thread
    finally:
        s.close()
        pool.disconnect()


@needs_redis
def test_a_wait_interrupted_mid_message_subscribes_again(redis_url, transport, monkeypatch):
    from sqlq.storage.redis import RedisStorage
    from sqlq.storage.redis._resp import _FastLink as _Link
    s = RedisStorage('interrupted', url=redis_url)
    try:
        assert s.wait_for_change(0, 'queue') is True
        s.enqueue(b'x')

        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        with monkeypatch.context() as patch:
            if transport == 'fast':         # in the middle of parsing the frame
                patch.setattr(_Link, '_value', interrupted)
            else:                           # in redis-py's read of the frame
                patch.setattr(s._local.waiter.pubsub.conn, 'read_response', interrupted)
            with pytest.raises(KeyboardInterrupt):
                s.wait_for_change(5, 'queue')
        assert s.wait_for_change(0, 'queue') is True   # a new subscription: re-check
        s.enqueue(b'y')
        assert s.wait_for_change(5, 'queue') is True
    finally:
        s.close()


@needs_redis
def test_the_transport_follows_the_connection(redis_url, transport):
    from sqlq.storage.redis import RedisStorage, _resp
    s = RedisStorage('transport', url=redis_url)
    try:
        assert s.wait_for_change(0, 'queue') is True
        s.enqueue(b'x')
        fast = transport == 'fast'
        assert isinstance(s._local.link, _resp._FastLink) is fast
        assert isinstance(s._local.link, _resp.Link)
        assert isinstance(s._local.waiter.pubsub, _resp._FastSubscriber) is fast
        assert isinstance(s._local.waiter.pubsub, _resp.Subscriber)
        assert s.wait_for_change(5, 'queue') is True
    finally:
        s.close()


def test_a_connection_without_the_private_attributes_gets_the_public_transport():
    import redis

    from sqlq.storage.redis import _resp
    assert _resp.fast_path_supported(redis.Connection())
    assert _resp.fast_path_supported(redis.UnixDomainSocketConnection())

    class Renamed:  # a redis-py release without Connection._sock / _parser.parse_error
        _parser = object()

    assert not _resp.fast_path_supported(Renamed())


@needs_redis
@pytest.mark.parametrize('protocol', [2, 3])
def test_a_task_handed_to_an_idle_worker(redis_url, protocol, transport):
    """The hand-off's whole path on each transport: the subscription to the worker's own
    channel, the published message, and its claim."""
    from sqlq.storage.redis import RedisStorage
    worker = RedisStorage('handed', url=redis_url, protocol=protocol)
    producer = RedisStorage('handed', url=redis_url, protocol=protocol)
    try:
        with worker.worker_session():
            assert worker.dequeue_many(4) == []         # registered as idle
            producer.enqueue(b'job', 2)               # claimed for it, and published
            assert producer.claimed_size() == 1 and producer.queue_size() == 0
            assert worker.wait_for_change(5, 'queue') is True
            [claim] = worker.dequeue_many(4)
            assert (claim.data, claim.attempts, claim.priority) == (b'job', 1, 2)
            assert worker.ack(claim.receipt)
        assert producer.claimed_size() == producer.queue_size() == 0
    finally:
        worker.close()
        producer.close()

def test_every_lua_file_is_part_of_the_script():
    from sqlq.storage.redis import _scripts
    files = {path.stem for path in (ROOT / 'sqlq/storage/redis/scripts').glob('*.lua')}
    assert files == set(_scripts.FRAGMENTS) | {'script_state', 'run', 'library'}
    for name in _scripts.FRAGMENTS:
        assert _scripts._read(name) in _scripts.SCRIPT
        assert _scripts._read(name) in _scripts.LIBRARY
    assert _scripts.LIBRARY.startswith('#!lua name=%s\n' % _scripts.FUNCTION)


def test_the_fast_transport_raises_an_error_reply_of_a_server_still_loading():
    """LOADING is parsed as a ConnectionError (not a ResponseError): raised all the same, so
    that the storage reports the server unavailable."""
    import socket

    import redis

    from sqlq.storage.redis import _resp
    ours, server = socket.socketpair()

    class Connection:  # the attributes the fast transport drives
        _parser = redis.Connection()._parser
        _sock = ours

        def connect(self):
            pass

    link = _resp._FastLink(redis.ConnectionPool(), Connection())
    try:
        link.send(link.pack(['PING']), check=False)
        assert server.recv(100) == b'*1\r\n$4\r\nPING\r\n'
        server.sendall(b'-LOADING Redis is loading the dataset in memory\r\n')
        with pytest.raises(redis.exceptions.BusyLoadingError):
            link.read()
    finally:
        ours.close()
        server.close()
