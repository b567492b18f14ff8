"""The Tracking capability on every backend: messages located by key wherever they are, the
history of finished runs written with the release of their claims, its per-minute sums, and
pruning.

Builds storages directly (no task layer). The clock is the fake one of the fixtures.
"""
from __future__ import annotations

import pytest

from sqlq.storage import DURATION_BUCKETS, Finished
from sqlq.storage.sqlite import SqliteStorage


def run(key, outcome='succeeded', at=1_000_000.0, duration=0.002, name='app.add', error=None):
    return Finished(key, name, outcome, at, duration, error)


def states(storage, key):
    return [loc.state for loc in storage.locate(key)]


def test_every_backend_tracks_tasks(storage):
    assert storage.tracks_tasks


def test_locate_follows_a_message_from_enqueue_to_dead_letter_and_back(storage, clock):
    storage.enqueue(b'other', 5, 'k0')
    storage.enqueue(b'data', 3, 'k1')
    (ready,) = storage.locate('k1')
    assert ready.state == 'ready' and ready.data == b'data' and ready.priority == 3
    assert ready.enqueued_at == clock() and ready.owner is None
    storage.dequeue()  # k0
    claim = storage.dequeue()
    (claimed,) = storage.locate('k1')
    assert claimed.state == 'claimed' and claimed.owner == storage.owner_id
    assert claimed.claimed_at == clock() and claimed.attempts == 1
    assert storage.bury(claim.receipt, 'boom')
    (dead,) = storage.locate('k1')
    assert dead.state == 'dead' and dead.reason == 'boom' and dead.attempts == 1
    assert storage.dead_letter(dead.id).key == 'k1'
    assert storage.requeue_dead_letters([dead.id]) == 1
    assert states(storage, 'k1') == ['ready']
    assert storage.locate('missing') == []


def test_locate_finds_scheduled_messages_until_they_are_read(storage):
    storage.add_to_schedule(b's', 2000.0, 'k2')
    (found,) = storage.locate('k2')
    assert found.state == 'scheduled' and found.eta == 2000.0 and found.data == b's'
    assert storage.read_schedule(1999.0) == []
    assert storage.read_schedule(2000.0) == [b's']
    assert storage.locate('k2') == []


def test_enqueue_many_keys_and_keyless_messages(storage):
    storage.enqueue_many([(b'a', 0), (b'b', 0), (b'c', 0)], keys=['ka', None, 'kc'])
    storage.enqueue_many([(b'd', 0)])
    storage.enqueue(b'e')
    assert [loc.data for loc in storage.locate('ka') + storage.locate('kc')] == [b'a', b'c']
    assert storage.queue_size() == 5


def test_keys_are_per_queue_and_go_with_flush(make_storage):
    one, two = make_storage('one'), make_storage('two')
    one.enqueue(b'x', 0, 'same')
    assert two.locate('same') == []
    one.add_dead_letter(b'y', 'why', key='dead-key')
    one.flush_all()
    assert one.locate('same') == [] and one.locate('dead-key') == []


def test_ack_forgets_the_key(storage):
    storage.enqueue(b'x', 0, 'k')
    assert storage.ack(storage.dequeue().receipt)
    assert storage.locate('k') == []


def test_finish_records_the_run_with_its_claim(storage, clock):
    storage.enqueue(b'x', 0, 'k')
    claim = storage.dequeue()
    clock.advance(2)
    assert storage.finish(claim.receipt, run('k', at=clock(), duration=1.5))
    assert storage.locate('k') == []
    (entry,) = storage.history()
    assert (entry.key, entry.name, entry.outcome, entry.finished_at, entry.duration) == \
        ('k', 'app.add', 'succeeded', clock(), 1.5)
    assert entry.enqueued_at == clock() - 2 and entry.claimed_at == clock() - 2
    assert entry.attempts == 1 and entry.owner == storage.owner_id
    assert not storage.finish(claim.receipt, run('k'))  # stale: nothing recorded
    assert len(storage.history()) == 1


def test_finish_with_a_reason_buries_and_records(storage):
    storage.enqueue(b'x', 0, 'k')
    claim = storage.dequeue()
    assert storage.finish(claim.receipt, run('k', 'failed', error='ValueError()'), 'why')
    assert states(storage, 'k') == ['dead']
    assert storage.dead_letters()[0].reason == 'why'
    assert storage.history()[0].error == 'ValueError()'


