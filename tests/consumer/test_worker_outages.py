"""A live worker across a storage outage (a Redis server restarting or still loading its data,
a database locked past its busy timeout): every claim it holds is run or given back once the
storage answers again -- none is left claimed by this live worker, which dead-owner recovery
would never give back. In-process workers on each backend; failures are injected into the
storage's methods; every wait is bounded.
"""
from __future__ import annotations

import pytest

from sqlq import revocation
from sqlq.exceptions import StorageUnavailableError
from sqlq.storage import EMPTY
from tests._helpers import storage_outage, wait_for
from tests.consumer.test_worker_batching import (
    WAIT,
    executed_in_a_group,
    results_of,
    running,
)
from tests.storage._helpers import DEAD, as_owner

# The worker's claim buffer is the fast path's ClaimBuffer: run on both implementations.
pytestmark = pytest.mark.both_fastpaths


def settled(queue):
    return queue.pending_count() == 0 and queue.running_count() == 0


def test_a_claimed_task_that_could_not_start_runs_once_the_storage_is_back(queue, recording_job,
                                                                          monkeypatch):
    job, ran = recording_job
    # the revoke check before each start reads the storage (no prefetched flags)
    monkeypatch.setattr(revocation, 'REVOKE_PREFETCH_TTL', -1.0)
    with running(queue, mean_run=1e-6) as worker:  # claims in batches from the start
        failed = storage_outage(queue.storage, monkeypatch, ['peek_many'], 3)
        results = queue.enqueue_many([job.s(i) for i in range(6)])
        wait_for(lambda: len(ran) == 6 and settled(queue), WAIT,
                 'every task to run and no claim to remain',
                 lambda: 'ran %s, %d claimed, failed %s' % (ran, queue.running_count(), failed))
        assert [r.get(blocking=True, timeout=WAIT) for r in results] == list(range(6))
    assert len(failed) == 3
    assert sorted(ran) == list(range(6))  # each once
    assert worker.done == 6


def test_outcomes_wait_for_the_storage_instead_of_being_given_up(queue, monkeypatch, caplog):
    queue.task(name='double')(lambda i: 2 * i).map(range(3))
    group, tasks, receipts = executed_in_a_group(queue, 3)
    storage = queue.storage
    # unreachable for every write the group could try (bulk, alone, or burying one)
    failed = storage_outage(storage, monkeypatch, ['complete_many', 'ack', 'bury', 'put_data'], 100)
    with pytest.raises(StorageUnavailableError):
        group.flush()
    assert failed
    monkeypatch.undo()
    assert len(group) == 3                          # still waiting, none given up
    assert storage.claimed_size() == 3 and storage.dead_letter_count() == 0
    assert results_of(queue, tasks) == [EMPTY] * 3
    assert 'stays claimed' not in caplog.text
    group.flush()                                   # the storage is back
    assert len(group) == 0
    assert results_of(queue, tasks) == [0, 2, 4]
    assert settled(queue) and storage.dead_letter_count() == 0


def test_a_recovered_claim_and_the_buffer_survive_an_outage(queue, recording_job, monkeypatch):
    job, ran = recording_job
    # A recovered claim first, then others, in one batch: the recovered one's start is
    # recorded before it runs -- while the storage is unreachable, at first.
    queue.enqueue_many([job.s(i) for i in range(6)])
    with as_owner(queue.storage, DEAD):
        queue.storage.dequeue()
    assert queue.storage.release_owner(DEAD) == 1
    failed = storage_outage(queue.storage, monkeypatch, ['mark_started'], 2)
    with running(queue, mean_run=1e-6):
        wait_for(lambda: len(ran) == 6 and settled(queue), WAIT,
                 'every task to run and no claim to remain',
                 lambda: 'ran %s, %d claimed' % (sorted(ran), queue.running_count()))
    assert failed == ['mark_started'] * 2
    assert sorted(ran) == list(range(6))
