"""Nothing lost: leases, dead-worker recovery, dead letters -- proved with real processes.

Real ``sqlq consume tests.apps.lost_app.queue`` processes (each in its own session, so a kill
reaches the consumer and its process workers at once: ``tests/_harness.py``) on one SQLite
file; tasks append to a ledger (``tests/apps/lost_app.py``): ``start`` when a run begins,
``body`` when it ends, ``settled`` after its outcome and claim release committed. Every wait is
bounded; every process is killed in the harness's ``close``.

``test_kill9_whole_consumer_during_drain`` is the one long test (about 10-20 s on 2 cores);
``SQLQ_LOST_SEED`` fixes its random kill points, ``SQLQ_LOST_REPORT`` names a file its
loss/duplicate counts are appended to (JSON lines).
"""
from __future__ import annotations

import collections
import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest

from sqlq.worker import GROUP_MAX_SIZE
from tests import _harness
from tests._helpers import ROOT_DIR, wait_for
from tests.apps import lost_app
from tests.apps.lost_app import build

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

RESULT_TIMEOUT = 20
#: Upper bound of the documented dead-owner detection time (10 s) plus slack for a loaded box.
RECOVERY_BOUND = 10.0


@pytest.fixture
def lost(start_harness):
    return start_harness(lost_app)


def report(name, **numbers):
    path = os.environ.get('SQLQ_LOST_REPORT')
    if path:
        with open(path, 'a') as fh:
            fh.write(json.dumps(dict(numbers, test=name)) + '\n')


def no_user_visible_errors(text):
    """Lines of a consumer log / process output that show trouble reaching the user."""
    bad = re.compile(r'database is locked|DatabaseLockedError|stayed locked|Traceback|'
                     r'\bERROR\b|CRITICAL')
    return [line for line in text.splitlines() if bad.search(line)]


# -- 1. kill -9 of the whole consumer during a drain ---------------------------------------------
#: kind -> (workers, the task, the most runs one process has in flight: running or finished
#: with the outcome waiting for its group commit)
KILL9_KINDS = {
    'process': (2, 'record', GROUP_MAX_SIZE + 1),
    # one event loop running 8 coroutines; a run's slot is freed once its outcome is grouped
    'asyncio': (8, 'arecord', GROUP_MAX_SIZE + 8),
}