def test_complete_many_records_only_the_held_claims(storage):
    storage.enqueue_many([(b'a', 0), (b'b', 0)], keys=['ka', 'kb'])
    first, second = storage.dequeue_many(2)
    assert storage.ack(second.receipt)
    held = storage.complete_many([(first.receipt, 'ka', b'r', None),
                                  (second.receipt, 'kb', b'r', None)],
                                 history=[run('ka'), run('kb')])
    assert held == [True, False]
    assert [e.key for e in storage.history()] == ['ka']
    assert storage.history()[0].owner == storage.owner_id
    assert storage.peek_data('ka') == b'r'


@pytest.mark.parametrize('mixed', [False, True])
def test_complete_many_records_every_column_of_each_run(storage, clock, mixed):
    # Alike runs (one name, outcome and owner, no error: the common batch) and mixed ones,
    # more than one INSERT statement's worth, are recorded the same.
    count = 40
    keys = ['k%02d' % i for i in range(count)]
    storage.enqueue_many([(b'x', 0)] * count, keys=keys)
    claims = storage.dequeue_many(count)
    clock.advance(2)
    at = clock()
    entries = [run(key, at=at + i, duration=i / 100) for i, key in enumerate(keys)]
    if mixed:
        entries[7] = run(keys[7], 'retried', at=at + 7, duration=0.07, error='E' * 600)
        entries[30] = run(keys[30], at=at + 30, duration=None, name='app.div')
    held = storage.complete_many([(claim.receipt, None, None, None) for claim in claims],
                                 history=entries)
    assert held == [True] * count
    listed = storage.history(limit=None)[::-1]
    assert [e.key for e in listed] == keys
    for entry, expected in zip(listed, entries):
        assert (entry.name, entry.outcome, entry.finished_at, entry.duration) == \
            (expected.name, expected.outcome, expected.finished_at, expected.duration)
        assert entry.enqueued_at == at - 2 and entry.claimed_at == at - 2
        assert entry.attempts == 1 and entry.owner == storage.owner_id
    assert [e.error for e in listed if e.error] == (['E' * 499 + '\u2026'] if mixed else [])
    totals = {(s.name, s.outcome): s.runs for s in storage.history_stats()}
    assert totals == ({('app.add', 'succeeded'): count - 2, ('app.add', 'retried'): 1,
                       ('app.div', 'succeeded'): 1} if mixed
                      else {('app.add', 'succeeded'): count})
    per_minute = sum(s.runs for s in storage.history_stats(since=0, per_minute=True))
    assert per_minute == count


def test_history_sums_go_to_the_minute_of_each_run(storage):
    base = 1_000_020.0  # a minute's start
    storage.record_finished([run('a', at=base + 59), run('b', at=base + 60),
                             run('c', at=base + 1), run('d', at=base + 125),
                             run('e', at=base + 61)])
    minutes = storage.history_stats(since=base, per_minute=True)
    assert [(s.minute, s.runs) for s in minutes] == [(base, 2), (base + 60, 2),
                                                     (base + 120, 1)]


def test_a_rolled_back_transaction_leaves_no_history(storage):
    storage.enqueue(b'x', 0, 'k')
    claim = storage.dequeue()
    with pytest.raises(RuntimeError):
        with storage.transaction():
            storage.finish(claim.receipt, run('k'))
            raise RuntimeError('undo')
    assert storage.history() == [] and storage.history_stats() == []
    assert states(storage, 'k') == ['claimed']


def test_history_listing_pages_and_filters(storage):
    storage.record_finished([run('k1'), run('k2', 'failed', name='app.div'), run('k1', 'retried'),
                             run('k3')])
    entries = storage.history()
    assert [e.key for e in entries] == ['k3', 'k1', 'k2', 'k1']  # newest first
    assert entries[0].id > entries[1].id > entries[2].id
    assert [e.key for e in storage.history(limit=2)] == ['k3', 'k1']
    assert [e.key for e in storage.history(before=entries[1].id)] == ['k2', 'k1']
    assert [e.outcome for e in storage.history(key='k1')] == ['retried', 'succeeded']
    assert [e.key for e in storage.history(name='app.div')] == ['k2']
    assert [e.key for e in storage.history(outcome='succeeded')] == ['k3', 'k1']
    assert [e.key for e in storage.history(key='k1', outcome='retried')] == ['k1']
    assert storage.history(limit=0) == []
    unclaimed = entries[0]
    assert unclaimed.claimed_at is None and unclaimed.attempts == 0 and unclaimed.owner is None


