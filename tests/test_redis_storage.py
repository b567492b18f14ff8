"""What only the Redis backend has: the missing-extra error, connection settings, errors naming
the server, transaction conflicts, reconnection after a restart, and wake-ups across
connections. The shared behaviour is in test_storage_contract.py and the backend-parametrized
suites."""
from __future__ import annotations

import pathlib
import subprocess
import sys
import threading

import pytest

from _redis_server import RedisServer, free_port, unavailable_reason
from sqlq import ConfigurationError, StorageError, StorageUnavailableError, TransactionConflict
from sqlq.storage import EMPTY

ROOT = pathlib.Path(__file__).resolve().parent.parent
needs_redis = pytest.mark.skipif(unavailable_reason() is not None,
                                 reason=str(unavailable_reason()))


def test_only_the_redis_backend_imports_redis():
    users = set()
    for path in (ROOT / 'sqlq').rglob('*.py'):
        text = path.read_text()
        if '\nimport redis' in text or '\n    import redis' in text or \
                '\nfrom redis' in text or '\n    from redis' in text:
            users.add(path.relative_to(ROOT).as_posix())
    assert users == {'sqlq/storage/redis.py'}


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
def test_unreachable_server_is_a_clear_error_naming_it():
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
def test_out_of_memory_is_a_clear_error(redis_url):
    import redis
    from sqlq.storage.redis import RedisStorage
    admin = redis.Redis.from_url(redis_url)
    s = RedisStorage('oom', url=redis_url)
    try:
        admin.config_set('maxmemory', '1')
        with pytest.raises(StorageError, match='out of memory'):
            s.enqueue(b'x' * 1000)
    finally:
        admin.config_set('maxmemory', '0')
        admin.close()
        s.close()


@pytest.fixture
def pair(redis_url):
    """Two storages of one queue (two processes, as far as Redis can tell)."""
    from sqlq.storage.redis import RedisStorage
    made = (RedisStorage('tx', url=redis_url), RedisStorage('tx', url=redis_url))
    yield made
    for storage in made:
        storage.close()


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


@needs_redis
def test_storage_reconnects_after_a_server_restart():
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
def test_a_waiter_on_another_connection_wakes_for_an_enqueue(pair):
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
