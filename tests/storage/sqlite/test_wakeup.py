"""Push-based wait_for_change of SqliteStorage: the wake-up channel beside the database.

No timing assertions: every wait has a generous bound, and "woken by the notification" is read
from the storage's record of what ended the wait (``_local.last_wake``: ``'notify'`` when a
datagram arrived, ``'version'`` when ``PRAGMA data_version`` showed the change, ``'poll'`` for
the polling fallback, ``'timeout'``).
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

import pytest

from sqlq.exceptions import StorageError
from sqlq.storage.sqlite import SqliteStorage, _wakeup

pytestmark = pytest.mark.skipif(not hasattr(socket, 'AF_UNIX'), reason='needs AF_UNIX sockets')

JOIN = 60.0  # bound of every join / wait for another process or thread


@pytest.fixture
def short_dir():
    """A directory with a short path: the channel lives beside the database there."""
    path = tempfile.mkdtemp(prefix='sqw')
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def db_path(short_dir):
    return os.path.join(short_dir, 'q.db')


def last_wake(storage):
    return storage._local.last_wake


def sockets_in(directory):
    try:
        return sorted(n for n in os.listdir(directory) if n.endswith('.sock'))
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------------- helpers run elsewhere

def _waiter_process(path, ready, out_path):
    """Wait until a wait_for_change is ended by a datagram; record every wait's outcome."""
    s = SqliteStorage(path, 'test')
    s._wake.listen()  # bound before the parent starts writing
    ready.set()
    outcomes = []
    for _ in range(200):
        woke = s.wait_for_change(30)
        outcomes.append('%s:%s' % (woke, last_wake(s)))
        if last_wake(s) == 'notify' or not woke:
            break
    s.close()
    with open(out_path, 'w') as f:
        f.write('\n'.join(outcomes))


def _bind_and_die(path):
    s = SqliteStorage(path, 'test')
    s.wait_for_change(0.01)  # binds this thread's socket
    os._exit(0)  # no close(), no finalizers: the socket file stays behind


def _keep_writing(write, until, bound=JOIN):
    """Call ``write()`` every 20 ms until ``until()`` or the bound: a waiter may not be blocked
    yet when the first write lands (it then sees it through data_version and waits again)."""
    deadline = time.monotonic() + bound
    while not until() and time.monotonic() < deadline:
        write()
        time.sleep(0.02)


# ---------------------------------------------------------------------- cross-process

@pytest.mark.subprocess
@pytest.mark.parametrize('write', ['enqueue', 'put_data'])
def test_waiter_in_another_process_is_woken_by_the_notification(db_path, tmp_path, write):
    s = SqliteStorage(db_path, 'test')
    ctx = multiprocessing.get_context('spawn')
    ready = ctx.Event()
    out = str(tmp_path / 'outcomes')
    proc = ctx.Process(target=_waiter_process, args=(db_path, ready, out), daemon=True)
    proc.start()
    try:
        assert ready.wait(JOIN)
        n = iter(range(10**6))
        if write == 'enqueue':
            do = lambda: s.enqueue(b'job')  # noqa: E731
        else:  # a task result: what Result.get(blocking=True) waits for
            do = lambda: s.put_data('result-%d' % next(n), b'r', is_result=True)  # noqa: E731
        _keep_writing(do, lambda: not proc.is_alive())
        proc.join(JOIN)
        assert proc.exitcode == 0
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        s.close()
    with open(out) as f:
        outcomes = f.read().split('\n')
    # every wait ended because of a change (none timed out), the last one by a datagram
    assert all(o.startswith('True:') for o in outcomes), outcomes
    assert outcomes[-1] == 'True:notify', outcomes


# ---------------------------------------------------------------------- cleanup

@pytest.mark.subprocess
def test_stale_socket_of_a_dead_process_is_removed_by_the_next_writer(db_path):
    s = SqliteStorage(db_path, 'test')
    directory = s._wake.directory
    assert directory == db_path + '.sqlq-wake'
    ctx = multiprocessing.get_context('spawn')
    proc = ctx.Process(target=_bind_and_die, args=(db_path,), daemon=True)
    proc.start()
    proc.join(JOIN)
    assert proc.exitcode == 0
    stale = [n for n in sockets_in(directory) if n.startswith('%d-' % proc.pid)]
    assert len(stale) == 1
    s.enqueue(b'x')
    assert not os.path.exists(os.path.join(directory, stale[0]))
    s.close()


