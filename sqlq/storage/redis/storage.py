"""Storage on a Redis server, through redis-py (the only sqlq package that imports redis).

Producers and consumers on several hosts share one queue by pointing at the same server.

Atomicity
---------
Every operation is one run of one Lua script (:mod:`sqlq.storage.redis._scripts`): one round
trip, and Redis runs a script atomically, so no step can lose or duplicate a message between
two commands. On Redis 7 and later the script is a function library, loaded on first use (and
again if the server lost it) and called with ``FCALL``, so its helpers are not rebuilt on every
call; on older servers, or for a user not permitted functions, it is loaded once and called
with ``EVALSHA``.

:meth:`RedisStorage.transaction` buffers the writes made in its block (in this thread) and
applies them, at the end of the outermost block, in one script run -- all of them or none;
nested blocks are savepoints of the buffer. Reads made inside the block that decide what the
block does are answered from the block's own writes when it made them (a claim it took, a key
it wrote) and otherwise from the server, and each such read of server state becomes a *guard*:
a claim is still held with the receipt's fencing token (``ack``/``bury``/``release``), a key
still holds the value read (``put_if_empty``, ``incr``, ``pop_data``, ``peek_data``...), a
scheduled message is still there (``read_schedule``), a ready message is still ready
(``dequeue``). The script checks every guard before it writes anything; if one no longer holds,
nothing is applied and the commit raises :class:`~sqlq.exceptions.TransactionConflict` (for
example: the task's claim was taken over by dead-owner recovery while its outcome was being
committed, or two consumers fired the same periodic task in the same instant). So a stale
claim rolls the outcome back, and no one ever sees part of a block. Reads inside a block that
only report (``queue_size``, listings, ``stats``) show the committed state, not the block's
buffered writes.

Fencing: a receipt is ``(message id, owner id, attempts)``; a claim is held while the message
still has that owner and attempt count, so a receipt whose claim was released, recovered or
claimed again is stale for good.

Wake-up
-------
Each script run publishes one message per topic it changed on ``<prefix>:q:{<name>}:wake:<c>``
(``q`` ready messages, ``s`` schedule, ``d`` key/value data, ``x`` any other change).
:meth:`RedisStorage.wait_for_change` keeps, per thread, one pub/sub connection subscribed to
the topics that thread waits for, and blocks in ``poll`` on its socket: a consumer on another
host wakes as soon as the message arrives, and an idle one costs no CPU. Messages that arrive
between two waits stay in the socket and end the next wait at once. After a lost connection the
thread subscribes again and its next wait returns ``True`` at once (wake-ups published
meanwhile are lost, so the caller re-checks).

Hand-off (see :meth:`RedisStorage.worker_session`): a worker thread also subscribes to a
channel of its own, and registers as idle in the claim script that found nothing. A single
enqueue whose script finds nothing ready claims the message for the newest idle worker and
publishes the message itself on that channel, so the worker starts it without a claim script;
``PUBLISH`` reports how many received it, and if nobody did (the worker is gone) the same
script makes the message ordinarily ready. A message lost with a dropped connection is taken
by the worker's next claim, which finds its registration used.

Expiry
------
Key/value ttls are measured with the storage's ``clock`` (like every backend, so a test clock
works): the expiry time is stored beside the key, expired keys are invisible at once and are
deleted by :meth:`~RedisStorage.purge_expired` (the consumer's maintenance). Hosts sharing a
queue should keep their clocks in sync (NTP): lock ttls, result ttls and the heartbeat lease
compare times written by one host with the clock of another.

Errors
------
Every redis-py error becomes a :class:`~sqlq.exceptions.StorageError` naming the server:
:class:`~sqlq.exceptions.StorageUnavailableError` when the server cannot be reached (refused,
reset, timeout, still loading its data), with a specific message when it is out of memory
(``maxmemory``) or read-only (a replica). Connections are made by redis-py's pool; each thread
takes one for its commands and one for its subscription and keeps them (they go back to the
pool when the thread ends or the storage is closed), and speaks to them directly (see
:class:`_Link`). No command is retried automatically (a retried write could apply twice); the
next call after an outage reconnects, and a connection the server closed while it was idle is
replaced before it is used. A dequeue whose reply was lost is repeated with the same request id
on this thread's next dequeue, which returns the same claim instead of orphaning it.

Not supported: Redis Cluster (a script touches keys it does not declare).
"""
from __future__ import annotations

import contextlib
import os
import secrets
import select
import socket
import threading
import time
import weakref
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from sqlq.exceptions import (ConfigurationError, StorageError, StorageUnavailableError,
                             TransactionConflict)
from sqlq.storage.redis._scripts import FUNCTION, LIBRARY, READ_FUNCTION, SCRIPT
from sqlq.storage.base import (EMPTY, TOPICS, Claim, ClaimedItem, DeadLetter, OwnerInfo,
                               Storage, as_bytes, parse_counter, parse_owner_id,
                               unpack_receipt, warn_hand_offs_kept)

try:
    import redis
    from redis import exceptions as _rexc
except ImportError as _exc:  # pragma: no cover - exercised by test_imports with redis hidden
    raise ConfigurationError("RedisQueue needs redis-py: pip install 'sqlq[redis]' (%s)"
                             % _exc) from None

__all__ = ['RedisStorage']

#: wait_for_change topic -> channel suffix.
_TOPIC_CODES = {'queue': 'q', 'schedule': 's', 'data': 'd'}
#: A wait without a topic listens to every channel.
_ALL_CODES = ('q', 's', 'd', 'x')
#: Pub/sub objects inherited across fork: never used nor closed in the child.
_ABANDONED: list[Any] = []
#: An absent script argument (no ttl, no id, unused guard slot).
_NO_ARG = ''
#: The code of a worker's own hand-off channel among a waiter's subscriptions.
_HAND_OFF_CODE = 'h'
#: Largest message handed to an idle worker (bigger ones wait for an ordinary claim).
HAND_OFF_MAX = 1 << 20


def _num(value: float) -> str:
    """A float as the script stores it (exact round trip)."""
    return repr(float(value))


def _opt_float(raw: Any) -> Optional[float]:
    return None if raw in (None, b'') else float(raw)


def _claim(owner: str, msg_id: Any, data: bytes, attempts: Any, recoveries: Any,
           priority: Any) -> Claim:
    attempts = int(attempts)
    claim = Claim(data, (int(msg_id), owner, attempts), attempts, int(recoveries))
    if 'priority' in Claim._fields:  # the FIFO position is the message id
        claim = claim._replace(priority=int(priority), seq=int(msg_id))
    return claim


