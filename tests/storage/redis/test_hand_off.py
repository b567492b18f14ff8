"""Redis hand-off, its own failure modes (the shared behaviour:
``tests/storage/test_hand_off.py``): the enqueue script publishes the message on the idle
worker's own channel -- nobody subscribed any more, or the connection dropped with the message
in it."""
from __future__ import annotations

import contextlib

import pytest

from tests._helpers import wait_for
from tests.storage._helpers import WAIT, go_idle, idle_count

pytestmark = pytest.mark.usefixtures('redis_available')


def test_hand_off_to_an_unsubscribed_worker_leaves_the_message_ready(producer, open_worker):
    worker = open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        channel = worker._local.hand_channel
        worker._drop_waiter(worker._local)  # its subscription is gone
        wait_for(lambda: producer.run(lambda s: s._client.pubsub_numsub(channel))[0][1] == 0,
                 WAIT, 'the server to drop the subscription')
        producer.enqueue(b'job')  # PUBLISH reached nobody: the same script made it ready
        assert producer.claimed_size() == 0 and producer.queue_size() == 1
        assert idle_count(producer.storage) == 0
        assert worker.wait_for_change(WAIT, 'queue')  # subscribes again
        [claim] = worker.dequeue_many(4)
        assert (claim.data, claim.attempts) == (b'job', 1)


def test_a_message_lost_with_a_dropped_connection_is_taken_at_the_next_claim(producer,
                                                                             open_worker):
    worker = open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        producer.enqueue(b'job')
        assert producer.claimed_size() == 1
        worker._drop_waiter(worker._local)  # the published message goes with it
        assert worker.wait_for_change(WAIT, 'queue')
        [claim] = worker.dequeue_many(4)
        assert (claim.data, claim.attempts) == (b'job', 1)
        assert worker.ack(claim.receipt)
        # Subscribed again to its own channel: the next message is handed over again.
        assert worker.dequeue_many(4) == []
        producer.enqueue(b'again')
        assert producer.claimed_size() == 1
        assert worker.wait_for_change(WAIT, 'queue')
        [claim] = worker.dequeue_many(4)
        assert claim.data == b'again' and worker.ack(claim.receipt)




def test_a_worker_session_starts_while_the_server_is_unreachable():
    """The worker is not killed by its session: its loop backs off on the storage error, and
    its first wait subscribes."""
    from sqlq.exceptions import StorageError
    from sqlq.storage.redis import RedisStorage
    worker = RedisStorage('unreachable', url='redis://127.0.0.1:1/0')
    try:
        with worker.worker_session():
            with pytest.raises(StorageError):
                worker.dequeue_many(4)
    finally:
        worker.close()
