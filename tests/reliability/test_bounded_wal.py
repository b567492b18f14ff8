"""The WAL stays bounded under sustained work (issue 14, item 1).

A real ``sqlq consume tests.apps.bulk_app.queue`` with process workers drains a backlog of
100k no-op tasks while this process samples the size of the ``-wal`` file every 100 ms. The
bound is the one the README promises: ``journal_size_limit`` plus what the workers write in one
checkpoint interval (at most one page, 4 KiB, per task -- about 2.3 KB are written -- at the
drain's own rate, start-up included). The result count that tells the end is a long read, made
once a second as a monitoring tool would; no rewind passes its snapshot, so the writes made
while the longest one ran are added to the bound. Before the fix the consumer only ran PASSIVE
checkpoints, which never rewind the WAL while several processes keep writing: 125-210 MB for
100k tasks, 600 MB for 1M (``bench/wal.py``).
"""
from __future__ import annotations

import os
import time

import pytest

from sqlq.consumer import CHECKPOINT_INTERVAL
from sqlq.storage.sqlite._schema import JOURNAL_SIZE_LIMIT
from tests.apps import bulk_app

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

TASKS = 100_000
SAMPLE = 0.1            # seconds between two samples of the WAL's size
BYTES_PER_TASK = 4096   # generous upper bound of what one task writes to the WAL
DRAIN_TIMEOUT = 180.0   # seconds: bound of the whole drain


def wal_size(db: str) -> int:
    try:
        return os.stat(db + '-wal').st_size
    except FileNotFoundError:
        return 0


@pytest.mark.timeout(300)
def test_the_wal_stays_bounded_while_process_workers_drain_100k_tasks(start_harness):
    h = start_harness(bulk_app)
    for start in range(0, TASKS, 5000):
        h.app.noop.map(range(start, start + 5000))
    assert h.queue.pending_count() == TASKS
    began = time.monotonic()  # the rate below counts the consumer's start-up: a lower bound
    consumer = h.start('-w', '4', '-k', 'process', '-q', ready=False)
    storage = h.queue.storage
    samples = []
    deadline = began + DRAIN_TIMEOUT
    done = 0
    longest_read = 0.0
    while done < TASKS:
        samples.append(wal_size(h.db))
        if len(samples) % 10 == 0:  # a count is a long read: once a second, as monitoring
            read_began = time.monotonic()
            done = storage.result_store_size()
            longest_read = max(longest_read, time.monotonic() - read_began)
        assert consumer.proc.poll() is None, consumer.describe()
        assert time.monotonic() < deadline, 'only %d of %d tasks done\n%s' % (
            done, TASKS, consumer.describe())
        time.sleep(SAMPLE)  # the sampling period, not a synchronisation
    samples.append(wal_size(h.db))
    rate = TASKS / (time.monotonic() - began)
    # No rewind can pass a reader's snapshot (README): the writes made during the longest
    # count (milliseconds on an idle machine, more on a loaded one) come on top.
    interval_writes = rate * (CHECKPOINT_INTERVAL + longest_read) * BYTES_PER_TASK
    bound = JOURNAL_SIZE_LIMIT + interval_writes
    mb = 1024.0 * 1024.0
    assert max(samples) <= bound, (
        'the WAL reached %.1f MB, over the bound of %.1f MB (journal_size_limit %.0f MB + '
        '%.1f MB: one checkpoint interval and the longest read (%.3f s) at %.0f tasks/s); '
        'samples (MB): %s'
        % (max(samples) / mb, bound / mb, JOURNAL_SIZE_LIMIT / mb, interval_writes / mb,
           longest_read, rate, ' '.join('%.0f' % (s / mb) for s in samples)))