def _limit(limit: Optional[int]) -> int:
    """The script's count: -1 for everything."""
    return -1 if limit is None else max(int(limit), 0)


class _Tx:
    """The buffered writes and the guards of one thread's open transaction."""

    def __init__(self) -> None:
        self.ops: list[Any] = []
        self.guards: list[Any] = []
        #: key -> (value or None if deleted, expires_at or None) as written by this block.
        self.kv: dict[str, tuple[Optional[bytes], Optional[float]]] = {}
        #: key -> value or None, as read from the server (each read is guarded once).
        self.read: dict[str, Optional[bytes]] = {}
        #: message id -> (owner, attempts, still held) for claims this block took or settled.
        self.claims: dict[int, tuple[str, int, bool]] = {}
        self.savepoints: list[tuple] = []

    def save(self) -> None:
        self.savepoints.append((len(self.ops), len(self.guards), dict(self.kv),
                                dict(self.read), dict(self.claims)))

    def restore(self) -> None:
        n_ops, n_guards, self.kv, self.read, self.claims = self.savepoints.pop()
        del self.ops[n_ops:]
        del self.guards[n_guards:]

    def guard(self, kind: str, a: Any, b: Any = _NO_ARG, c: Any = _NO_ARG) -> None:
        self.guards.append((kind, a, b, c))


def _readable(link: '_Link', sock: Any, timeout: float) -> bool:
    """Whether ``sock`` has data (or EOF) within ``timeout`` seconds (poll: no fd limit)."""
    pending = getattr(sock, 'pending', None)  # TLS: bytes already decrypted
    if pending is not None and pending():
        return True
    if not hasattr(select, 'poll'):  # pragma: no cover - Windows
        return bool(select.select((sock,), (), (), max(timeout, 0.0))[0])
    if link.poller is None:
        link.poller = select.poll()
        link.poller.register(sock, select.POLLIN | select.POLLPRI)
    return bool(link.poller.poll(max(timeout, 0.0) * 1000.0))


class _Push(list):
    """A RESP3 push frame (out-of-band: pub/sub messages, server notifications)."""


