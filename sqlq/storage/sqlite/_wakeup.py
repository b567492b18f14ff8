"""Local wake-up notifications between processes that share one storage file.

Standard library only; knows nothing about SQLite. A :class:`WakeupChannel` is a directory
(mode 0700) holding one ``AF_UNIX``/``SOCK_DGRAM`` socket per *waiting* thread and *topic*,
named ``<pid>-<thread ident>-<random>.sock`` (no topic: woken by every notification) or
``<pid>-<thread ident>-<random>-<topic>.sock`` (a one-letter topic, see :data:`TOPICS`: woken
only by notifications of that topic):

* a waiting thread binds its socket lazily (:meth:`WakeupChannel.listen`, also done by
  :meth:`~WakeupChannel.wait`), then blocks in ``poll`` on it. Datagrams sent while it is not
  blocked stay queued on the socket: the next wait returns at once;
* a writer, after it committed, calls :meth:`WakeupChannel.notify` with the topics its
  transaction touched: one non-blocking 1-byte datagram to every socket in the directory whose
  topic is one of them (and to every socket without a topic), but its own thread's. A socket
  nobody is bound to
  any more (its process died) is unlinked; a full one (``EAGAIN``/``ENOBUFS``) already has
  unread wake-ups and is skipped. The directory listing is cached and refreshed only when the
  directory's mtime changes, so a commit costs one ``os.stat`` when nothing changed. A writer
  never creates the directory (the first waiter does): with nobody listening, a commit costs
  an ``access`` test per candidate directory.

A notification may carry a *rank* (``notify(..., rank=r)``: a 9-byte datagram, ``b'R'`` and
a signed 64-bit integer; SQLite storage sends the priority of the message that became ready).
It wakes the thread like any notification; the highest rank received since the last call is
returned by :meth:`WakeupChannel.poll_rank`, which a busy thread calls without blocking (a
worker holding claims of a lower priority). A wait forgets the ranks it drained.

Any other datagram longer than one byte is a *message* (:meth:`WakeupChannel.send`): it wakes the
thread like a notification and is kept, in order, for :meth:`WakeupChannel.take_messages`.
SQLite storage hands a task to an idle worker this way. Messages are delivered at most once
and may be lost with their socket: their sender must keep the truth elsewhere.

Notifications are an accelerator, never a guarantee: a caller must still re-check its data
after a timeout. If no usable directory exists (path too long for ``AF_UNIX``, directory not
creatable, platform without ``AF_UNIX``, or ``SQLQ_NO_WAKEUP=1``),
:attr:`WakeupChannel.available` is ``False``, :meth:`~WakeupChannel.listen` returns ``False``
and the caller polls instead.

The channel is fork-aware: a child never uses, nor unlinks, the sockets it inherited; it binds
its own on its first wait.
"""
from __future__ import annotations

import errno
import logging
import os
import secrets
import select
import socket
import stat
import struct
import threading
import time
import weakref
from typing import Any, Callable, Iterable, NamedTuple, Optional, Sequence

from sqlq.storage.sqlite._wakeup_dir import (  # noqa: F401 - the channel's names, re-exported
    NAME_MAX,
    SUFFIX,
    SUN_PATH_MAX,
    directories_for,
    fits,
    make_private_dir,
    owned,
)

__all__ = ['WakeupChannel', 'for_file', 'directories_for', 'TOPICS']

logger = logging.getLogger(__name__)

#: Topic codes: the last letter of a topic socket's name (``...-q.sock``). ``'q'``: a message
#: became ready; ``'s'``: a message was scheduled; ``'d'``: key/value data (results, locks...).
TOPICS = frozenset('qsd')
#: A listing of the directory taken less than this long (ns) after the directory's mtime may
#: miss an entry added within the same coarse filesystem-timestamp tick: it is refreshed again.
_MTIME_SLACK_NS = 50_000_000

#: ``SQLQ_NO_WAKEUP=1`` turns the channel off (as on a platform without ``AF_UNIX``
#: datagrams): waits poll instead. Read when a channel first resolves its directory.
DISABLE_ENV = 'SQLQ_NO_WAKEUP'

#: Longest message (:meth:`WakeupChannel.send`) a socket receives whole (bytes).
MESSAGE_MAX = 65536
#: A ranked notification: b'R' and the rank (see :meth:`WakeupChannel.poll_rank`).
_RANKED = struct.Struct('<cq')
#: What :meth:`WakeupChannel.poll_rank` returns for notifications without a rank.
NO_RANK = -(2 ** 63)
_STALE = (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK, errno.EPROTOTYPE)
_FULL = (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS)