@pytest.mark.timeout(110)
@pytest.mark.parametrize('kind', sorted(KILL9_KINDS))
def test_kill9_whole_consumer_during_drain(lost, kind):
    """Thousands of tasks; the consumer's whole process group SIGKILLed at random points and
    restarted each time. Every key runs (result stored, ledger body) at least once; a key runs
    twice only if its first run was in flight (started, never settled) in a killed group."""
    total, kills = 3000, 4
    workers, task_name, in_flight_bound = KILL9_KINDS[kind]
    seed = int(os.environ.get('SQLQ_LOST_SEED') or random.randrange(1 << 30))
    rng = random.Random(seed)
    thresholds = sorted(rng.sample(range(total // 10, total * 9 // 10), kills))
    keys = ['k%04d' % i for i in range(total)]
    task = getattr(lost.app, task_name)
    lost.queue.enqueue_many([task.s(key, 0.001) for key in keys])
    options = ('-k', kind, '-w', str(workers), '-c', '0.5')

    generations = []   # (pids of the killed group, kill time, in-flight (pid, key) at kill)
    started = time.monotonic()
    for threshold in thresholds:
        consumer = lost.start(*options)
        wait_for(lambda: lost.count('settled') >= threshold, timeout=60,  # noqa: B023 (called now)
                 what='%d settled tasks' % threshold, describe=consumer.describe, interval=0.005)
        pids = set(consumer.group_pids())
        consumer.kill()
        wait_for(lambda: not consumer.group_pids(), timeout=10,  # noqa: B023 (called now)
                 what='the killed process group to vanish', describe=consumer.describe)
        killed_at = time.time()
        ledger = lost.ledger()
        settled = {(pid, key) for event, pid, _, key in ledger if event == 'settled'}
        in_flight = {(pid, key) for event, pid, _, key in ledger
                     if event == 'start' and pid in pids and (pid, key) not in settled}
        generations.append((pids, killed_at, in_flight))
        assert no_user_visible_errors(consumer.log()) == [], consumer.describe()

    final = lost.start(*options)
    wait_for(lambda: len(lost.keys('body')) >= total and lost.queue.pending_count() == 0
             and lost.queue.running_count() == 0, timeout=60,
             what='the drain to finish', describe=final.describe, interval=0.05)
    elapsed = time.monotonic() - started

    ledger = lost.ledger()
    starts, bodies, settles = lost.keys('start'), lost.keys('body'), lost.keys('settled')
    results = lost.queue.all_results()
    missing = [key for key in keys if key not in bodies]
    missing_results = sorted(set(keys) - set(results.values()))
    duplicates = {key: n for key, n in starts.items() if n > 1}
    in_flight_total = sum(len(g[2]) for g in generations)
    # How long after each kill its in-flight tasks ran again (the next consumer recovers at
    # start; its startup time is included).
    rerun_delays = []
    for _pids, killed_at, in_flight in generations:
        for _, key in in_flight:
            later = [ts for event, pid, ts, k in ledger
                     if event == 'start' and k == key and ts > killed_at]
            if later:
                rerun_delays.append(min(later) - killed_at)

    # Which runs of a duplicated key came before the last one, and were they in flight at a kill?
    unexplained = []
    for key in duplicates:
        runs = sorted((ts, pid) for event, pid, ts, k in ledger if event == 'start' and k == key)
        for ts, pid in runs[:-1]:
            explained = any(pid in pids and ts < killed_at and (pid, key) in in_flight
                            for pids, killed_at, in_flight in generations)
            if not explained:
                unexplained.append((key, pid, ts))
    numbers = dict(kind=kind, seed=seed, tasks=total, kills=kills, workers=workers,
                   kill_points=thresholds, in_flight_at_kills=in_flight_total,
                   lost=len(missing), missing_results=len(missing_results),
                   duplicates=len(duplicates),
                   extra_runs=sum(duplicates.values()) - len(duplicates),
                   settled_twice=sum(1 for n in settles.values() if n > 1),
                   dead_letters=lost.queue.dead_letter_count(), seconds=round(elapsed, 1),
                   max_rerun_delay=round(max(rerun_delays, default=0.0), 2))
    report('kill9_drain_%s' % kind, **numbers)
    print('kill -9 drain:', numbers)

    assert missing == [] and missing_results == [], numbers
    assert len(results) == total, numbers                     # one stored result per task
    assert lost.queue.dead_letter_count() == 0, lost.queue.dead_letters()
    assert unexplained == [], (unexplained, numbers)
    # A worker has in flight its running task(s) and the finished ones whose outcomes wait
    # for a group commit (sqlq.outcomes): at most in_flight_bound per process at a kill.
    assert len(duplicates) <= in_flight_total, numbers
    for _pids, _, in_flight in generations:
        per_pid = collections.Counter(pid for pid, _ in in_flight)
        assert max(per_pid.values(), default=0) <= in_flight_bound, (per_pid, numbers)
    assert all(n == 1 for n in settles.values()), numbers    # no outcome committed twice
    assert max(rerun_delays, default=0.0) < RECOVERY_BOUND, numbers
    assert no_user_visible_errors(final.log()) == [], final.describe()


# -- 2. several producers and consumers, nothing crashes ------------------------------------------
PRODUCER = r'''
import sys, traceback
sys.path[:0] = [%(root)r]
from tests.apps.lost_app import build
try:
    q = build(%(db)r)
    for i in range(%(n)d):
        key = 'p%(p)d-%%04d' %% i
        if i %% 50 < 40:
            q.app.record(key)
        elif i %% 50 == 40:
            q.enqueue_many([q.app.record.s('p%(p)d-%%04d' %% j) for j in range(i, i + 10)])
    q.close()
except BaseException:
    traceback.print_exc()
    sys.exit(3)
print('producer done')
'''


def test_many_producers_and_consumers_run_every_task_exactly_once(lost):
    producers, per_producer, consumers = 3, 400, 3
    cons = [lost.start('-k', 'process', '-w', '2') for _ in range(consumers)]
    procs = [lost.run_python('producer-%d' % p, PRODUCER % dict(
        root=ROOT_DIR, db=lost.db, n=per_producer, p=p))
        for p in range(producers)]
    for proc in procs:
        code = proc.wait_exit(60)
        out = proc.output()
        assert code == 0 and 'producer done' in out, out
        assert no_user_visible_errors(out) == [], out
    total = producers * per_producer
    wait_for(lambda: len(lost.keys('settled')) >= total and lost.queue.pending_count() == 0
             and lost.queue.running_count() == 0, timeout=60, what='all tasks to run',
             describe=lambda: '\n'.join(c.describe() for c in cons), interval=0.05)
    expected = {'p%d-%04d' % (p, i) for p in range(producers) for i in range(per_producer)}
    starts = lost.keys('start')
    assert set(starts) == expected
    twice = {key: n for key, n in starts.items() if n != 1}
    report('producers_consumers', tasks=total, producers=producers, consumers=consumers,
           lost=len(expected - set(starts)), duplicates=len(twice))
    assert twice == {}
    # every consumer took part, and none logged a locked database or any error
    ran_in = {pid for _, pid, _, _ in lost.ledger('start')}
    for consumer in cons:
        assert consumer.proc.poll() is None, consumer.describe()
        assert ran_in & set(consumer.worker_pids()), consumer.describe()
        assert no_user_visible_errors(consumer.log()) == [], consumer.describe()
    assert lost.queue.dead_letter_count() == 0


# -- 3. bad input becomes visible dead letters; the consumer keeps running ------------------------
def test_bad_input_becomes_dead_letters_and_consumer_keeps_running(lost):
    consumer = lost.start('-k', 'process', '-w', '2', '-c', '0.2')
    lost.queue.storage.enqueue(b'\x00garbage\xff not a message')      # undecodable
    other = build(lost.db, extra=True)                                 # knows lost.unknown
    try:
        other.app.unknown('u1')
    finally:
        other.close()
    unstorable = lost.app.unstorable()
    died = lost.app.die(7)
    wait_for(lambda: lost.queue.dead_letter_count() >= 4, timeout=30,
             what='four dead letters', describe=lambda: consumer.describe() + '\n%r' % (
                 lost.queue.dead_letters(),))
    later = lost.app.echo('after')
    assert later.get(blocking=True, timeout=RESULT_TIMEOUT)[0] == 'after'
    assert consumer.proc.poll() is None, consumer.describe()

    letters = lost.queue.dead_letters()
    assert len(letters) == 4, letters
    reasons = [letter.reason for letter in letters]

    def one(pattern):
        found = [r for r in reasons if re.search(pattern, r, re.S)]
        assert len(found) == 1, (pattern, reasons)
        return found[0]
    one(r'(?i)decode')
    one(r'UnknownTaskError.*lost\.unknown')
    unstorable_reason = one(r'SerializationError.*Unstorable refuses to be pickled')
    assert 'Traceback' in unstorable_reason
    death = one(r'quarantined.*died 3 times')
    assert len(lost.ledger('die')) == 3                    # killed its worker 3 times, no more
    assert len(lost.ledger('unstorable')) == 1             # a storage failure is not retried
    by_reason = {letter.reason: letter for letter in letters}
    assert by_reason[death].attempts >= 3
    assert all(letter.failed_at > 0 for letter in letters)
    # the kept messages of the task failures decode to the tasks themselves
    ids = {lost.queue.deserialize_task(dead.data).id for dead in letters
           if 'lost.unknown' not in dead.reason and 'decode' not in dead.reason.lower()}
    assert ids == {unstorable.id, died.id}
    assert lost.queue.pending_count() == 0 and lost.queue.running_count() == 0

    # the same through the failed-task API: decoded task where possible, reason, attempts
    failed = {item.id: item for item in lost.queue.failed()}
    assert set(failed) == {letter.id for letter in letters}
    by_task = {item.task.id: item for item in failed.values() if item.task is not None}
    assert {unstorable.id, died.id} <= set(by_task)
    assert by_task[died.id].attempts >= 3 and by_task[died.id].reason == death
    assert all(item.failed_at >= (item.enqueued_at or 0) > 0 for item in failed.values())
    # requeue the unknown-task message: it fails the same way again (a new dead letter);
    # purge removes dead letters for good
    unknown_id = next(dead.id for dead in letters if 'lost.unknown' in dead.reason)
    assert lost.queue.requeue_failed([unknown_id]) == 1
    wait_for(lambda: [dead for dead in lost.queue.dead_letters() if 'lost.unknown' in dead.reason
                      and dead.id != unknown_id], timeout=15, what='the requeued message to fail '
             'again', describe=consumer.describe)
    assert lost.queue.dead_letter_count() == 4
    assert lost.queue.purge_failed([dead.id for dead in lost.queue.dead_letters()]) == 4
    assert lost.queue.failed() == [] and lost.queue.dead_letter_count() == 0
    assert consumer.proc.poll() is None, consumer.describe()
    report('bad_input', dead_letters=len(letters), die_runs=len(lost.ledger('die')),
           reasons=[r.splitlines()[0][:120] for r in reasons])


# -- 3b. poison rows (not even bytes) become dead letters; the queue goes on --------------------
@pytest.mark.parametrize('kind', ['thread', 'process'])
def test_poison_rows_become_dead_letters_and_the_queue_goes_on(lost, kind):
    """Rows whose data is TEXT or INTEGER (what the sqlite3 shell writes for 'hello' and 42),
    ahead of real tasks: each becomes a dead letter, once, with its reason; every task behind
    them runs; no worker dies or logs a traceback."""
    consumer = lost.start('-k', kind, '-w', '2')
    with lost.queue.storage.transaction() as conn:
        for value in ("'hello'", '42', "CAST(x'ff41' AS TEXT)"):
            conn.execute("INSERT INTO task (queue, priority, body, enqueued_at) "
                         "VALUES (?, 1, %s, 0)" % value, (lost.queue.name,))
    results = [lost.app.echo('after-%d' % i) for i in range(20)]
    for result in results:
        assert result.get(blocking=True, timeout=RESULT_TIMEOUT) is not None, \
            consumer.describe()
    letters = lost.queue.dead_letters()
    assert sorted(letter.data for letter in letters) == [b'42', b'hello', b'\xffA']
    assert all('decode' in letter.reason.lower() for letter in letters), letters
    assert consumer.proc.poll() is None, consumer.describe()
    consumer.wait_log('moved to dead letters', 3)   # the log is written asynchronously
    log = consumer.log()
    assert 'Traceback' not in log and ' died ' not in log, consumer.describe()


# -- 4. at_most_once is not re-run after its worker dies; a normal task is ----------------------
def test_killed_worker_reruns_normal_task_but_not_at_most_once(lost):
    consumer = lost.start('-k', 'process', '-w', '2', '-c', '0.2')
    once = lost.app.block_once('once', lost.release_path('once'))
    normal = lost.app.block('normal', lost.release_path('normal'))
    starts = wait_for(lambda: {entry[3]: entry[1] for entry in lost.ledger('start')}
                      if len(lost.ledger('start')) >= 2 else None,
                      what='both tasks to start', describe=consumer.describe)
    for pid in set(starts.values()):
        os.kill(pid, 9)
    killed_at = time.monotonic()
    lost.release('normal')
    lost.release('once')
    assert normal.get(blocking=True, timeout=RESULT_TIMEOUT) == 'released normal'
    rerun_after = time.monotonic() - killed_at
    runs = [entry for entry in lost.ledger('start') if entry[3] == 'normal']
    assert len(runs) == 2 and runs[1][1] != starts['normal'], runs
    assert rerun_after < RECOVERY_BOUND + 5
    assert len([entry for entry in lost.ledger('start') if entry[3] == 'once']) == 1   # not re-run
    assert lost.ledger('finish') == [entry for entry in lost.ledger('finish')
                                     if entry[3] == 'normal']
    assert not once.is_ready()
    assert lost.queue.pending_count() == 0 and lost.queue.running_count() == 0
    assert lost.queue.dead_letter_count() == 0
    assert consumer.proc.poll() is None
    report('at_most_once', normal_rerun_seconds=round(rerun_after, 2),
           at_most_once_runs=1)


# -- 4b. a task that kills a thread consumer: its bystanders are not charged --------------------
def test_tasks_claimed_beside_a_killer_are_not_charged_its_deaths(lost):
    """Thread workers (the default): tasks that kill the process -- here three, each run once
    (at most once) -- while a worker's batch holds other claims it has not started. Those
    bystanders go back uncharged each time: none is quarantined, every one runs once the
    killers are gone. (They used to be charged each death and quarantined after three
    without ever running.)"""
    bystanders = ['b%02d' % i for i in range(40)]
    results = lost.queue.enqueue_many([lost.app.record.s(key) for key in bystanders])
    for round in range(3):
        # fast warm-ups first (priority 9: the workers' batches grow), then a killer
        # (priority 5), then the bystanders (priority 0): the batch that holds the killer
        # holds bystanders behind it.
        batch = [lost.app.echo.s('w%d-%d' % (round, i)) for i in range(60)]
        killer = lost.app.die_once.s(7)
        for task, priority in [(task, 9) for task in batch] + [(killer, 5)]:
            task.priority = priority
        lost.queue.enqueue_many(batch + [killer])
        consumer = lost.start('-k', 'thread', '-w', '2', ready=False)
        assert consumer.wait_exit(60) == 7, consumer.describe()    # killed by the task
        assert len(lost.ledger('die')) == round + 1
    final = lost.start('-k', 'thread', '-w', '2')
    wait_for(lambda: lost.queue.pending_count() == 0 and lost.queue.running_count() == 0,
             timeout=60, what='the bystanders to run',
             describe=lambda: final.describe() + '\n%r' % (lost.queue.dead_letters(),))
    letters = lost.queue.dead_letters()
    assert letters == [], [letter.reason for letter in letters]
    # Every bystander ran and its outcome is committed. (Its 'settled' mark, written by a
    # post-execute hook after that commit, is missing for one that another thread finished
    # just before a killer ended the process.)
    assert [result.get(preserve=True) for result in results.results] == bystanders
    assert set(lost.keys('body')) >= set(bystanders)
    report('bystanders', deaths=3, quarantined=len(letters))


# -- dead consumer detected by another live consumer ---------------------------------------------
def test_claims_of_a_killed_consumer_are_run_by_a_live_consumer_within_10s(lost):
    first = lost.start('-k', 'process', '-w', '1')
    result = lost.app.block('orphan', lost.release_path('orphan'))
    wait_for(lambda: lost.ledger('start'), what='the task to start', describe=first.describe)
    second = lost.start('-k', 'process', '-w', '1')   # starts while `first` is alive
    first.kill()                                       # the task is still blocked: in flight
    killed_at = time.monotonic()
    lost.release('orphan')
    value = result.get(blocking=True, timeout=RECOVERY_BOUND + 10)
    took = time.monotonic() - killed_at
    assert value == 'released orphan'
    starts = [entry for entry in lost.ledger('start') if entry[3] == 'orphan']
    assert len(starts) == 2 and starts[1][1] in second.worker_pids(), (starts, second.describe())
    assert took <= RECOVERY_BOUND, took
    assert lost.queue.running_count() == 0
    report('live_consumer_recovery', seconds=round(took, 2))


def _unshare_works():
    try:
        return subprocess.run(UNSHARE + ['true'], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


#: A command in a PID namespace of its own (as in a container), with /proc to match.
UNSHARE = ['unshare', '--pid', '--fork', '--mount-proc']
#: Recovery as a consumer in another container runs it: ``recover()`` with the given lease.
RECOVER = ('import sys; from sqlq.recovery import ClaimRecovery; '
           'from tests.apps.lost_app import build; '
           'print(ClaimRecovery(build(sys.argv[1]).storage, lease=float(sys.argv[2])).recover())')


def test_consumer_in_another_pid_namespace_is_not_taken_for_dead(lost):
    """Two containers sharing the hostname (host network) but not a PID namespace: consumer A's
    pid does not exist in B's namespace. B must not take A for dead while A heartbeats (it
    used to, and re-ran A's running task beside it); once A is killed, B recovers its task
    when A's heartbeat goes stale."""
    if not _unshare_works():
        pytest.skip('unshare --pid --fork --mount-proc does not work here (needs root or '
                    'user namespaces)')
    # A: a consumer whose pid (after 30 short-lived processes) exists in no other namespace
    # of this test.
    consumer_args = [sys.executable, '-m', 'sqlq', 'consume', lost.target, '-k', 'thread',
                     '-w', '1', '-l', os.path.join(lost.dir, 'a.log')]
    a = _harness.Proc(lost, 'consumer-a', UNSHARE + [
        'sh', '-c', 'for i in $(seq 30); do /bin/true; done; "$@" & wait', 'sh']
        + consumer_args)
    lost.procs.append(a)
    result = lost.app.block('a', lost.release_path('a'))
    wait_for(lambda: lost.ledger('start'), what='the task to start in A', describe=a.describe)
    [item] = lost.queue.storage.claimed_items()

    def recover_in_b(lease):
        done = subprocess.run(UNSHARE + [sys.executable, '-c', RECOVER, lost.db, str(lease)],
                              env=lost.env, cwd=lost.dir, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return int(done.stdout.split()[-1])

    assert recover_in_b(8.0) == 0                   # A heartbeats: alive, whatever its pid
    assert [i.id for i in lost.queue.storage.claimed_items()] == [item.id]
    assert len(lost.ledger('start')) == 1
    a.kill()
    # A's heartbeat goes stale: B (here with a 1 s lease) gives the task back.
    wait_for(lambda: recover_in_b(1.0) == 1, timeout=30, what='B to recover the dead A',
             interval=0.5)
    b = lost.start('-k', 'thread', '-w', '1')
    lost.release('a')
    assert result.get(blocking=True, timeout=RESULT_TIMEOUT) == 'released a', b.describe()


def test_task_handed_to_a_consumer_killed_before_it_started_runs_elsewhere(lost):
    """kill -9 between the hand-off (a single enqueue claims the task for an idle worker in
    its own transaction) and the task's start: a live consumer recovers and runs it, once."""
    storage = lost.queue.storage
    first = lost.start('-k', 'process', '-w', '1')
    wait_for(lambda: storage._rows('SELECT 1 FROM idle_worker'), what='the worker to go idle',
             describe=first.describe)
    [worker_pid] = first.worker_pids()
    os.kill(worker_pid, signal.SIGSTOP)  # registered and idle, but it will never read
    result = lost.app.echo('handed')
    [item] = storage.claimed_items()  # claimed for the stopped worker by the enqueue itself
    assert item.owner.split(':')[1] == str(worker_pid)
    second = lost.start('-k', 'process', '-w', '1')
    first.kill()
    assert result.get(blocking=True, timeout=RECOVERY_BOUND + 10) == ['handed',
                                                                      second.worker_pids()[0]]
    assert [entry[1] for entry in lost.ledger('echo')] == [second.worker_pids()[0]]  # ran once
    assert lost.queue.running_count() == 0


# -- 5. fencing: a stale receipt cannot settle a claim that was taken over ----------------------
def test_stale_receipt_is_rejected_after_recovery(lost):
    a, b = build(lost.db), build(lost.db)
    try:
        result = a.app.echo('fenced')
        stale = a.deliver(a.storage.dequeue())                       # a's claim of the task
        assert a.storage.owner_id != b.storage.owner_id
        assert b.storage.release_owner(a.storage.owner_id) == 1     # what recovery does
        fresh = b.deliver(b.storage.dequeue())
        assert fresh.task.id == stale.task.id and fresh.attempts == stale.attempts + 1
        assert a.storage.ack(stale.receipt) is False                 # fenced
        assert b.running_count() == 1                                # still claimed by b
        b.execute(fresh)
        assert result.get(blocking=True, timeout=5)[0] == 'fenced'
        assert len(lost.ledger('echo')) == 1
        assert b.pending_count() == 0 and b.running_count() == 0
        assert a.storage.ack(stale.receipt) is False
    finally:
        a.close()
        b.close()


def test_late_outcome_of_a_taken_over_claim_is_rejected_and_logged(lost, caplog):
    """The stale worker finishes after its claim was recovered and re-run elsewhere: its
    outcome (result, pipeline continuation) is rejected and logged, never applied twice."""
    a, b = build(lost.db), build(lost.db)
    try:
        pipeline = a.app.record.s('late').then(a.app.echo)
        a.enqueue(pipeline)
        stale = a.dequeue()
        assert b.storage.release_owner(a.storage.owner_id) == 1
        fresh = b.dequeue()
        b.execute(fresh)                              # the new owner completes it
        with caplog.at_level(logging.WARNING, logger='sqlq'):
            a.execute(stale)                          # the old worker comes back late
        assert re.search(r'(?i)no longer held|stale|rejected|fenc', caplog.text), caplog.text
        while True:                                   # run whatever was enqueued
            task = b.dequeue()
            if task is None:
                break
            b.execute(task)
        assert len(lost.ledger('echo')) == 1, lost.ledger()   # continuation ran once
        assert b.dead_letter_count() == 0
        assert b.pending_count() == 0 and b.running_count() == 0

        # a late *failure* of a taken-over claim makes no dead letter for a task that succeeded
        @a.task(name='lost.flaky')
        def flaky_a():
            raise ValueError('the stale run failed')

        @b.task(name='lost.flaky')
        def flaky_b():
            return 'ok'

        flaky = flaky_a()
        stale = a.dequeue()
        assert b.storage.release_owner(a.storage.owner_id) == 1
        b.execute(b.dequeue())
        a.execute(stale)
        assert flaky.get(blocking=True, timeout=5) == 'ok'
        assert b.dead_letter_count() == 0, b.dead_letters()
        assert b.pending_count() == 0 and b.running_count() == 0
    finally:
        a.close()
        b.close()