def test_close_removes_own_sockets_of_every_thread(db_path):
    s = SqliteStorage(db_path, 'test')
    other = SqliteStorage(db_path, 'other')
    assert s.wait_for_change(0) is False
    t = threading.Thread(target=s.wait_for_change, args=(0,))
    t.start()
    t.join(JOIN)
    other.wait_for_change(0)
    mine = s._wake.socket_paths()
    assert len(mine) <= 2 and all(os.path.exists(p) for p in mine)
    assert mine and os.path.basename(mine[0]).startswith('%d-' % os.getpid())
    s.close()
    assert not any(os.path.exists(p) for p in mine)
    # another storage's socket on the same file is not touched
    theirs = other._wake.socket_paths()
    assert len(theirs) == 1 and os.path.exists(theirs[0])
    other.close()
    assert not os.path.exists(theirs[0])
    assert sockets_in(db_path + '.sqlq-wake') == []


def test_a_thread_that_ends_unlinks_its_socket(db_path):
    s = SqliteStorage(db_path, 'test')
    paths = []
    t = threading.Thread(target=lambda: (s.wait_for_change(0),
                                         paths.extend(s._wake.socket_paths())))
    t.start()
    t.join(JOIN)
    assert len(paths) == 1
    del t
    deadline = time.monotonic() + JOIN
    while os.path.exists(paths[0]) and time.monotonic() < deadline:
        time.sleep(0.01)  # the thread's locals are dropped when it is fully gone
    assert not os.path.exists(paths[0])
    s.close()


@pytest.mark.subprocess
@pytest.mark.skipif(not hasattr(os, 'fork'), reason='needs fork')
def test_forked_child_binds_its_own_socket_and_leaves_the_parents(db_path, tmp_path):
    s = SqliteStorage(db_path, 'test')
    s.wait_for_change(0)
    parent_sockets = s._wake.socket_paths()
    assert len(parent_sockets) == 1
    ctx = multiprocessing.get_context('fork')
    out = str(tmp_path / 'outcomes')
    ready = ctx.Event()

    def child():
        s._wake.listen()
        ready.set()
        outcomes = []
        for _ in range(200):
            woke = s.wait_for_change(30)
            outcomes.append('%s:%s' % (woke, last_wake(s)))
            if last_wake(s) == 'notify' or not woke:
                break
        mine = s._wake.socket_paths()
        outcomes.append(str(len(mine) == 1 and mine[0] not in parent_sockets))
        s.close()  # must not unlink the parent's socket
        with open(out, 'w') as f:
            f.write('\n'.join(outcomes))

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    writer = SqliteStorage(db_path, 'test')
    try:
        assert ready.wait(JOIN)
        _keep_writing(lambda: writer.enqueue(b'x'), lambda: not proc.is_alive())
        proc.join(JOIN)
        assert proc.exitcode == 0
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        writer.close()
    with open(out) as f:
        outcomes = f.read().split('\n')
    assert outcomes[-1] == 'True', outcomes
    assert outcomes[-2] == 'True:notify', outcomes
    assert all(os.path.exists(p) for p in parent_sockets)
    s.close()
    assert not any(os.path.exists(p) for p in parent_sockets)


# ---------------------------------------------------------------------- directories

def test_short_path_uses_the_directory_beside_the_database(db_path):
    s = SqliteStorage(db_path, 'test')
    assert s._wake.directory == db_path + '.sqlq-wake'
    assert os.stat(s._wake.directory).st_mode & 0o777 == 0o700
    s.close()


