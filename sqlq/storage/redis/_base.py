"""What every operation of :class:`~sqlq.storage.redis.RedisStorage` stands on: the
connection pool, each thread's own connection (and what happens to both across a fork),
running operations as one script run, the transaction buffer, and errors.

Errors
------
Every redis-py error becomes a :class:`~sqlq.exceptions.StorageError` naming the server:
:class:`~sqlq.exceptions.StorageUnavailableError` when the server cannot be reached (refused,
reset, timeout, still loading its data), with a specific message when it is out of memory
(``maxmemory``) or read-only (a replica). Connections are made by redis-py's pool; each thread
takes one for its commands and one for its subscription and keeps them (they go back to the
pool when the thread ends or the storage is closed), and speaks to them directly (see
:mod:`sqlq.storage.redis._resp`). No command is retried automatically (a retried write could
apply twice); the next call after an outage reconnects, and a connection the server closed
while it was idle is replaced before it is used. A dequeue whose reply was lost is repeated
with the same request id on this thread's next dequeue, which returns the same claim instead
of orphaning it; the claims of a transaction whose commit reply was lost are given back
before this process's next run (see :meth:`RedisBase._commit`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from typing import Any, Callable, Iterator, Optional, Sequence

import redis
from redis import exceptions as _rexc

from sqlq.exceptions import (
    ConfigurationError,
    StorageError,
    StorageUnavailableError,
    TransactionConflict,
)
from sqlq.storage.base import Storage
from sqlq.storage.redis._args import NO_ARG, num
from sqlq.storage.redis._resp import Link, Subscriber, open_link
from sqlq.storage.redis._scripts import FUNCTION, LIBRARY, READ_FUNCTION, SCRIPT
from sqlq.storage.redis._transaction import _Tx, describe_guard

#: Connections inherited across fork: never used nor closed in the child.
_ABANDONED: list[Any] = []


def _make_pool(url: Optional[str], host: Optional[str], port: Optional[int], db: Optional[int],
               password: Optional[str], connection_options: dict[str, Any]) -> Any:
    """A connection pool of the storage's own, with its defaults for timeouts."""
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
            return redis.ConnectionPool.from_url(url, **options)
        return redis.ConnectionPool(host=host or 'localhost',
                                    port=6379 if port is None else int(port), **options)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError('bad Redis connection settings: %s' % exc) from None