def for_file(path: str) -> 'WakeupChannel':
    """The channel of the file at ``path`` (see :func:`directories_for`)."""
    first, *rest = directories_for(path)
    return WakeupChannel(first, fallbacks=rest)


class Listing(NamedTuple):
    """The sockets of a wake-up directory at one moment."""

    #: ``(file name, path, topic code or None)`` of each socket, sorted by name.
    targets: tuple[tuple[str, str, Optional[str]], ...]
    #: The topic codes present (``None`` for sockets without a topic).
    topics: frozenset[Optional[str]]


_NO_LISTING = Listing((), frozenset())


class _Listener:
    """One thread's bound socket. Its finalizer closes the socket and, in the process that
    bound it, unlinks the file (and the directory, if that was its last socket); it runs at
    :meth:`WakeupChannel.close`, when the thread ends (its thread-local slot is dropped), when
    the channel is collected, or at exit."""

    __slots__ = ('sock', 'path', 'pid', 'topic', 'poller', 'finalizer', 'inbox', 'buffer',
                 'rank', '__weakref__')

    def __init__(self, sock: socket.socket, path: str, pid: int,
                 topic: Optional[str] = None) -> None:
        self.sock = sock
        self.topic = topic
        self.path = path
        self.pid = pid
        self.poller: Any = None
        self.inbox: list[bytes] = []  # messages received, not yet taken
        self.buffer = bytearray(MESSAGE_MAX)
        self.rank: Optional[int] = None  # highest rank drained since the last poll_rank
        if hasattr(select, 'poll'):
            self.poller = select.poll()
            self.poller.register(sock.fileno(), select.POLLIN)
        self.finalizer = weakref.finalize(self, _release, sock, path, pid)


def _release(sock: socket.socket, path: str, pid: int) -> None:
    try:
        sock.close()
    except OSError:
        pass
    if os.getpid() == pid:  # never unlink a parent's socket from a forked child
        try:
            os.unlink(path)
            # The last listener out removes the directory (it fails while others listen).
            os.rmdir(os.path.dirname(path))
        except OSError:
            pass