def test_deep_path_uses_the_fallback_directory(tmp_path):
    deep = tmp_path / ('d' * 60) / ('e' * 60)
    deep.mkdir(parents=True)
    path = str(deep / 'queue.db')
    s = SqliteStorage(path, 'test')
    directory = s._wake.directory
    assert directory == _wakeup.directories_for(path)[1]
    assert directory.startswith(os.path.join(tempfile.gettempdir(), 'sqlq-wake-'))
    assert not os.path.exists(path + '.sqlq-wake')
    assert os.stat(directory).st_mode & 0o777 == 0o700
    # and the channel works there
    assert _wait_in_threads(s, 1) == [(True, 'notify')]
    s.close()


def _wait_in_threads(s, n, writer=None):
    """``n`` threads wait until a datagram wakes them; the main thread writes meanwhile."""
    writer = writer or s
    listening = threading.Barrier(n + 1)
    results = [None] * n

    def wait(i):
        s._wake.listen()
        listening.wait(JOIN)
        for _ in range(200):
            woke = s.wait_for_change(30)
            if not woke or last_wake(s) == 'notify':
                break
        results[i] = (woke, last_wake(s))

    threads = [threading.Thread(target=wait, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    listening.wait(JOIN)
    _keep_writing(lambda: writer.enqueue(b'x'), lambda: all(r is not None for r in results))
    for t in threads:
        t.join(JOIN)
    return results


def test_two_threads_waiting_on_one_storage_are_both_woken(db_path):
    s = SqliteStorage(db_path, 'test')
    writer = SqliteStorage(db_path, 'test')
    assert _wait_in_threads(s, 2, writer) == [(True, 'notify'), (True, 'notify')]
    writer.close()
    s.close()


def test_threads_of_one_storage_wake_each_other(db_path):
    s = SqliteStorage(db_path, 'test')
    assert _wait_in_threads(s, 2) == [(True, 'notify'), (True, 'notify')]
    s.close()


def test_without_a_usable_directory_waits_poll(db_path, monkeypatch, caplog):
    def refuse(directory):
        raise PermissionError(13, 'Permission denied', directory)

    monkeypatch.setattr(_wakeup, 'make_private_dir', refuse)
    caplog.set_level('DEBUG', logger='sqlq.storage.sqlite._wakeup')
    s = SqliteStorage(db_path, 'test')
    writer = SqliteStorage(db_path, 'test')
    assert s._wake.available is False
    writer.enqueue(b'x')  # notifying is a no-op, not an error
    assert s.wait_for_change(10) is True  # seen through data_version
    assert s.wait_for_change(0.02) is False
    results = []

    def wait():
        s.wait_for_change(0)  # this thread's baseline
        results.append((s.wait_for_change(30), last_wake(s)))

    t = threading.Thread(target=wait, daemon=True)
    t.start()
    _keep_writing(lambda: writer.enqueue(b'y'), lambda: not t.is_alive())
    t.join(JOIN)
    assert results == [(True, 'poll')]
    assert not os.path.exists(db_path + '.sqlq-wake')
    assert s._wake.socket_paths() == []
    # Only the waiter looked for a directory to create; a writer never creates one.
    assert sum('no usable wake-up directory' in r.getMessage() for r in caplog.records) == 1
    writer.close()
    s.close()


# ---------------------------------------------------------------------- when writers notify

@pytest.fixture
def listener(db_path):
    """A wake-up socket bound in a helper thread; ``listener()`` drains it from that thread
    and returns how many datagrams were pending."""
    channel = _wakeup.for_file(db_path)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    assert pool.submit(channel.listen).result(JOIN)
    yield lambda: pool.submit(channel.drain).result(JOIN)
    pool.shutdown()
    channel.close()


def test_each_committed_write_but_a_claim_notifies_once(db_path, listener):
    s = SqliteStorage(db_path, 'test')
    s.enqueue(b'a')
    assert listener() == 1
    s.enqueue_many([(b'b', 0), (b'c', 1)])
    assert listener() == 1
    claim = s.dequeue()
    assert listener() == 0   # a claim changes nothing a waiter waits for
    s.ack(claim.receipt)
    assert listener() == 1
    s.put_data('k', b'v')
    s.add_to_schedule(b'later', 10.0)
    assert listener() == 2
    s.read_schedule(20.0)
    assert listener() == 1
    s.close()


def test_writes_that_change_nothing_notify_nobody(db_path, listener):
    s = SqliteStorage(db_path, 'test')
    assert s.dequeue() is None
    assert s.read_schedule(1e12) == []
    assert s.ack((1, 'nobody', 1)) is False
    assert s.pop_data('missing') is not None
    assert listener() == 0
    s.close()


def test_a_rolled_back_transaction_notifies_nobody(db_path, listener):
    s = SqliteStorage(db_path, 'test')
    with pytest.raises(ZeroDivisionError):
        with s.transaction():
            s.enqueue(b'x')
            s.put_data('k', b'v')
            1 / 0
    assert listener() == 0
    assert s.queue_size() == 0
    s.close()


def test_a_nested_transaction_notifies_once_after_the_outer_commit(db_path, listener):
    s = SqliteStorage(db_path, 'test')
    with s.transaction():
        s.enqueue(b'x')
        with s.transaction():
            s.enqueue(b'y')
            with s.transaction():
                s.put_data('k', b'v')
            assert listener() == 0  # released savepoints notify nobody
        assert listener() == 0
        with pytest.raises(ZeroDivisionError):
            with s.transaction():
                s.enqueue(b'undone')
                1 / 0
        assert listener() == 0
    assert listener() == 1
    assert s.queue_size() == 2
    s.close()


def test_a_writer_does_not_notify_its_own_thread(db_path, listener):
    s = SqliteStorage(db_path, 'test')
    other = SqliteStorage(db_path, 'other')
    assert s.wait_for_change(0) is False  # binds this thread's socket
    other.enqueue(b'x')  # same thread, another storage: not notified either
    s.enqueue(b'y')
    assert s._wake.drain() == 0
    assert listener() == 2
    # the other storage's commit is a change for this connection, seen through data_version
    assert s.wait_for_change(10) is True and last_wake(s) == 'version'
    assert s.wait_for_change(0) is False
    other.close()
    s.close()


def test_wait_for_change_is_still_refused_inside_a_transaction(db_path):
    s = SqliteStorage(db_path, 'test')
    with s.transaction():
        with pytest.raises(StorageError):
            s.wait_for_change(0.01)
    s.close()
    with pytest.raises(StorageError):
        s.wait_for_change(0.01)


def test_a_commit_by_a_writer_that_cannot_notify_is_seen(db_path):
    import apsw

    s = SqliteStorage(db_path, 'test')
    assert s.wait_for_change(0) is False
    results = []

    def wait():
        s.wait_for_change(0)
        results.append((s.wait_for_change(30), last_wake(s)))

    t = threading.Thread(target=wait, daemon=True)
    t.start()
    conn = apsw.Connection(db_path)  # another program: no notification
    n = iter(range(10**6))
    _keep_writing(lambda: conn.execute("INSERT INTO kv (queue, key, value) VALUES "
                                       "('x', ?, x'00')", ('k%d' % next(n),)),
                  lambda: not t.is_alive())
    t.join(JOIN)
    conn.close()
    assert results == [(True, 'version')]
    s.close()


# ---------------------------------------------------------------------- the channel alone

def test_channel_wait_times_out_and_wakes(short_dir):
    a = _wakeup.WakeupChannel(os.path.join(short_dir, 'ch'))
    b = _wakeup.WakeupChannel(os.path.join(short_dir, 'ch'))
    pool = concurrent.futures.ThreadPoolExecutor(1)  # a's waiting thread
    in_a = lambda fn, *args: pool.submit(fn, *args).result(JOIN)  # noqa: E731
    assert in_a(a.wait, 0.01) is False
    assert b.notify() == 1
    assert in_a(a.notify) == 0  # never the calling thread's own socket
    assert in_a(a.wait, JOIN) is True
    assert in_a(a.wait, 0) is False
    for _ in range(50):  # more than the socket's queue: the writer skips, never blocks
        b.notify()
    assert in_a(a.drain) > 0
    assert in_a(a.wait, 0) is False
    in_a(a.close)
    assert in_a(a.listen) is False and a.notify() == 0
    pool.shutdown()
    b.close()


def test_closing_the_last_listener_removes_the_directory_and_it_comes_back(short_dir):
    directory = os.path.join(short_dir, 'ch')
    a = _wakeup.WakeupChannel(directory)
    b = _wakeup.WakeupChannel(directory)
    assert a.listen() and b.listen()
    a.close()
    assert os.path.isdir(directory)  # b still listens there
    b.close()
    assert not os.path.exists(directory)
    c = _wakeup.WakeupChannel(directory)
    assert c.directory == directory
    os.rmdir(directory)  # removed between resolving and binding
    assert c.listen()
    assert len(c.socket_paths()) == 1 and os.path.exists(c.socket_paths()[0])
    c.close()


def test_a_writer_alone_creates_no_wake_up_directory(db_path):
    s = SqliteStorage(db_path, 'test')
    s.enqueue(b'x')
    s.put_data('k', b'v')
    assert s.dequeue() is not None
    assert not any(os.path.exists(d) for d in _wakeup.directories_for(db_path))
    s.close()


def test_a_writer_follows_waiters_as_they_come_and_go(short_dir):
    directory = os.path.join(short_dir, 'ch')
    writer, waiter = _wakeup.WakeupChannel(directory), _wakeup.WakeupChannel(directory)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    in_waiter = lambda fn: pool.submit(fn).result(JOIN)  # noqa: E731 (another thread)
    assert writer.notify() == 0 and not os.path.exists(directory)
    assert in_waiter(waiter.listen)
    assert writer.notify() == 1
    in_waiter(waiter.close)  # the last listener removes the directory
    assert writer.notify() == 0 and not os.path.exists(directory)
    pool.shutdown()


def test_a_writer_finds_waiters_in_the_fallback_directory(short_dir):
    """The first candidate is unusable (here: a file), so waiters listen in the fallback; a
    writer of another channel finds them there and creates nothing."""
    first, second = os.path.join(short_dir, 'first'), os.path.join(short_dir, 'second')
    open(first, 'w').close()
    waiter = _wakeup.WakeupChannel(first, fallbacks=[second])
    writer = _wakeup.WakeupChannel(first, fallbacks=[second])
    pool = concurrent.futures.ThreadPoolExecutor(1)
    assert pool.submit(waiter.listen).result(JOIN) and waiter.directory == second
    assert writer.notify() == 1
    assert pool.submit(waiter.wait, JOIN).result(JOIN)
    pool.submit(waiter.close).result(JOIN)
    pool.shutdown()


def test_unlisten_unlinks_the_threads_socket_and_the_directory_it_leaves_empty(short_dir):
    directory = os.path.join(short_dir, 'ch')
    channel, other = _wakeup.WakeupChannel(directory), _wakeup.WakeupChannel(directory)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    assert channel.listen('q') and pool.submit(other.listen).result(JOIN)
    [path] = channel.socket_paths()
    channel.unlisten('q')
    assert not os.path.exists(path) and channel.socket_paths() == []
    assert os.path.isdir(directory)  # the other thread still listens there
    channel.unlisten('q')  # nothing bound: nothing to do
    pool.submit(other.unlisten).result(JOIN)
    assert not os.path.exists(directory)
    assert channel.listen('q')  # a later wait binds again
    channel.close()
    pool.shutdown()


def test_channel_refuses_a_directory_of_another_kind(short_dir):
    target = os.path.join(short_dir, 'elsewhere')
    os.mkdir(target)
    link = os.path.join(short_dir, 'link')
    os.symlink(target, link)
    assert _wakeup.WakeupChannel(link).available is False
    assert _wakeup.WakeupChannel(link, fallbacks=[target]).directory == target


@pytest.mark.skipif(sys.platform != 'linux', reason='Linux path limit')
def test_fits_counts_the_longest_socket_name():
    assert _wakeup.fits('/' + 'x' * (107 - 1 - _wakeup.NAME_MAX - 1))
    assert not _wakeup.fits('/' + 'x' * (107 - 1 - _wakeup.NAME_MAX))


# ---------------------------------------------------------------------- topics

def _topic_waiter_process(path, topic, ready, out_path):
    s = SqliteStorage(path, 'test')
    assert s.wait_for_change(0, topic) is True and last_wake(s) == 'bound'
    ready.set()
    outcomes = []
    for _ in range(200):
        woke = s.wait_for_change(30, topic)
        outcomes.append('%s:%s' % (woke, last_wake(s)))
        if last_wake(s) == 'notify' or not woke:
            break
    s.close()
    with open(out_path, 'w') as f:
        f.write('\n'.join(outcomes))


@pytest.mark.subprocess
@pytest.mark.parametrize('topic, write', [('queue', 'enqueue'), ('data', 'put_data'),
                                          ('schedule', 'add_to_schedule')])
def test_topic_waiter_in_another_process_is_woken_by_its_topic(db_path, tmp_path, topic, write):
    s = SqliteStorage(db_path, 'test')
    ctx = multiprocessing.get_context('spawn')
    ready = ctx.Event()
    out = str(tmp_path / 'outcomes')
    proc = ctx.Process(target=_topic_waiter_process, args=(db_path, topic, ready, out),
                       daemon=True)
    proc.start()
    try:
        assert ready.wait(JOIN)
        n = iter(range(10**6))
        do = {'enqueue': lambda: s.enqueue(b'job'),
              'put_data': lambda: s.put_data('r%d' % next(n), b'r', is_result=True),
              'add_to_schedule': lambda: s.add_to_schedule(b'later', 1e9)}[write]
        _keep_writing(do, lambda: not proc.is_alive())
        proc.join(JOIN)
        assert proc.exitcode == 0
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        s.close()
    with open(out) as f:
        assert f.read().split('\n') == ['True:notify']


def test_topic_sockets_are_named_by_topic_and_one_per_thread_and_topic(db_path):
    s = SqliteStorage(db_path, 'test')
    for topic in ('queue', 'schedule', 'data', None):
        s.wait_for_change(0, topic)
        s.wait_for_change(0, topic)
    names = sorted(os.path.basename(p) for p in s._wake.socket_paths())
    assert len(names) == 4
    suffixes = sorted((n.rsplit('-', 1)[1] for n in names), key=lambda x: (len(x), x))
    assert suffixes[:3] == ['d.sock', 'q.sock', 's.sock']
    assert len(suffixes[3]) == 8 + len('.sock')  # the random part: no topic
    assert sorted(_wakeup._topic_of(n) for n in names if _wakeup._topic_of(n)) == ['d', 'q', 's']
    s.close()


@pytest.fixture
def topic_listeners(db_path):
    """One helper thread bound for every topic and for none: ``counts()`` drains them all from
    that thread and returns ``{topic: pending datagrams}``."""
    channel = _wakeup.for_file(db_path)
    pool = concurrent.futures.ThreadPoolExecutor(1)
    topics = ('q', 's', 'd', None)
    assert all(pool.submit(channel.listen, t).result(JOIN) for t in topics)
    yield lambda: {t: pool.submit(channel.drain, t).result(JOIN) for t in topics}
    pool.shutdown()
    channel.close()


def test_each_write_notifies_only_its_topics(db_path, topic_listeners):
    s = SqliteStorage(db_path, 'test')
    counts = topic_listeners
    s.enqueue(b'a')
    assert counts() == {'q': 1, 's': 0, 'd': 0, None: 1}
    claim = s.dequeue()  # a claim wakes nobody
    assert counts() == {'q': 0, 's': 0, 'd': 0, None: 0}
    assert s.release(claim.receipt)
    assert counts() == {'q': 1, 's': 0, 'd': 0, None: 1}
    s.ack(s.dequeue().receipt)
    assert counts() == {'q': 0, 's': 0, 'd': 0, None: 1}
    s.put_data('k', b'v', is_result=True)
    assert counts() == {'q': 0, 's': 0, 'd': 1, None: 1}
    s.add_to_schedule(b'later', 10.0)
    assert counts() == {'q': 0, 's': 1, 'd': 0, None: 1}
    s.read_schedule(20.0)
    assert counts() == {'q': 0, 's': 0, 'd': 0, None: 1}
    with s.transaction():  # one datagram per topic group, after the outer commit
        s.enqueue(b'x')
        s.enqueue(b'y')
        s.put_data('r', b'v')
        assert counts() == {'q': 0, 's': 0, 'd': 0, None: 0}
    assert counts() == {'q': 1, 's': 0, 'd': 1, None: 1}
    s.release((10**9, 'nobody', 1))  # changes nothing: wakes nobody
    assert counts() == {'q': 0, 's': 0, 'd': 0, None: 0}
    s.close()


def test_a_rolled_back_savepoint_does_not_wake_its_topics(db_path, topic_listeners):
    s = SqliteStorage(db_path, 'test')
    with s.transaction():
        s.put_data('k', b'v')
        with pytest.raises(ZeroDivisionError):
            with s.transaction():
                s.enqueue(b'undone')
                1 / 0
    assert topic_listeners() == {'q': 0, 's': 0, 'd': 1, None: 1}
    assert s.queue_size() == 0
    s.close()


def test_an_idle_queue_waiter_is_not_woken_by_acks_and_results(db_path):
    s = SqliteStorage(db_path, 'test')
    writer = SqliteStorage(db_path, 'test')
    pool = concurrent.futures.ThreadPoolExecutor(1)  # a writer never wakes its own thread
    in_writer = lambda fn, *args: pool.submit(fn, *args).result(JOIN)  # noqa: E731
    assert s.wait_for_change(0, 'queue') is True  # binds
    in_writer(writer.enqueue, b'a')
    assert s.wait_for_change(JOIN, 'queue') is True and last_wake(s) == 'notify'
    claim = in_writer(writer.dequeue)
    in_writer(writer.put_data, 'result', b'r', True)
    in_writer(writer.ack, claim.receipt)
    assert s.wait_for_change(0.05, 'queue') is False and last_wake(s) == 'timeout'
    pool.shutdown()
    writer.close()
    s.close()


def test_a_notification_pending_before_the_wait_is_not_lost(db_path):
    s = SqliteStorage(db_path, 'test')
    writer = SqliteStorage(db_path, 'test')
    assert s.wait_for_change(0, 'data') is True
    t = threading.Thread(target=writer.put_data, args=('k', b'v'))
    t.start()
    t.join(JOIN)  # committed and notified while this thread was not waiting
    assert s._wake.listening('d')
    assert s.wait_for_change(JOIN, 'data') is True and last_wake(s) == 'notify'
    assert s.wait_for_change(0, 'data') is False
    writer.close()
    s.close()


def test_topic_waits_poll_without_a_usable_directory(db_path, monkeypatch):
    def refuse(directory):
        raise PermissionError(13, 'Permission denied', directory)

    monkeypatch.setattr(_wakeup, 'make_private_dir', refuse)
    s = SqliteStorage(db_path, 'test')
    writer = SqliteStorage(db_path, 'test')
    assert s.wait_for_change(0.01, 'queue') is False  # nothing to bind: polls from the start
    writer.put_data('k', b'v')  # polling mode: a topic wait may wake for any change
    assert s.wait_for_change(10, 'queue') is True and last_wake(s) == 'poll'
    assert s.wait_for_change(0.01, 'queue') is False
    writer.close()
    s.close()


def test_channel_notify_filters_by_topic(short_dir):
    a = _wakeup.WakeupChannel(os.path.join(short_dir, 'ch'))
    b = _wakeup.WakeupChannel(os.path.join(short_dir, 'ch'))
    pool = concurrent.futures.ThreadPoolExecutor(1)
    in_a = lambda fn, *args: pool.submit(fn, *args).result(JOIN)  # noqa: E731
    assert in_a(a.listen, 'q') and in_a(a.listen, 'd')
    assert b.notify(['d']) == 1
    assert in_a(a.wait, 0, 'q') is False
    assert in_a(a.wait, 0, 'd') is True
    assert b.notify() == 2  # no topics given: everybody
    assert in_a(a.drain, 'q') == 1 and in_a(a.drain, 'd') == 1
    assert b.notify([]) == 0
    with pytest.raises(ValueError):
        in_a(a.listen, 'x')
    pool.shutdown()
    a.close()
    b.close()


def test_a_notification_carries_its_rank_to_poll_rank(short_dir):
    """Issue 17: a producer tells busy workers the priority it made ready; poll_rank returns
    the highest one since the last call without blocking, a wait forgets them."""
    a = _wakeup.WakeupChannel(os.path.join(short_dir, 'ch'))
    b = _wakeup.WakeupChannel(os.path.join(short_dir, 'ch'))
    pool = concurrent.futures.ThreadPoolExecutor(1)
    in_a = lambda fn, *args: pool.submit(fn, *args).result(JOIN)  # noqa: E731
    assert in_a(a.listen, 'q')
    poll_rank = in_a(a.rank_poller, 'q')
    assert in_a(poll_rank) is None and in_a(a.poll_rank, 'q') is None  # nothing sent
    assert b.notify(['q'], rank=3) == 1 and b.notify(['q'], rank=-7) == 1
    assert b.notify(['q'], rank=2 ** 63 - 1) == 1 and b.notify(['q'], rank=5) == 1
    assert in_a(poll_rank) == 2 ** 63 - 1  # the highest
    assert in_a(poll_rank) is None
    assert b.notify(['q']) == 1  # no rank
    assert in_a(a.poll_rank, 'q') == _wakeup.NO_RANK
    assert b.notify(['q'], rank=9) == 1
    assert in_a(a.wait, JOIN, 'q') is True  # a wait drains it and forgets the rank
    assert in_a(poll_rank) is None
    assert in_a(a.take_messages, 'q') == []  # a ranked notification is not a message
    assert in_a(a.rank_poller, 'd') is None  # not bound
    pool.shutdown()
    a.close()
    b.close()


def test_a_wait_lasts_its_whole_timeout(short_dir):
    """The fraction of a millisecond a wait's poll cannot express is slept (the scheduler
    waits for an eta this way): the wait lasts at least its timeout."""
    a = _wakeup.WakeupChannel(os.path.join(short_dir, 'ch'))
    for timeout in (0.0004, 0.0015, 0.0101):
        start = time.monotonic()
        assert a.wait(timeout, 'q') is False
        assert time.monotonic() - start >= timeout
    a.close()


def test_claim_outranking_claims_only_what_outranks_after_a_ranked_wake_up(db_path):
    """A busy worker's check before each buffered task: nothing (one poll) until a producer
    says it made a higher priority ready; then only the messages above its priority."""
    worker = SqliteStorage(db_path, 'test')
    producer = SqliteStorage(db_path, 'test')
    pool = concurrent.futures.ThreadPoolExecutor(1)  # the producer's thread (never notified)
    produce = lambda fn, *args: pool.submit(fn, *args).result(JOIN)  # noqa: E731
    try:
        assert worker.claim_outranking(0, 10) == []  # outside a worker session
        with worker.worker_session():
            produce(producer.enqueue_many, [(b'low-%d' % i, 0) for i in range(4)])
            held = worker.dequeue_many(2)
            assert [c.data for c in held] == [b'low-0', b'low-1']
            assert worker.claim_outranking(0, 10) == []  # the batch enqueue said rank 0
            produce(producer.enqueue, b'same', 0)
            assert worker.claim_outranking(0, 10) == []
            produce(producer.enqueue, b'urgent', 5)
            produce(producer.enqueue, b'higher', 7)
            claims = worker.claim_outranking(5, 10)  # told 7: above the buffered 5
            assert [(c.data, c.priority, c.started) for c in claims] == [(b'higher', 7, False)]
            assert worker.claim_outranking(0, 10) == []  # told nothing since
            produce(producer.enqueue_many, [(b'mid', 3), (b'low-x', 0)])
            claims = worker.claim_outranking(0, 10)
            assert sorted(c.data for c in claims) == [b'mid', b'urgent']
            for claim in held + claims:
                assert worker.ack(claim.receipt)
        assert producer.queue_size() == 4  # low-2, low-3, same, low-x
    finally:
        produce(producer.close)
        pool.shutdown()
        worker.close()