class RedisBase(Storage):
    """Connections, script runs, transactions and errors of :class:`RedisStorage` (whose
    documentation describes the arguments)."""

    def __init__(self, name: str = 'sqlq', *, url: Optional[str] = None,
                 connection_pool: Any = None, host: Optional[str] = None,
                 port: Optional[int] = None, db: Optional[int] = None,
                 password: Optional[str] = None, prefix: str = 'sqlq',
                 clock: Callable[[], float] = time.time, flag_prefix: Optional[str] = None,
                 **connection_options: Any) -> None:
        super().__init__(name, clock=clock, flag_prefix=flag_prefix)
        if not isinstance(prefix, str) or not prefix:
            raise ConfigurationError('prefix must be a non-empty string, not %r' % (prefix,))
        given = [what for what, value in (('url', url), ('connection_pool', connection_pool))
                 if value is not None]
        if len(given) > 1 or (given and (host is not None or port is not None)):
            raise ConfigurationError('give RedisQueue one of url=, connection_pool= or '
                                     'host=/port=, not several')
        self._own_pool = connection_pool is None
        if connection_pool is None:
            connection_pool = _make_pool(url, host, port, db, password, connection_options)
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
        #: Whether each thread keeps a connection of its own (see :meth:`_link`).
        self._direct = not (getattr(connection_pool, 'cache', None) is not None  # client cache
                            or isinstance(connection_pool, redis.BlockingConnectionPool))
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

    # ------------------------------------------------------------------ threads and forks

    def _reset_local(self, pid: int) -> None:
        self._pid = pid
        self._local = threading.local()
        self._lock = threading.Lock()
        #: Every thread's subscription and connection, to close with the storage.
        self._subscribers: list[Subscriber] = []
        self._links: Any = weakref.WeakSet()
        #: Claims a commit may have made whose reply was lost (see :meth:`_commit`).
        self._in_doubt: list[Any] = []

    def _thread(self) -> Any:
        if self._closed:
            raise StorageError('storage %r on %s is closed' % (self.name, self.address))
        pid = os.getpid()
        if pid != self._pid:  # forked: the parent's connections and transactions are not ours
            _ABANDONED.extend(self._subscribers)
            _ABANDONED.extend(self._links)
            self._reset_local(pid)
        return self._local

    def _link(self, local: Any) -> Optional[Link]:
        """This thread's own connection. None (redis-py's command path, a connection from
        the pool per call) for a ``BlockingConnectionPool`` (its size is a limit: threads
        must not keep connections) or a pool with client-side caching."""
        link: Optional[Link] = getattr(local, 'link', None)
        if link is None and self._direct:
            link = local.link = open_link(self._pool)
            with self._lock:
                self._links.add(link)
        return link

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if os.getpid() != self._pid:  # inherited across fork: not ours to close
            _ABANDONED.extend(self._subscribers)
            _ABANDONED.extend(self._links)
            return
        with self._lock:
            subscribers, self._subscribers = self._subscribers, []
            links, self._links = list(self._links), weakref.WeakSet()
        for subscriber in subscribers:
            with contextlib.suppress(Exception):
                subscriber.close()
        for link in links:
            with contextlib.suppress(Exception):
                link.release()
        if self._own_pool:
            with contextlib.suppress(Exception):
                self._pool.disconnect()

    # ------------------------------------------------------------------ script runs

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

    def _run(self, guards: Sequence[tuple[Any, ...]], ops: Sequence[Any], doing: str,
             read_only: bool = False, now: Optional[str] = None) -> list[Any]:
        """One script run; the results of ``ops`` (a flat list: name, args, name, args...).
        ``read_only``: ``ops`` only read (the function flagged ``no-writes`` may run them).
        ``now``: the run's clock (``num(clock())`` if None)."""
        local = self._thread()
        if self._in_doubt:
            self._give_back_in_doubt()
        # The arguments after the two key prefixes (which _call sends packed in advance).
        args: list[Any] = [num(self._clock()) if now is None else now, len(guards)]
        for guard in guards:
            args.extend(guard)
        args.extend(ops)
        reply: list[Any]
        try:
            link = self._link(local)
            if link is None:
                reply = self._script(args=[self._qprefix, self._gprefix, *args])
            else:
                reply = self._call(link, args, read_only)
        except _rexc.RedisError as exc:
            raise self._error(exc, doing) from exc
        if reply[0] == 0:
            kind, a = guards[reply[1] - 1][:2]
            raise TransactionConflict(
                'transaction on queue %r at %s not applied: %s changed since the transaction '
                'read it (another worker or consumer was faster); nothing of it was written'
                % (self.name, self.address, describe_guard(kind, a)))
        return reply[1:]

    def _call(self, link: Link, args: list[Any], read_only: bool) -> Any:
        """Run the operations (``args``: the script's arguments after the two key prefixes):
        FCALL of the library's function (loaded on first use, and again after the server lost
        it), or EVALSHA of the script on a server without functions (Redis < 7, or
        FUNCTION/FCALL not permitted)."""
        if self._functions is not False:
            head = link.heads.get(read_only)
            if head is None:  # FCALL name 0 prefix-of-queue prefix-of-globals, packed once
                head = link.heads[read_only] = link.pack_items(
                    ['FCALL', READ_FUNCTION if read_only else FUNCTION, 0, self._qprefix,
                     self._gprefix])
            try:
                return link.call_with(head, 5, args)
            except _rexc.ResponseError as exc:
                if not _function_missing(exc):
                    raise
            if self._load_library(link):
                return link.call_with(head, 5, args)
        command = ['EVALSHA', self._script.sha, 0, self._qprefix, self._gprefix]
        command.extend(args)
        try:
            return link.call(command)
        except _rexc.NoScriptError:  # a restarted or flushed server: load it again
            link.call(['SCRIPT', 'LOAD', SCRIPT])
            return link.call(command)

    def _load_library(self, link: Link) -> bool:
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

    def _one(self, op: str, *args: Any, doing: str = 'writing') -> Any:
        return self._run((), (op,) + args, doing)[0]

    def _read(self, op: str, *args: Any) -> Any:
        return self._run((), (op,) + args, 'reading', read_only=True)[0]

    def _counts(self) -> list[Any]:
        """ready, claimed, scheduled, results, kv keys, expired keys, dead letters."""
        counts: list[Any] = self._read('stats')
        return counts

    def _expires(self, ttl: Optional[float]) -> str:
        return NO_ARG if ttl is None else num(self._clock() + float(ttl))

    # ------------------------------------------------------------------ transactions

    def _tx(self) -> Optional[_Tx]:
        return getattr(self._thread(), 'tx', None)

    def _write(self, tx: Optional[_Tx], op: str, *args: Any) -> Optional[list[Any]]:
        """Apply one operation now, or buffer it in the open transaction (returns None)."""
        if tx is not None:
            tx.ops.append(op)
            tx.ops.extend(args)
            return None
        done: list[Any] = self._one(op, *args)
        return done

    def _refuse_in_transaction(self, what: str) -> None:
        if self._tx() is not None:
            raise StorageError('%s() cannot be called inside transaction()' % what)

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
            self._commit(tx)

    def _commit(self, tx: _Tx) -> None:
        """Apply a transaction's buffer in one run.

        If the connection fails, the run may have been applied all the same, its reply lost
        (the server went down after writing its append-only file, a timeout...). Claims it
        took would then be held by this live owner with nobody to run or settle them, until
        this process ends. So they are given back, by this process's next run once the
        server answers, if that run made them: the same message, owner and attempt, claimed
        at that run's clock (so nothing another run claimed is touched); they never started.
        """
        now = num(self._clock())
        try:
            self._run(tx.guards, tx.ops, 'committing a transaction', now=now)
        except StorageUnavailableError:
            taken = [(msg_id, owner, attempts) for msg_id, (owner, attempts, held)
                     in tx.claims.items() if held]
            if taken:
                with self._lock:
                    self._in_doubt.append((now, taken))
            raise

    def _give_back_in_doubt(self) -> None:
        """Release the claims of commits whose reply was lost (see :meth:`_commit`)."""
        with self._lock:
            batches, self._in_doubt = self._in_doubt, []
        args: list[Any] = []
        for now, taken in batches:
            for msg_id, owner, attempts in taken:
                args.extend((msg_id, owner, attempts, now))
        try:
            self._run((), ('unlost', len(args) // 4, *args),
                      'giving back the claims of a commit whose reply was lost')
        except StorageUnavailableError:  # tried again before the next run
            with self._lock:
                self._in_doubt[:0] = batches
        except StorageError as exc:  # not now, not later (out of memory, read-only...)
            logging.getLogger('sqlq.storage').warning(
                'could not give back the claims of a commit whose reply was lost (%s): '
                'dead-owner recovery will return them when this process ends', exc)


def _function_missing(exc: BaseException) -> bool:
    """Whether an FCALL failed because the library is not loaded, or the server has no
    functions (Redis < 7) or does not let this user call them."""
    text = str(exc)
    return ('Function not found' in text or 'unknown command' in text.lower()
            or isinstance(exc, _rexc.NoPermissionError))