class WakeupChannel:
    """Wake-ups through a directory of datagram sockets; see the module docstring.

    ``directory`` is tried first, then each of ``fallbacks``: the first one that fits the
    ``AF_UNIX`` path limit and can be created (or is ours already) is used by this process for
    the life of the channel. Thread-safe. After :meth:`close`, :meth:`notify` does nothing
    and :meth:`listen` returns ``False``.
    """

    def __init__(self, directory: str, fallbacks: Sequence[str] = ()) -> None:
        self.candidates = [os.fspath(directory)] + [os.fspath(d) for d in fallbacks]
        self._fitting = [d for d in self.candidates if fits(d)]
        self._lock = threading.Lock()
        self._resolved = False
        self._directory: Optional[str] = None
        self._closed = False
        self._reset(os.getpid())

    def __repr__(self) -> str:
        return '<WakeupChannel %r>' % (self._directory if self._resolved else self.candidates[0])

    def _reset(self, pid: int) -> None:
        """(Re)initialise the per-process state: at creation and in a forked child."""
        self._pid = pid
        self._local = threading.local()
        self._listeners: 'weakref.WeakSet[_Listener]' = weakref.WeakSet()
        self._sender: Optional[socket.socket] = None
        # (directory, its mtime_ns, listing is provisional, listing)
        self._cache: tuple[str, int, bool, Listing] = ('', -1, True, _NO_LISTING)

    def _check_pid(self) -> None:
        pid = os.getpid()
        if pid != self._pid:
            with self._lock:
                if pid != self._pid:
                    # Inherited sockets belong to the parent: close our copies (so that a dead
                    # parent's sockets are seen as stale), never unlink them.
                    for listener in list(self._listeners):
                        listener.finalizer()
                    sender = self._sender
                    self._reset(pid)
                    if sender is not None:
                        sender.close()

    # ------------------------------------------------------------------ directory

    @property
    def directory(self) -> Optional[str]:
        """The directory in use, or ``None`` if none is usable (resolved on first access)."""
        if not self._resolved:
            with self._lock:
                if not self._resolved:
                    self._directory = self._resolve()
                    self._resolved = True
        return self._directory

    @property
    def available(self) -> bool:
        return not self._closed and self.directory is not None

    def _resolve(self) -> Optional[str]:
        if not hasattr(socket, 'AF_UNIX'):
            logger.debug('no AF_UNIX sockets on this platform: waits poll instead')
            return None
        if os.environ.get(DISABLE_ENV) == '1':
            logger.debug('%s=1: waits poll instead', DISABLE_ENV)
            return None
        problems = []
        for directory in self.candidates:
            if not fits(directory):
                problems.append('%r: too long for an AF_UNIX socket path' % directory)
                continue
            try:
                make_private_dir(directory)
            except OSError as exc:
                problems.append('%r: %s' % (directory, exc))
                continue
            return directory
        logger.debug('no usable wake-up directory (%s): waits poll instead',
                     '; '.join(problems))
        return None

    # ------------------------------------------------------------------ writers

    def notify(self, topics: Optional[Iterable[str]] = None, untopical: bool = True,
               listing: Optional['Listing'] = None, rank: Optional[int] = None) -> int:
        """Wake the threads waiting on this channel, except the calling thread.

        ``topics``: codes (see :data:`TOPICS`) of what the writer changed; sockets of other
        topics are skipped, sockets without a topic are woken unless ``untopical`` is False.
        ``None``: every socket.
        ``listing``: a :meth:`listing` taken by the caller since its last change of state that
        the woken threads must see (saves a ``stat``). ``rank``: carried to the threads'
        :meth:`poll_rank` (a signed 64-bit integer).
        Never blocks and never raises for a notification problem. Returns how many sockets
        were sent a datagram.
        """
        targets = (listing or self.listing()).targets
        if not targets:
            return 0
        wanted = None if topics is None else frozenset(topics)
        own = '%d-%d-' % (self._pid, threading.get_ident())
        sender = self._sender
        if sender is None:
            sender = self._new_sender()
            if sender is None:
                return 0
        sent = 0
        datagram = b'!' if rank is None else _RANKED.pack(b'R', rank)
        for name, path, topic in targets:
            if name.startswith(own):
                continue
            if topic is None:
                if not untopical:
                    continue
            elif wanted is not None and topic not in wanted:
                continue
            try:
                sender.sendto(datagram, path)
                sent += 1
            except OSError as exc:
                if exc.errno not in _FULL:  # full: it has unread wake-ups already
                    _send_failed(path, exc)
        return sent

    def send(self, path: str, message: bytes) -> bool:
        """Send ``message`` (more than one byte, at most :data:`MESSAGE_MAX`) to the socket
        at ``path`` without blocking; ``False`` if it was not delivered (nobody bound to it --
        the stale file is then removed --, socket full, channel closed)."""
        if self._closed or len(message) < 2:
            return False
        self._check_pid()
        sender = self._sender or self._new_sender()
        if sender is None:
            return False
        try:
            sender.sendto(message, path)
            return True
        except OSError as exc:
            _send_failed(path, exc)
            return False

    def listing(self) -> 'Listing':
        """The sockets in the directory: a cached listing, refreshed when the directory
        changed (one ``os.stat`` while it is unchanged)."""
        if self._closed:
            return _NO_LISTING
        self._check_pid()
        if self._resolved:  # this process listens too: where its waiters are
            directory = self._directory
            if directory is None:
                return _NO_LISTING
            try:
                mtime = os.stat(directory).st_mtime_ns
            except OSError:
                return _NO_LISTING
        else:  # a writer never creates the directory: with nobody listening there is none
            found = self._find()
            if found is None:
                return _NO_LISTING
            directory, mtime = found
        cached_directory, cached_mtime, provisional, listing = self._cache
        if mtime != cached_mtime or provisional or directory != cached_directory:
            listing = self._refresh(directory, mtime)
        return listing

    def _find(self) -> Optional[tuple[str, int]]:
        """Where waiters (of other processes) listen, without creating anything: the first
        candidate that fits and is an existing directory of ours -- a waiter uses the first
        candidate it can create, and would skip the others. ``(directory, its mtime_ns)``, or
        None if there is none."""
        for directory in self._fitting:
            # access() answers "missing" without an exception (the common case: no consumer).
            if not os.access(directory, os.F_OK):
                continue
            try:
                st = os.lstat(directory)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) and owned(st):
                return directory, st.st_mtime_ns
        return None

    def _refresh(self, directory: str, mtime: int) -> Listing:
        listed_at = time.time_ns()
        try:
            names = os.listdir(directory)
        except OSError:
            names = []
        targets = tuple((name, os.path.join(directory, name), _topic_of(name))
                        for name in sorted(names) if name.endswith(SUFFIX))
        listing = Listing(targets, frozenset(topic for _, _, topic in targets))
        self._cache = (directory, mtime, listed_at - mtime < _MTIME_SLACK_NS, listing)
        return listing

    def _new_sender(self) -> Optional[socket.socket]:
        with self._lock:
            if self._sender is None:
                try:
                    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    sender.setblocking(False)
                except OSError as exc:
                    logger.debug('cannot create a wake-up sender socket: %s', exc)
                    return None
                self._sender = sender
            return self._sender

    # ------------------------------------------------------------------ waiters

    def _bound(self, topic: Optional[str]) -> Optional[_Listener]:
        """This thread's socket for ``topic`` if it is bound already (never binds)."""
        self._check_pid()
        listeners = self._local.__dict__.get('listeners')
        return None if listeners is None else listeners.get(topic)

    def _listener(self, topic: Optional[str] = None) -> Optional[_Listener]:
        """This thread's bound socket for ``topic``, bound on first use; ``None`` if
        unavailable."""
        listener = self._bound(topic)
        if listener is not None:
            return listener
        if topic is not None and topic not in TOPICS:
            raise ValueError('unknown wake-up topic %r' % (topic,))
        if self._local.__dict__.get('failed') or self._closed:
            return None
        directory = self.directory
        if directory is None:
            return None
        pid = self._pid
        path = os.path.join(directory, '%d-%d-%s%s%s' % (
            pid, threading.get_ident(), secrets.token_hex(4),
            '' if topic is None else '-' + topic, SUFFIX))
        sock = None
        try:
            if len(os.fsencode(path)) > SUN_PATH_MAX:
                raise OSError(errno.ENAMETOOLONG, 'socket path too long', path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setblocking(False)
            for attempt in range(3):
                try:
                    sock.bind(path)
                    break
                except FileNotFoundError:
                    if attempt == 2:
                        raise
                    make_private_dir(directory)  # removed by a closing channel meanwhile
        except OSError as exc:
            if sock is not None:
                sock.close()
            self._local.failed = True  # this thread polls from now on
            logger.debug('cannot bind a wake-up socket at %r: %s: this thread polls', path, exc)
            return None
        listener = _Listener(sock, path, pid, topic)
        with self._lock:
            if self._closed:
                listener.finalizer()
                return None
            self._listeners.add(listener)
        listeners = self._local.__dict__.get('listeners')
        if listeners is None:
            listeners = self._local.listeners = {}
        listeners[topic] = listener
        return listener

    def socket_path(self, topic: Optional[str] = None) -> Optional[str]:
        """Path of the calling thread's socket for ``topic`` if it is bound, else ``None``."""
        listener = self._bound(topic)
        return None if listener is None else listener.path

    def take_messages(self, topic: Optional[str] = None) -> list[bytes]:
        """The messages the calling thread's ``topic`` socket received (during its waits and
        drains) since the last call, oldest first."""
        listener = self._bound(topic)
        if listener is None or not listener.inbox:
            return []
        messages, listener.inbox = listener.inbox, []
        return messages

    def listening(self, topic: Optional[str] = None) -> bool:
        """Whether the calling thread's socket for ``topic`` is bound already."""
        return self._bound(topic) is not None

    def listen(self, topic: Optional[str] = None) -> bool:
        """Make sure the calling thread's socket for ``topic`` is bound (wake-ups sent from
        now on are kept for its next :meth:`wait`). ``False`` if notifications are
        unavailable."""
        return self._listener(topic) is not None

    def poll_rank(self, topic: Optional[str] = None) -> Optional[int]:
        """Without blocking: ``None`` if the calling thread's ``topic`` socket received
        nothing since the last call (or last wait); else drain it and return the highest rank
        received (:data:`NO_RANK` if no notification carried one)."""
        listener = self._bound(topic)
        if listener is None:
            return None
        poller = listener.poller
        if poller is not None and not poller.poll(0):
            rank, listener.rank = listener.rank, None
            return rank
        if not _drain(listener) and listener.rank is None:
            return None
        rank, listener.rank = listener.rank, None
        return NO_RANK if rank is None else rank

    def rank_poller(self, topic: Optional[str] = None) -> Optional[Callable[[], Optional[int]]]:
        """:meth:`poll_rank` of the calling thread's bound ``topic`` socket as a function of
        no arguments, for a thread that calls it often (a busy worker: before each task); only
        in the thread and process that called this, while the socket stays bound. ``None`` if
        the socket is not bound."""
        listener = self._bound(topic)
        if listener is None or listener.poller is None:
            return None
        poll = listener.poller.poll

        def poll_rank() -> Optional[int]:
            if not poll(0):
                rank = listener.rank
                if rank is None:
                    return None
            elif not _drain(listener) and listener.rank is None:
                return None
            rank, listener.rank = listener.rank, None
            return NO_RANK if rank is None else rank

        return poll_rank

    def drain(self, topic: Optional[str] = None) -> int:
        """Discard the calling thread's pending wake-ups for ``topic`` without blocking;
        return how many."""
        listener = self._bound(topic)
        if listener is None or listener.pid != os.getpid():
            return 0
        return _drain(listener)

    def wait(self, timeout: float, topic: Optional[str] = None) -> bool:
        """Block up to ``timeout`` seconds for a wake-up of the calling thread's ``topic``
        socket (binding it first if needed).

        Drains every pending datagram; ``True`` if any arrived (also if they were sent before
        this call but after :meth:`listen`), ``False`` on timeout or if notifications are
        unavailable (after sleeping ``timeout``, so that callers never spin).
        """
        timeout = max(float(timeout), 0.0)
        listener = self._listener(topic)
        if listener is None:
            if timeout:
                time.sleep(timeout)
            return False
        sock = listener.sock
        try:
            if _drain(listener):
                return True
            if listener.poller is not None:
                # poll's unit is the millisecond: whole ones in poll, the rest asleep, so that
                # a waiter for a moment (the scheduler, for an eta) wakes within ~0.1 ms of it.
                deadline = time.monotonic() + timeout
                ready = listener.poller.poll(int(timeout * 1000.0))
                if not ready:
                    rest = deadline - time.monotonic()
                    if rest > 0:
                        time.sleep(rest)
                    ready = listener.poller.poll(0)
            else:  # pragma: no cover - platforms without poll()
                ready = select.select([sock], [], [], timeout)[0]
            return bool(ready) and _drain(listener, ready=True) > 0
        except (OSError, ValueError):  # closed under us (close() from another thread)
            return False
        finally:
            listener.rank = None  # the waiter re-checks its data after any wait

    # ------------------------------------------------------------------ cleanup

    def unlisten(self, topic: Optional[str] = None) -> None:
        """Close and unlink the calling thread's socket for ``topic`` (it stops receiving
        wake-ups; a later wait binds a new one), and remove the directory if that left it
        empty. For a thread that is done waiting in a process that may end without running
        finalizers (``os._exit``)."""
        listener = self._bound(topic)
        if listener is None:
            return
        del self._local.listeners[topic]
        with self._lock:
            self._listeners.discard(listener)
        listener.finalizer()

    def close(self) -> None:
        """Close and unlink every socket this channel bound in this process (the last socket
        of the directory to go removes it). Idempotent."""
        with self._lock:
            self._closed = True
            listeners = list(self._listeners) if self._pid == os.getpid() else []
            self._listeners = weakref.WeakSet()
            sender, self._sender = self._sender, None
        for listener in listeners:
            listener.finalizer()
        if sender is not None and self._pid == os.getpid():
            sender.close()
        self._local = threading.local()

    def socket_paths(self) -> list[str]:
        """Paths of the sockets this channel has bound in this process (for diagnostics)."""
        if self._pid != os.getpid():
            return []
        return sorted(listener.path for listener in list(self._listeners))


def _topic_of(name: str) -> Optional[str]:
    """The topic code of a socket file name, ``None`` for a socket woken by everything."""
    stem = name[:-len(SUFFIX)]
    if len(stem) > 2 and stem[-2] == '-' and stem[-1] in TOPICS:
        return stem[-1]
    return None


def _drain(listener: _Listener, ready: bool = False) -> int:
    """Receive every pending datagram of ``listener``'s socket (``ready``: poll() just said
    one is), keeping messages in its inbox; how many there were."""
    sock, poller = listener.sock, listener.poller
    count = 0
    while count < 4096:  # bounded even if writers keep sending
        # Ask poll() whether one is pending: a recv() on an empty socket would raise, and an
        # exception costs more than the system call (this runs as a woken worker starts).
        if poller is not None and not (ready and not count) and not poller.poll(0):
            return count
        try:
            size = sock.recv_into(listener.buffer)
        except (BlockingIOError, InterruptedError):
            return count
        if size == _RANKED.size and listener.buffer[0] == 0x52:  # b'R': a ranked notification
            rank = _RANKED.unpack_from(listener.buffer)[1]
            if listener.rank is None or rank > listener.rank:
                listener.rank = rank
        elif size > 1:
            listener.inbox.append(bytes(memoryview(listener.buffer)[:size]))
        count += 1
    return count


def _send_failed(path: str, exc: OSError) -> None:
    if exc.errno in _STALE:
        try:  # nobody is bound to it any more: its thread or process is gone
            os.unlink(path)
        except OSError:
            pass
    elif exc.errno not in _FULL:
        logger.debug('wake-up of %r failed: %s', path, exc)