class _Link:
    """One thread's own connection, taken from the pool once and kept (not checked out and
    back per call), spoken to directly: commands are packed here and replies parsed here.

    redis-py's per-command path (pool checkout and release, retry wrapper, instrumentation
    hooks, its generic parser) cost more than the round trip itself on a consumer's path
    from a wake-up to a task's start. Nothing is retried: a connection error disconnects and
    is raised; the next call reconnects. Before each command a connection that has data
    waiting (the server closed it, e.g. restarted, while it sat idle) is reconnected, as
    redis-py's pool does on checkout, so an idle thread's first call after a server restart
    still succeeds.
    """

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.pid = os.getpid()
        self.closed = True  # until the pool gave a connection
        try:
            self.conn: Any = pool.get_connection()
        except TypeError:  # redis-py 5: a command name is required
            self.conn = pool.get_connection('EVALSHA')
        self.sock: Any = None
        self.poller: Any = None
        self.buf = bytearray()
        self.pos = 0
        parser = getattr(self.conn, '_parser', None)
        self.parse_error = getattr(parser, 'parse_error', None) or _rexc.ResponseError
        encoder = pool.get_encoder()
        self.encoding, self.errors = encoder.encoding, encoder.encoding_errors
        self._encode = encoder.encode
        self.closed = False

    # -- connection

    def _socket(self) -> Any:
        sock = self.sock
        if sock is not None and self.conn._sock is sock:
            return sock
        self.conn.connect()
        sock = self.sock = self.conn._sock
        if sock is None:  # pragma: no cover - a connection class without a socket
            raise _rexc.ConnectionError('no socket after connect')
        self.buf, self.pos = bytearray(), 0
        self.poller = None
        return sock

    def ready(self) -> Any:
        """The socket, reconnected first if the server closed it (or sent anything) while
        this connection was idle."""
        sock = self._socket()
        try:
            stale = self.pos < len(self.buf) or _readable(self, sock, 0.0)
        except (OSError, ValueError):
            stale = True
        if stale:
            self.disconnect()
            sock = self._socket()
        return sock

    def disconnect(self) -> None:
        self.sock = self.poller = None
        self.buf, self.pos = bytearray(), 0
        with contextlib.suppress(Exception):
            self.conn.disconnect()

    def release(self) -> None:
        """Give the connection back to the pool (once; never from a forked child)."""
        if self.closed:
            return
        self.closed = True
        if os.getpid() != self.pid:
            return
        with contextlib.suppress(Exception):
            self.pool.release(self.conn)

    def __del__(self) -> None:  # a thread ended: its connection goes back to the pool
        with contextlib.suppress(Exception):
            self.release()

    # -- protocol

    def pack(self, args: Sequence[Any]) -> bytes:
        out = [b'*%d\r\n' % len(args)]
        append = out.append
        for a in args:
            if type(a) is str:
                a = a.encode(self.encoding, self.errors)
            elif type(a) is int:
                a = b'%d' % a
            elif not isinstance(a, (bytes, bytearray)):
                a = self._encode(a)  # floats as redis-py writes them; DataError for bool...
            append(b'$%d\r\n' % len(a))
            append(a)
            append(b'\r\n')
        return b''.join(out)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise _rexc.ConnectionError('Connection closed by server.')
        if self.pos:
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk

    def _line(self) -> bytes:
        while True:
            end = self.buf.find(b'\r\n', self.pos)
            if end >= 0:
                line = bytes(self.buf[self.pos:end])
                self.pos = end + 2
                return line
            self._fill()

    def _bulk(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n + 2:
            self._fill()
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n + 2
        return data

    def _value(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b'$':
            n = int(rest)
            return None if n < 0 else self._bulk(n)
        if kind == b':':
            return int(rest)
        if kind in (b'*', b'~', b'>'):
            n = int(rest)
            if n < 0:
                return None
            items = [self._value() for _ in range(n)]
            return _Push(items) if kind == b'>' else items
        if kind == b'+':
            return rest
        if kind in (b'-', b'!'):
            text = self._bulk(int(rest)) if kind == b'!' else rest
            return self.parse_error(text.decode('utf-8', 'replace'))
        if kind == b'_':
            return None
        if kind == b'#':
            return rest == b't'
        if kind == b',':
            return float(rest)
        if kind == b'(':
            return int(rest)
        if kind == b'=':
            return self._bulk(int(rest))[4:]
        if kind == b'%':
            n = int(rest)
            return {self._value(): self._value() for _ in range(n)}
        if kind == b'|':  # attributes, then the value they describe
            n = int(rest)
            for _ in range(2 * n):
                self._value()
            return self._value()
        raise _rexc.InvalidResponse('Protocol Error: %r' % line[:40])

    def read(self, push: bool = False) -> Any:
        """One reply (push frames skipped unless ``push``); a server error is raised."""
        try:
            while True:
                value = self._value()
                if push or type(value) is not _Push:
                    break
        except BaseException as exc:  # incl. an interruption mid-reply: out of step
            failure = self._failed(exc, 'reading from')
            if failure is exc:
                raise
            raise failure from None
        if isinstance(value, _rexc.ResponseError):
            raise value
        return value

    def send(self, payload: bytes, sock: Any = None) -> None:
        try:
            (sock or self.ready()).sendall(payload)
        except BaseException as exc:
            failure = self._failed(exc, 'writing to')
            if failure is exc:
                raise
            raise failure from None

    def _failed(self, exc: BaseException, doing: str) -> BaseException:
        """Disconnect after a failed exchange (the stream is out of step); the error to
        raise, as redis-py would raise it."""
        self.disconnect()
        if isinstance(exc, socket.timeout):
            return _rexc.TimeoutError('Timeout %s the Redis server' % doing)
        if isinstance(exc, OSError):
            return _rexc.ConnectionError('Error while %s the Redis server: %s' % (doing, exc))
        return exc

    def call(self, args: Sequence[Any]) -> Any:
        self.send(self.pack(args))
        return self.read()


class _Subscriber(_Link):
    """A pub/sub connection of this module's own (see :class:`_Link`): SUBSCRIBE, then
    wait for messages with a poll of its socket."""

    def subscribe(self, channels: Sequence[bytes]) -> None:
        self.send(self.pack([b'SUBSCRIBE'] + list(channels)), self._socket())

    def get_message(self, timeout: float) -> Optional[list]:
        """The next frame (``[b'message', channel, data]``, ``[b'subscribe', channel, n]``
        ...), or None if none arrives within ``timeout`` seconds."""
        if self.pos >= len(self.buf):
            sock = self._socket()
            try:
                if not _readable(self, sock, timeout):
                    return None
            except InterruptedError:  # pragma: no cover - PEP 475 retries select
                return None
            except (OSError, ValueError) as exc:
                self.disconnect()
                raise _rexc.ConnectionError('Error while waiting on the Redis server: %s'
                                            % (exc,)) from None
        frame = self.read(push=True)
        return frame if isinstance(frame, list) else None

    def close(self) -> None:
        if os.getpid() == self.pid and not self.closed:
            self.disconnect()  # subscribed: never handed to another user of the pool
        self.release()


class _Waiter:
    """One thread's pub/sub subscription for :meth:`RedisStorage.wait_for_change`."""

    def __init__(self, pubsub: Any) -> None:
        self.pubsub = pubsub
        self.pid = os.getpid()
        self.channels: dict[bytes, str] = {}  # channel -> code
        self.pending: set[str] = set()
        self.messages: list[bytes] = []  # handed to this worker, not yet accepted


class RedisStorage(Storage):
    """Byte-level storage on a Redis server; see :class:`~sqlq.storage.base.Storage` and the
    module documentation for the design.

    Connection: ``url='redis://[:password@]host:port/db'`` (or ``rediss://``, ``unix://``), or
    ``connection_pool=`` (a ``redis.ConnectionPool``; it must not use ``decode_responses``),
    or ``host``/``port``/``db``/``password``. Other keyword arguments go to redis-py's
    connection (``socket_timeout``, ``ssl``...). ``prefix``: first part of every key, so
    several applications can share one database.
    """

    # Every call is one atomic server-side function; a transaction() must also re-read what it
    # depends on to guard its commit, so grouped work is cheaper as separate calls.
    batch_in_transaction = False

    #: Seconds to wait for a subscription's confirmation.
    subscribe_timeout = 5.0

    def __init__(self, name: str = 'sqlq', *, url: Optional[str] = None,
                 connection_pool: Any = None, host: Optional[str] = None,
                 port: Optional[int] = None, db: Optional[int] = None,
                 password: Optional[str] = None, prefix: str = 'sqlq',
                 clock: Callable[[], float] = time.time, **connection_options: Any) -> None:
        super().__init__(name, clock=clock)
        if not isinstance(prefix, str) or not prefix:
            raise ConfigurationError('prefix must be a non-empty string, not %r' % (prefix,))
        given = [what for what, value in (('url', url), ('connection_pool', connection_pool))
                 if value is not None]
        if len(given) > 1 or (given and (host is not None or port is not None)):
            raise ConfigurationError('give RedisQueue one of url=, connection_pool= or '
                                     'host=/port=, not several')
        self._own_pool = connection_pool is None
        if connection_pool is None:
            options = dict(connection_options)
            options.setdefault('socket_connect_timeout', 5.0)
            options.setdefault('socket_timeout', 30.0)
            options.setdefault('health_check_interval', 0)
            if db is not None:
                options['db'] = db
            if password is not None:
                options['password'] = password
            try:
                if url is not None:
                    connection_pool = redis.ConnectionPool.from_url(url, **options)
                else:
                    connection_pool = redis.ConnectionPool(
                        host=host or 'localhost', port=6379 if port is None else int(port),
                        **options)
            except (ValueError, TypeError) as exc:
                raise ConfigurationError('bad Redis connection settings: %s' % exc) from None
        elif connection_options or db is not None or password is not None:
            raise ConfigurationError('connection options (%s) cannot be combined with '
                                     'connection_pool=' % ', '.join(
                                         sorted(connection_options) or ['db/password']))
        if connection_pool.connection_kwargs.get('decode_responses'):
            raise ConfigurationError('RedisQueue stores bytes: its connection pool must not '
                                     'use decode_responses=True')
        self._pool = connection_pool
        self._client = redis.Redis(connection_pool=connection_pool)
        self._script = self._client.register_script(SCRIPT)
        #: Whether this pool's connections can be driven by :class:`_Link` (None: not known).
        self._direct: Optional[bool] = None
        #: Whether the server runs the function library (None: not known yet).
        self._functions: Optional[bool] = None
        self.prefix = prefix
        self._qprefix = '%s:q:{%s}:' % (prefix, name)
        self._gprefix = prefix + ':'
        self._closed = False
        self._reset_local(os.getpid())

    def __repr__(self) -> str:
        return '<RedisStorage %r on %s>' % (self.name, self.address)

    @property
    def address(self) -> str:
        """The server, as ``redis://host:port/db`` (``unix://path`` for a socket)."""
        kw = self._pool.connection_kwargs
        if kw.get('path'):
            return 'unix://%s?db=%s' % (kw['path'], kw.get('db', 0))
        return 'redis://%s:%s/%s' % (kw.get('host', 'localhost'), kw.get('port', 6379),
                                     kw.get('db', 0))

    # ------------------------------------------------------------------ plumbing

    def _reset_local(self, pid: int) -> None:
        self._pid = pid
        self._local = threading.local()
        self._waiters_lock = threading.Lock()
        self._waiters: list[_Waiter] = []
        self._links: Any = weakref.WeakSet()

    def _thread(self) -> Any:
        if self._closed:
            raise StorageError('storage %r on %s is closed' % (self.name, self.address))
        pid = os.getpid()
        if pid != self._pid:  # forked: the parent's connections and transactions are not ours
            _ABANDONED.extend(w.pubsub for w in self._waiters)
            _ABANDONED.extend(self._links)
            self._reset_local(pid)
        return self._local

    def _link(self, local: Any) -> Optional[_Link]:
        """This thread's own connection. None (redis-py's command path, a connection from
        the pool per call) for a ``BlockingConnectionPool`` (its size is a limit: threads
        must not keep connections) or a pool with client-side caching."""
        link = getattr(local, 'link', None)
        if link is None:
            if self._direct is None and (
                    getattr(self._pool, 'cache', None) is not None  # client-side caching
                    or isinstance(self._pool, redis.BlockingConnectionPool)):  # kept small
                self._direct = False
            if self._direct is False:
                return None
            link = _Link(self._pool)
            if self._direct is None:
                self._direct = hasattr(link.conn, '_sock') and hasattr(link.conn, 'connect')
                if not self._direct:
                    link.release()
                    return None
            local.link = link
            with self._waiters_lock:
                self._links.add(link)
        return link

    def _error(self, exc: BaseException, doing: str) -> StorageError:
        where = 'Redis server %s' % self.address
        if isinstance(exc, (_rexc.ConnectionError, _rexc.TimeoutError)):
            return StorageUnavailableError('%s is unreachable while %s: %s: %s'
                                           % (where, doing, type(exc).__name__, exc))
        text = str(exc)
        if isinstance(exc, _rexc.ReadOnlyError) or text.startswith('READONLY'):
            return StorageError('%s is read-only (a replica?) while %s: %s'
                                % (where, doing, text))
        if text.startswith('OOM') or 'maxmemory' in text:
            return StorageError('%s is out of memory (maxmemory reached) while %s: %s'
                                % (where, doing, text))
        return StorageError('%s failed while %s: %s: %s' % (where, doing, type(exc).__name__,
                                                            text))

    def _run(self, guards: Sequence[tuple], ops: Sequence[Any], doing: str,
             read_only: bool = False) -> list:
        """One script run; the results of ``ops`` (a flat list: name, args, name, args...).
        ``read_only``: ``ops`` only read (the function flagged ``no-writes`` may run them)."""
        args: list[Any] = [self._qprefix, self._gprefix, _num(self._clock()), len(guards)]
        for guard in guards:
            args.extend(guard)
        args.extend(ops)
        try:
            link = self._link(self._thread())
            if link is None:
                reply = self._script(args=args)
            else:
                reply = self._call(link, args, read_only)
        except _rexc.RedisError as exc:
            raise self._error(exc, doing) from exc
        if reply[0] == 0:
            kind, a = guards[reply[1] - 1][:2]
            raise TransactionConflict(
                'transaction on queue %r at %s not applied: %s changed since the transaction '
                'read it (another worker or consumer was faster); nothing of it was written'
                % (self.name, self.address, _describe_guard(kind, a)))
        return reply[1:]

    def _call(self, link: _Link, args: list, read_only: bool) -> Any:
        """Run the operations: FCALL of the library's function (loaded on first use, and
        again after the server lost it), or EVALSHA of the script on a server without
        functions (Redis < 7, or FUNCTION/FCALL not permitted)."""
        if self._functions is not False:
            command = ['FCALL', READ_FUNCTION if read_only else FUNCTION, 0]
            command.extend(args)
            try:
                return link.call(command)
            except _rexc.ResponseError as exc:
                if not _function_missing(exc):
                    raise
            if self._load_library(link):
                return link.call(command)
        command = ['EVALSHA', self._script.sha, 0]
        command.extend(args)
        try:
            return link.call(command)
        except _rexc.NoScriptError:  # a restarted or flushed server: load it again
            link.call(['SCRIPT', 'LOAD', SCRIPT])
            return link.call(command)

    def _load_library(self, link: _Link) -> bool:
        """Load the function library; False (and the script from now on) if the server
        cannot: no FUNCTION command, or not permitted."""
        try:
            link.call(['FUNCTION', 'LOAD', LIBRARY])
        except _rexc.ResponseError as exc:
            if 'already exists' not in str(exc):  # loaded meanwhile by another client: fine
                self._functions = False
                return False
        self._functions = True
        return True

    def _one(self, op: str, *args: Any, doing: str = 'writing') -> list:
        return self._run((), (op,) + args, doing)[0]

    def _read(self, op: str, *args: Any) -> list:
        return self._run((), (op,) + args, 'reading', read_only=True)[0]

    def _tx(self) -> Optional[_Tx]:
        return getattr(self._thread(), 'tx', None)

    def _write(self, tx: Optional[_Tx], op: str, *args: Any) -> Optional[list]:
        """Apply one operation now, or buffer it in the open transaction (returns None)."""
        if tx is not None:
            tx.ops.append(op)
            tx.ops.extend(args)
            return None
        return self._one(op, *args)

    def _refuse_in_transaction(self, what: str) -> None:
        if self._tx() is not None:
            raise StorageError('%s() cannot be called inside transaction()' % what)

    # ------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        local = self._thread()
        tx: Optional[_Tx] = getattr(local, 'tx', None)
        if tx is not None:  # nested: a savepoint of the buffer
            tx.save()
            try:
                yield None
            except BaseException:
                tx.restore()
                raise
            tx.savepoints.pop()
            return
        tx = local.tx = _Tx()
        try:
            yield None
        finally:
            local.tx = None
        if tx.ops:
            self._run(tx.guards, tx.ops, 'committing a transaction')

    # ------------------------------------------------------------------ ready queue

    def enqueue(self, data: bytes, priority: int = 0) -> None:
        local = self._thread()
        data = as_bytes(data)
        if getattr(local, 'tx', None) is not None or len(data) > HAND_OFF_MAX:
            self.enqueue_many([(data, priority)])
            return
        # Handed to an idle worker if nothing is ready (see worker_session).
        priority = int(priority)
        self._one('enq1', data, priority, -priority, getattr(local, 'idle_token', None) or
                  _NO_ARG)

    def enqueue_many(self, items: Iterable[tuple[bytes, int]]) -> int:
        args: list[Any] = []
        for data, priority in items:
            data, priority = as_bytes(data), int(priority)
            args.extend((data, priority, -priority))
        if not args:
            return 0
        n = len(args) // 3
        self._write(self._tx(), 'enq', n, *args)
        return n

    def dequeue(self) -> Optional[Claim]:
        claims = self.dequeue_many(1)
        return claims[0] if claims else None

    def dequeue_many(self, limit: int, flag_prefix: Optional[str] = None) -> list[Claim]:
        """Claim up to ``limit`` ready messages in one script run (``flagged`` unchecked)."""
        owner = self.owner_id
        local = self._thread()
        tx = getattr(local, 'tx', None)
        if tx is not None:
            claims = []
            while len(claims) < limit:
                claim = self._dequeue_in_tx(tx, owner)
                if claim is None:
                    break
                claims.append(claim)
            return claims
        if limit < 1:
            return []
        # A request id survives a failed call: if its reply was lost, the retry gets the same
        # claims back instead of leaving them held by this (live) owner forever.
        if local.__dict__.get('handed'):  # published to this worker: already claimed
            claims, local.handed = local.handed, []
            return claims
        request = getattr(local, 'dequeue_request', None) or secrets.token_hex(8)
        local.dequeue_request = request
        session = getattr(local, 'serving', None)
        fresh = channel = _NO_ARG
        if session:
            local.registrations += 1
            fresh, channel = '%s%d' % (session, local.registrations), local.hand_channel
        rows = self._one('deq', owner, request, _NO_ARG, int(limit),
                         getattr(local, 'idle_token', None) or _NO_ARG, fresh, channel,
                         getattr(local, 'done_token', None) or _NO_ARG)
        local.dequeue_request = local.done_token = None
        if rows and rows[-1][0] == b'idle':
            local.idle_token = rows[-1][1].decode()
            return []
        local.idle_token = None
        return [_claim(owner, *row) for row in rows]

    # ------------------------------------------------------------------ hand-off

    @contextlib.contextmanager
    def worker_session(self) -> Iterator[None]:
        """See :meth:`Storage.worker_session`. While the calling thread finds its queue
        empty it is registered as idle (by the claim script that found nothing) with the name
        of a pub/sub channel of its own; a single :meth:`enqueue` outside a transaction that
        finds nothing ready takes the newest registration, claims its message for that worker
        and publishes it on that channel, in one script run. If nobody is subscribed there
        (the worker is gone), the same run makes the message ordinarily ready. A worker whose
        subscription dropped takes what was handed to it at its next claim; the session's end
        releases what it still holds; dead-owner recovery removes a dead process's
        registrations."""
        local = self._thread()
        if getattr(local, 'serving', None):
            yield
            return
        session = secrets.token_hex(6) + '.'
        local.hand_channel = self._qprefix + 'w:' + session
        local.idle_token = local.done_token = None
        local.handed = []
        local.registrations = 0
        local.serving = session
        try:
            # Subscribed before the first check for work: a message enqueued after that check
            # either wakes this thread or is handed to it.
            self._subscribe(self._waiter(local), ('q', _HAND_OFF_CODE))
        except (StorageError, _rexc.RedisError):
            # The server is unreachable: the worker backs off in its loop, and its first wait
            # subscribes (until then a hand-off finds nobody listening: the task stays ready).
            self._drop_waiter(local)
        try:
            yield
        finally:
            local.serving = local.idle_token = local.done_token = None
            local.handed = []
            try:
                self._one('unidle', self.owner_id, session)
            except StorageError as exc:
                warn_hand_offs_kept(exc)

    def _accept_hand_offs(self, local: Any, waiter: _Waiter) -> None:
        """Turn the messages published to this worker into claims to return."""
        messages, waiter.messages = waiter.messages, []
        owner, session = self.owner_id, getattr(local, 'serving', None)
        for message in messages:
            header, _, data = message.partition(b'\n')
            try:
                msg_id, priority, token = header[1:].decode('ascii').split(' ')
            except ValueError:
                continue
            if token == local.idle_token:
                local.idle_token = None
                local.done_token = token
                local.handed.append(_claim(owner, msg_id, data, 1, 0, priority))
            elif session and token.startswith(session):
                # A registration this thread no longer counted on (its claim's reply was
                # lost): the message is still ours unless our claim took it already.
                local.handed.extend(_claim(owner, *row)
                                    for row in self._one('takeh', owner, token))

    def _dequeue_in_tx(self, tx: _Tx, owner: str) -> Optional[Claim]:
        for row in self._read('head', len(tx.claims) + 1):
            msg_id = int(row[0])
            if msg_id in tx.claims:
                continue
            claim = _claim(owner, msg_id, row[1], int(row[2]) + 1, row[3], row[4])
            tx.guard('R', msg_id)
            tx.claims[msg_id] = (owner, claim.attempts, True)
            self._write(tx, 'deq', owner, _NO_ARG, msg_id, 1, _NO_ARG, _NO_ARG, _NO_ARG,
                        _NO_ARG)
            return claim
        return None

    def release_unstarted(self, receipts: Iterable[Any]) -> int:
        """Release several claims that never started, in one run (attempts still count: they
        fence receipts)."""
        unpacked = [unpack_receipt(receipt) for receipt in receipts]
        if self._tx() is not None:
            return sum(self._settle('unstart1', receipt) for receipt in unpacked)
        if not unpacked:
            return 0
        args = [value for receipt in unpacked for value in receipt]
        return int(self._one('unstart', len(unpacked), *args)[0])

    def _settle(self, op: str, receipt: Any, *extra: Any) -> bool:
        msg_id, owner, attempts = unpack_receipt(receipt)
        tx = self._tx()
        if tx is None:
            return bool(self._one(op, msg_id, owner, attempts, *extra)[0])
        known = tx.claims.get(msg_id)
        if known is not None:
            if known != (owner, attempts, True):
                return False
        else:
            state = self._read('claim', msg_id)
            if not state or state[0].decode() != owner or int(state[1]) != attempts:
                return False  # stale for good: fencing tokens only move forward
            tx.guard('C', msg_id, owner, attempts)
        tx.claims[msg_id] = (owner, attempts, False)
        self._write(tx, op, msg_id, owner, attempts, *extra)
        return True

    def ack(self, receipt: Any) -> bool:
        return self._settle('ack', receipt)

    def complete_many(self, items: Sequence[tuple[Any, Optional[str], Optional[bytes],
                                                  Optional[float]]]) -> list[bool]:
        """Ack the claims and store their results in one call (inside a transaction: its
        buffered, guarded path)."""
        if self._tx() is not None:
            return super().complete_many(items)
        if not items:
            return []
        args: list[Any] = []
        for receipt, key, value, ttl in items:
            args.extend(unpack_receipt(receipt))
            args.extend((_NO_ARG, b'', _NO_ARG) if key is None else
                        (key, as_bytes(value if value is not None else b''), self._expires(ttl)))
        return [bool(int(held)) for held in self._one('complete', len(items), *args)]

    def release(self, receipt: Any) -> bool:
        return self._settle('rel', receipt)

    def bury(self, receipt: Any, reason: str) -> bool:
        return self._settle('bury', receipt, str(reason))

    def _counts(self) -> list:
        return self._read('stats')

    def queue_size(self) -> int:
        return int(self._counts()[0])

    def claimed_size(self) -> int:
        return int(self._counts()[1])

    def enqueued_items(self, limit: Optional[int] = None) -> list[bytes]:
        return list(self._read('items', _limit(limit)))

    def claimed_items(self) -> list[ClaimedItem]:
        return [ClaimedItem(int(i), d, o.decode(), float(c), int(a), int(r))
                for i, d, o, c, a, r in self._read('claimed')]

    def flush_queue(self) -> None:
        self._write(self._tx(), 'flushq')

    # ------------------------------------------------------------------ schedule

    def add_to_schedule(self, data: bytes, timestamp: float) -> None:
        self._write(self._tx(), 'sched', _num(timestamp), as_bytes(data))

    def read_schedule(self, timestamp: float) -> list[bytes]:
        tx = self._tx()
        if tx is None:
            return list(self._one('rsched', _num(timestamp)))
        due = self._read('due', _num(timestamp))
        for member, _ in due:
            tx.guard('S', member)
        if due:
            self._write(tx, 'rschedids', len(due), *[member for member, _ in due])
        return [data for _, data in due]

    def next_scheduled_time(self) -> Optional[float]:
        try:
            found = self._client.zrange(self._qprefix + 'sched', 0, 0, withscores=True)
        except _rexc.RedisError as exc:
            raise self._error(exc, 'reading') from exc
        return float(found[0][1]) if found else None

    def scheduled_items(self, limit: Optional[int] = None) -> list[bytes]:
        return list(self._read('schedule', _limit(limit)))

    def schedule_size(self) -> int:
        return int(self._counts()[2])

    def flush_schedule(self) -> None:
        self._write(self._tx(), 'flushs')

    # ------------------------------------------------------------------ key/value

    def _expires(self, ttl: Optional[float]) -> str:
        return _NO_ARG if ttl is None else _num(self._clock() + float(ttl))

    def _tx_get(self, tx: _Tx, key: str) -> Optional[bytes]:
        """The live value of ``key`` as this transaction sees it; guards a server read."""
        if key in tx.kv:
            value, expires = tx.kv[key]
            if value is not None and expires is not None and expires <= self._clock():
                return None
            return value
        if key not in tx.read:
            found = self._read('peek', 1, key)[0]
            tx.read[key] = found[0] if found else None
            tx.guard('K', key, '1' if found else '0', found[0] if found else _NO_ARG)
        return tx.read[key]

    def _tx_set(self, tx: _Tx, key: str, value: Optional[bytes], expires: str) -> None:
        tx.kv[key] = (value, float(expires) if expires else None)

    def put_data(self, key: str, value: bytes, is_result: bool = False,
                 ttl: Optional[float] = None) -> None:
        value, expires = as_bytes(value), self._expires(ttl)
        tx = self._tx()
        if tx is not None:
            self._tx_set(tx, key, value, expires)
        self._write(tx, 'put', key, value, '1' if is_result else '0', expires)

    def peek_data(self, key: str) -> Any:
        tx = self._tx()
        if tx is not None:
            value = self._tx_get(tx, key)
            return EMPTY if value is None else value
        found = self._read('peek', 1, key)[0]
        return found[0] if found else EMPTY

    def peek_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        keys = list(keys)
        if not keys:
            return {}
        tx = self._tx()
        if tx is not None:
            return super().peek_many(keys)
        found = self._read('peek', len(keys), *keys)
        return {key: value[0] for key, value in zip(keys, found) if value}

    def _take(self, key: str, op: str) -> Optional[list]:
        """Run ``pop``/``del`` now, or (in a transaction) predict it: ``[value or None]``."""
        tx = self._tx()
        if tx is None:
            return self._one(op, key)
        value = self._tx_get(tx, key)
        self._tx_set(tx, key, None, _NO_ARG)
        self._write(tx, 'del', key)
        if op == 'del':
            return [int(value is not None)]
        return [] if value is None else [value]

    def pop_data(self, key: str) -> Any:
        found = self._take(key, 'pop')
        return found[0] if found else EMPTY

    def delete_data(self, key: str) -> bool:
        return bool(self._take(key, 'del')[0])

    def has_data_for_key(self, key: str) -> bool:
        return self.peek_data(key) is not EMPTY

    def put_if_empty(self, key: str, value: bytes, ttl: Optional[float] = None) -> bool:
        value, expires = as_bytes(value), self._expires(ttl)
        tx = self._tx()
        if tx is None:
            return bool(self._one('pie', key, value, expires)[0])
        if self._tx_get(tx, key) is not None:
            return False
        self._tx_set(tx, key, value, expires)
        self._write(tx, 'put', key, value, '0', expires)
        return True

    def incr(self, key: str, amount: int = 1, ttl: Optional[float] = None) -> int:
        amount = int(amount)
        expires = self._expires(ttl)
        tx = self._tx()
        if tx is None:
            found = self._one('incr', key, amount, expires)
            if found[0] is None:
                value = self.peek_data(key)
                raise ValueError('key %r does not hold an integer: %r' % (key, value[:40]))
            return int(found[0])
        current = self._tx_get(tx, key)
        if current is None:
            value = amount
            self._tx_set(tx, key, b'%d' % value, expires)
        else:
            value = parse_counter(key, current) + amount
            kept = tx.kv.get(key, (None, None))[1]
            tx.kv[key] = (b'%d' % value, kept)
        self._write(tx, 'incr', key, amount, expires)
        return value

    def delete_prefix(self, prefix: str) -> int:
        tx = self._tx()
        if tx is None:
            return int(self._one('delpfx', prefix)[0])
        # Predicted from the committed keys and this block's writes; not guarded (advisory).
        keys = {k for k in self._read_kv_keys() if k.startswith(prefix)}
        keys |= {k for k in tx.kv if k.startswith(prefix)}
        live = sum(1 for k in keys if self._tx_get(tx, k) is not None)
        for k in keys:
            self._tx_set(tx, k, None, _NO_ARG)
        self._write(tx, 'delpfx', prefix)
        return live

    def _read_kv_keys(self) -> list[str]:
        try:
            return [k.decode() for k in self._client.hkeys(self._qprefix + 'kv')]
        except _rexc.RedisError as exc:
            raise self._error(exc, 'reading') from exc

    def result_store_size(self) -> int:
        return int(self._counts()[3])

    def result_items(self) -> dict[str, bytes]:
        flat = self._read('results')
        return {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}

    def flush_results(self) -> None:
        self._write(self._tx(), 'flushres')

    # ------------------------------------------------------------------ dead letters

    def add_dead_letter(self, data: bytes, reason: str, attempts: int = 0,
                        enqueued_at: Optional[float] = None) -> int:
        args = (as_bytes(data), str(reason), int(attempts),
                _NO_ARG if enqueued_at is None else _num(enqueued_at))
        tx = self._tx()
        if tx is None:
            return int(self._one('dead', _NO_ARG, *args)[0])
        try:  # the id is returned before the commit: take it from the counter now
            dead_id = int(self._client.incr(self._qprefix + 'seq'))
        except _rexc.RedisError as exc:
            raise self._error(exc, 'writing') from exc
        self._write(tx, 'dead', dead_id, *args)
        return dead_id

    def _dead(self, n: int, id: Any = _NO_ARG) -> list[DeadLetter]:
        return [DeadLetter(int(i), d, why.decode(), float(t), int(a), _opt_float(e))
                for i, d, why, t, a, e in self._read('deadlist', n, id)]

    def dead_letters(self, limit: Optional[int] = None) -> list[DeadLetter]:
        return self._dead(_limit(limit))

    def dead_letter(self, id: int) -> Optional[DeadLetter]:
        found = self._dead(1, int(id))
        return found[0] if found else None

    def dead_letter_count(self) -> int:
        return int(self._counts()[6])

    def _dead_args(self, tx: Optional[_Tx], ids: Optional[Iterable[int]]) -> tuple[list, int]:
        """Script arguments selecting dead letters, and (in a transaction) how many exist."""
        if ids is None:
            if tx is None:
                return [-1], 0
            chosen = [d.id for d in self.dead_letters()]
        else:
            chosen = sorted({int(i) for i in ids})
            if tx is None:
                return [len(chosen)] + chosen, 0
            chosen = [i for i in chosen if self.dead_letter(i) is not None]
        for dead_id in chosen:
            tx.guard('D', dead_id)  # type: ignore[union-attr]
        return [len(chosen)] + chosen, len(chosen)

    def requeue_dead_letters(self, ids: Optional[Iterable[int]] = None,
                             priority: int = 0) -> int:
        priority = int(priority)
        tx = self._tx()
        args, predicted = self._dead_args(tx, ids)
        found = self._write(tx, 'requeue', priority, -priority, *args)
        return predicted if found is None else int(found[0])

    def purge_dead_letters(self, ids: Optional[Iterable[int]] = None) -> int:
        tx = self._tx()
        args, predicted = self._dead_args(tx, ids)
        found = self._write(tx, 'purgedead', *args)
        return predicted if found is None else int(found[0])

    # ------------------------------------------------------------------ owners

    def heartbeat(self, ttl_hint: float = 10.0) -> None:
        self._write(self._tx(), 'hb', self.owner_id)

    def owners(self) -> list[OwnerInfo]:
        result = []
        for owner, started, beat in self._read('owners'):
            owner = owner.decode()
            host, pid = parse_owner_id(owner)
            result.append(OwnerInfo(owner, host, pid, _opt_float(started), _opt_float(beat)))
        result.sort(key=lambda o: o.id)
        return result

    def claim_owners(self) -> dict[str, int]:
        flat = self._read('cowners')
        return {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    def release_owner(self, owner_id: str) -> int:
        owner_id = str(owner_id)
        tx = self._tx()
        if tx is None:
            return int(self._one('relown', owner_id)[0])
        count = self.claim_owners().get(owner_id, 0)
        tx.guard('O', owner_id, count)
        self._write(tx, 'relown', owner_id)
        return count

    def forget_owner(self, owner_id: str) -> bool:
        found = self._write(self._tx(), 'forget', str(owner_id))
        return True if found is None else bool(found[0])

    # ------------------------------------------------------------------ upkeep

    def purge_expired(self) -> int:
        self._refuse_in_transaction('purge_expired')
        return int(self._one('purgeexp')[0])

    def maintenance(self) -> dict[str, Any]:
        """:meth:`purge_expired`; Redis needs no other upkeep (``'vacuumed_pages': 0``,
        ``'checkpoint': None``)."""
        self._refuse_in_transaction('maintenance')
        return {'purged': self.purge_expired(), 'vacuumed_pages': 0, 'checkpoint': None}

    def vacuum(self) -> None:
        """Nothing to compact on Redis (it frees memory as keys are deleted)."""
        self._refuse_in_transaction('vacuum')

    def stats(self) -> dict[str, Any]:
        """The counts of every backend; ``db_size`` is the memory the Redis server uses (all
        its data, not only this queue's), ``wal_size`` its append-only file (0 without one)."""
        ready, claimed, scheduled, results, kv_keys, expired, dead = self._counts()
        try:
            memory = self._client.info('memory')
            persistence = self._client.info('persistence')
        except _rexc.RedisError as exc:
            raise self._error(exc, 'reading stats') from exc
        return {
            'ready': int(ready), 'claimed': int(claimed), 'scheduled': int(scheduled),
            'results': int(results), 'kv_keys': int(kv_keys), 'expired_keys': int(expired),
            'dead_letters': int(dead),
            'db_size': int(memory.get('used_memory', 0)),
            'wal_size': int(persistence.get('aof_current_size', 0) or 0),
            'page_size': 0, 'page_count': 0, 'freelist_count': 0,
            'server': self.address,
        }

    # ------------------------------------------------------------------ whole storage

    def flush_all(self) -> None:
        self._write(self._tx(), 'flushall')

    def _waiter(self, local: Any) -> _Waiter:
        waiter = getattr(local, 'waiter', None)
        if waiter is not None and waiter.pubsub.sock is None:
            # Its connection was dropped (a wait interrupted mid-message): subscribe again.
            self._drop_waiter(local)
            waiter = None
        if waiter is None:
            waiter = local.waiter = _Waiter(_Subscriber(self._pool))
            with self._waiters_lock:
                self._waiters.append(waiter)
        return waiter

    def _drop_waiter(self, local: Any) -> None:
        waiter = getattr(local, 'waiter', None)
        local.waiter = None
        if waiter is not None:
            with self._waiters_lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            with contextlib.suppress(Exception):
                waiter.pubsub.close()

    def _subscribe(self, waiter: _Waiter, codes: Sequence[str]) -> None:
        channels = {(self._qprefix + 'wake:' + c).encode(): c for c in codes
                    if c != _HAND_OFF_CODE}
        hand_channel = getattr(self._local, 'hand_channel', None)
        if _HAND_OFF_CODE in codes and hand_channel:
            channels[hand_channel.encode()] = _HAND_OFF_CODE
        waiter.pubsub.subscribe(list(channels))
        waiter.channels.update(channels)
        # Only once the server confirmed does a later publish reach this socket.
        pending = set(channels)
        deadline = time.monotonic() + self.subscribe_timeout
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StorageUnavailableError('Redis server %s did not confirm a subscription '
                                              'within %gs' % (self.address,
                                                              self.subscribe_timeout))
            self._note(waiter, waiter.pubsub.get_message(remaining), pending)

    @staticmethod
    def _note(waiter: _Waiter, frame: Optional[list], confirming: Optional[set] = None
              ) -> Optional[str]:
        """Record a pub/sub frame; the topic code of a wake-up, else None."""
        if not frame or len(frame) < 3:
            return None
        kind = frame[0]
        if kind == b'subscribe':
            if confirming is not None:
                confirming.discard(frame[1])
            return None
        if kind != b'message':
            return None
        code = waiter.channels.get(frame[1])
        if code == _HAND_OFF_CODE:  # a message handed to this worker: wakes it as 'q' does
            waiter.messages.append(frame[2])
            code = 'q'
        if code is not None:
            waiter.pending.add(code)
        return code

    def wait_for_change(self, timeout: float, topic: Optional[str] = None) -> bool:
        """Block on this thread's pub/sub connection; see the module documentation.

        The first call of a thread for a topic (and the first after a lost connection)
        subscribes and returns ``True`` at once. ``topic=None`` waits for any change made
        after the call started.
        """
        if topic is not None and topic not in _TOPIC_CODES:
            raise ValueError('unknown wait_for_change topic %r (expected one of %s)'
                             % (topic, ', '.join(sorted(TOPICS))))
        local = self._thread()
        if getattr(local, 'tx', None) is not None:
            raise StorageError('wait_for_change() cannot be called inside transaction()')
        codes = _ALL_CODES if topic is None else (_TOPIC_CODES[topic],)
        deadline = time.monotonic() + max(float(timeout), 0.0)
        try:
            waiter = self._waiter(local)
            subscribed = waiter.channels.values()
            missing = [c for c in codes if c not in subscribed]
            if 'q' in codes and getattr(local, 'serving', None) \
                    and _HAND_OFF_CODE not in subscribed:
                missing.append(_HAND_OFF_CODE)  # lost with a dropped connection
            if missing:
                self._subscribe(waiter, missing)
                if topic is not None:
                    return True  # tracking starts now: the caller re-checks
            if topic is None:  # any change made from now on
                waiter.pending.clear()
            while True:
                hit = waiter.pending.intersection(codes)
                if hit:
                    # Changes already delivered are covered by this wake-up too.
                    while self._note(waiter, waiter.pubsub.get_message(0.0)) is not None:
                        pass
                    waiter.pending.difference_update(hit)
                    if waiter.messages:
                        self._accept_hand_offs(local, waiter)
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._note(waiter, waiter.pubsub.get_message(remaining))
        except _rexc.RedisError as exc:
            self._drop_waiter(local)  # subscribe again next time: wake-ups may have been lost
            raise self._error(exc, 'waiting for a change') from exc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if os.getpid() != self._pid:  # inherited across fork: not ours to close
            _ABANDONED.extend(w.pubsub for w in self._waiters)
            _ABANDONED.extend(self._links)
            return
        with self._waiters_lock:
            waiters, self._waiters = self._waiters, []
            links, self._links = list(self._links), weakref.WeakSet()
        for waiter in waiters:
            with contextlib.suppress(Exception):
                waiter.pubsub.close()
        for link in links:
            with contextlib.suppress(Exception):
                link.release()
        if self._own_pool:
            with contextlib.suppress(Exception):
                self._pool.disconnect()


def _function_missing(exc: BaseException) -> bool:
    """Whether an FCALL failed because the library is not loaded, or the server has no
    functions (Redis < 7) or does not let this user call them."""
    text = str(exc)
    return ('Function not found' in text or 'unknown command' in text.lower()
            or isinstance(exc, _rexc.NoPermissionError))


def _describe_guard(kind: bytes | str, a: Any) -> str:
    kind = kind.decode() if isinstance(kind, bytes) else kind
    return {
        'C': 'the claim of message %s (taken over by another owner)',
        'R': 'ready message %s (claimed by someone else)',
        'K': 'key %r',
        'S': 'scheduled message %s (moved by another consumer)',
        'D': 'dead letter %s',
        'O': 'the claims of owner %s',
    }.get(kind, 'guard %s') % (a,)