def test_history_stats_sum_runs_per_name_and_outcome(storage):
    base = 1_000_020.0  # minute 1_000_020 = 16667 * 60
    storage.record_finished([run('a', at=base, duration=0.0005),
                             run('b', at=base + 1, duration=0.2),
                             run('c', 'failed', at=base + 2, duration=7.0),
                             run('d', 'revoked', at=base + 70, duration=None)])
    totals = {(s.name, s.outcome): s for s in storage.history_stats()}
    ok = totals[('app.add', 'succeeded')]
    assert ok.runs == 2 and ok.seconds == pytest.approx(0.2005) and ok.minute is None
    assert len(ok.buckets) == len(DURATION_BUCKETS) + 1
    assert ok.buckets[DURATION_BUCKETS.index(0.0005)] == 1  # le 0.0005: 0.0005 itself
    assert ok.buckets[DURATION_BUCKETS.index(0.25)] == 1
    assert totals[('app.add', 'failed')].buckets[DURATION_BUCKETS.index(10.0)] == 1
    assert totals[('app.add', 'revoked')].runs == 1
    assert sum(totals[('app.add', 'revoked')].buckets) == 0
    minutes = storage.history_stats(since=base, per_minute=True)
    assert [(s.minute, s.outcome, s.runs) for s in minutes] == [
        (base, 'failed', 1), (base, 'succeeded', 2), (base + 60, 'revoked', 1)]
    assert [s.outcome for s in storage.history_stats(since=base + 60)] == ['revoked']


def test_prune_by_age_and_count_keeps_the_all_time_sums(storage):
    storage.record_finished([run('k%d' % i, at=1000.0 + 60 * i) for i in range(6)])
    assert storage.prune_history(before=1000.0 + 60 * 2) == 2
    assert [e.key for e in storage.history()] == ['k5', 'k4', 'k3', 'k2']
    assert storage.prune_history(keep=3) == 1
    assert [e.key for e in storage.history()] == ['k5', 'k4', 'k3']
    assert storage.history(key='k0') == []
    storage.prune_history(stats_before=1200.0)  # runs ended in minutes 960 ... 1260
    assert [s.minute for s in storage.history_stats(per_minute=True)] == [1200.0, 1260.0]
    assert [s.minute for s in storage.history_stats(since=0, per_minute=True)] == \
        [1200.0, 1260.0]
    (total,) = storage.history_stats()
    assert total.runs == 6  # pruned minutes are folded, not lost
    assert storage.prune_history() == 0


def test_history_is_per_queue(make_storage):
    one, two = make_storage('one'), make_storage('two')
    one.record_finished([run('k')])
    assert two.history() == [] and two.history_stats() == []
    one.flush_all()
    assert one.history() == [] and one.history_stats() == []


def test_maintenance_and_prune_refuse_a_transaction(storage):
    from sqlq.exceptions import StorageError
    with pytest.raises(StorageError):
        with storage.transaction():
            storage.prune_history(keep=1)


def test_sqlite_locate_uses_the_key_indexes(tmp_path):
    storage = SqliteStorage(str(tmp_path / 'plan.db'))
    try:
        conn = storage._conn()
        from sqlq.storage.sqlite import _tracking
        for sql in (_tracking.LOCATE_TASK, _tracking.LOCATE_SCHEDULED, _tracking.LOCATE_DEAD,
                    _tracking.HISTORY[('key',)]):
            plan = ' '.join(str(row[-1]) for row in conn.execute(
                'EXPLAIN QUERY PLAN ' + sql, ('k', 'sqlq', 1, 1)[:sql.count('?')]))
            assert 'USING INDEX' in plan and 'SCAN' not in plan, (sql, plan)
    finally:
        storage.close()


def test_memory_history_is_bounded(monkeypatch):
    from sqlq.storage import MemoryStorage, _memory_history
    monkeypatch.setattr(_memory_history, 'MAX_ENTRIES', 3)
    storage = MemoryStorage('bounded')
    storage.record_finished([run('k%d' % i) for i in range(5)])
    assert [e.key for e in storage.history()] == ['k4', 'k3', 'k2']
    assert storage.history(key='k0') == []
    assert storage.history_stats()[0].runs == 5  # the sums count every run
