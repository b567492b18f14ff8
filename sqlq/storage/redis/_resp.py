"""Each thread's own connection to the Redis server, and its pub/sub subscriber.

A thread takes one connection from redis-py's pool and keeps it (not checked out and back per
call; it goes back to the pool when the thread ends or the storage is closed), and speaks to
it directly: redis-py's per-command path (pool checkout and release, retry wrapper,
instrumentation hooks) cost more than the round trip itself on a consumer's path from a
wake-up to a task's start. Nothing is retried: a connection error disconnects and is raised;
the next call reconnects. Before each command a connection that has data waiting (the server
closed it, e.g. restarted, while it sat idle) is reconnected, as redis-py's pool does on
checkout, so an idle thread's first call after a server restart still succeeds.

Two transports with one interface, chosen per connection by :func:`open_link` and
:func:`open_subscriber`:

- :class:`Link` and :class:`Subscriber` use redis-py's public ``Connection`` API only
  (``connect``, ``send_packed_command``, ``can_read``, ``read_response``, ``disconnect``).
- :class:`_FastLink` and :class:`_FastSubscriber` pack commands and parse RESP2/RESP3 replies
  themselves on the connection's socket, and wait for data with ``poll``. They are the only
  code of sqlq that touches redis-py private attributes: ``Connection._sock`` (the socket) and
  ``Connection._parser.parse_error`` (server errors as redis-py's exception classes, e.g.
  ``NoScriptError``). Why: measured with redis-py 8.1.0 (no hiredis) and redis-server 7.0.15,
  the two transports interleaved in one process, the public one costs single enqueues 23-35%
  more client CPU per call (~+7-12 us: ``can_read(0)``'s two ``settimeout`` calls and a failing
  ``recv`` where one ``poll`` does, and redis-py's generic parser) and 12-28% more wall time,
  and a drain in batches of 16 (``dequeue_many`` + ``complete_many``) 14% more client CPU per
  task. A redis-py without these attributes (see :func:`fast_path_supported`) gets the public
  transport instead of breaking; the tests run both.
"""
from __future__ import annotations

import contextlib
import os
import select
import socket
from typing import Any, Optional, Sequence

from redis import exceptions as _rexc


def fast_path_supported(conn: Any) -> bool:
    """Whether ``conn`` (a connection of redis-py's pool) has the private attributes the fast
    transport drives: a ``_sock`` slot and a parser that maps server errors."""
    parser = getattr(conn, '_parser', None)
    return hasattr(conn, '_sock') and callable(getattr(parser, 'parse_error', None))


def _take_connection(pool: Any) -> Any:
    try:
        return pool.get_connection()
    except TypeError:  # redis-py 5: a command name is required
        return pool.get_connection('EVALSHA')


def open_link(pool: Any) -> 'Link':
    """A connection from ``pool`` for this thread's commands."""
    conn = _take_connection(pool)
    return (_FastLink if fast_path_supported(conn) else Link)(pool, conn)


def open_subscriber(pool: Any) -> 'Subscriber':
    """A connection from ``pool`` for this thread's subscription (never given back to be
    used by others)."""
    conn = _take_connection(pool)
    return (_FastSubscriber if fast_path_supported(conn) else Subscriber)(pool, conn)


class Link:
    """One thread's own connection, through redis-py's public ``Connection`` API."""

    def __init__(self, pool: Any, conn: Any) -> None:
        self.pool = pool
        self.pid = os.getpid()
        self.conn = conn
        encoder = pool.get_encoder()
        self.encoding, self.errors = encoder.encoding, encoder.encoding_errors
        self._encode = encoder.encode
        #: Whether this object connected the connection and saw no failure since.
        self._live = False
        self.closed = False
        #: The packed first arguments of its storage's FCALLs (see :meth:`call_with`), by
        #: read-only flag; a connection serves one storage.
        self.heads: dict[bool, bytes] = {}

    @property
    def connected(self) -> bool:
        """False before the first command and after a failed one (then disconnected)."""
        return self._live

    def ready(self) -> None:
        """Connect, reconnecting first if the server closed the connection (or sent anything)
        while it was idle."""
        conn = self.conn
        if self._live:
            try:
                stale = conn.can_read(0)
            except _rexc.ConnectionError:  # closed by the server
                stale = True
            if not stale:
                return
            self.disconnect()
        self._connect()

    def _connect(self) -> None:
        if not self._live:
            self.conn.connect()
            self._live = True

    def disconnect(self) -> None:
        self._live = False
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

    def pack(self, args: Sequence[Any]) -> bytes:
        return self._pack([b'*%d\r\n' % len(args)], args)

    def pack_items(self, args: Sequence[Any]) -> bytes:
        """``args`` as the bulk strings of a command, without the command's header (so that a
        constant first part can be packed once: see :meth:`call_with`)."""
        return self._pack([], args)

    def _pack(self, out: list[bytes], args: Sequence[Any]) -> bytes:
        """``out`` (the parts so far) and ``args`` packed after them, joined."""
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

    def send(self, payload: bytes, check: bool = True) -> None:
        """Send a packed command; ``check``: reconnect first if the connection went stale."""
        try:
            if check:
                self.ready()
            else:
                self._connect()
            self.conn.send_packed_command([payload], check_health=False)
        except BaseException:
            self.disconnect()  # redis-py did already, unless it never connected
            raise

    def read(self, push: bool = False) -> Any:
        """One reply (push frames skipped unless ``push``); a server error is raised."""
        try:
            return self.conn.read_response(push_request=push)
        except _rexc.ResponseError:  # a whole error reply: the stream is still in step
            raise
        except BaseException:
            self.disconnect()
            raise

    def call(self, args: Sequence[Any]) -> Any:
        self.send(self.pack(args))
        return self.read()

    def call_with(self, head: bytes, n: int, args: Sequence[Any]) -> Any:
        """:meth:`call` of a command whose first ``n`` arguments are packed in ``head`` (by
        :meth:`pack_items`, with this connection's encoding)."""
        self.send(self._pack([b'*%d\r\n' % (n + len(args)), head], args))
        return self.read()


class Subscriber(Link):
    """A pub/sub connection of this module's own (see :class:`Link`): SUBSCRIBE, then wait
    for messages."""

    def subscribe(self, channels: Sequence[bytes]) -> None:
        # No staleness check: messages waiting on a subscription are not a stale connection.
        self.send(self.pack([b'SUBSCRIBE'] + list(channels)), check=False)

    def get_message(self, timeout: float) -> Optional[list[Any]]:
        """The next frame (``[b'message', channel, data]``, ``[b'subscribe', channel, n]``
        ...), or None if none arrives within ``timeout`` seconds."""
        try:
            if not self.conn.can_read(max(timeout, 0.0)):
                return None
        except BaseException:
            self.disconnect()
            raise
        frame = self.read(push=True)
        return frame if isinstance(frame, list) else None

    def close(self) -> None:
        if os.getpid() == self.pid and not self.closed:
            self.disconnect()  # subscribed: never handed to another user of the pool
        self.release()


def _readable(link: '_FastLink', sock: Any, timeout: float) -> bool:
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


class _Push(list):  # type: ignore[type-arg]
    """A RESP3 push frame (out-of-band: pub/sub messages, server notifications)."""


class _FastLink(Link):
    """:class:`Link` on the connection's socket: commands packed and replies parsed here (see
    the module documentation for why, and for the private attributes it needs)."""

    def __init__(self, pool: Any, conn: Any) -> None:
        super().__init__(pool, conn)
        self.sock: Any = None
        self.poller: Any = None
        self.buf = bytearray()
        self.pos = 0
        self.parse_error = conn._parser.parse_error

    @property
    def connected(self) -> bool:
        return self.sock is not None

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

    # -- protocol

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise _rexc.ConnectionError('Connection closed by server.')
        if self.pos:
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk

    def _header(self) -> tuple[int, int, int]:
        """The next line: (its type byte, where its text starts in ``buf``, where it ends);
        ``pos`` moves past it."""
        while True:
            end = self.buf.find(b'\r\n', self.pos)
            if end >= 0:
                start = self.pos
                self.pos = end + 2
                return self.buf[start], start + 1, end
            self._fill()

    def _bulk(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n + 2:
            self._fill()
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n + 2
        return data

    def _value(self) -> Any:
        kind, start, end = self._header()
        # The commonest types first, read without copying the line (type bytes as numbers).
        if kind == 36:  # $ bulk string
            n = int(self.buf[start:end])
            return None if n < 0 else self._bulk(n)
        if kind == 58:  # : integer
            return int(self.buf[start:end])
        if kind == 42 or kind == 126 or kind == 62:  # * array, ~ set, > push
            n = int(self.buf[start:end])
            if n < 0:
                return None
            items = [self._value() for _ in range(n)]
            return _Push(items) if kind == 62 else items
        line = bytes(self.buf[start - 1:end])
        tag, rest = line[:1], line[1:]
        if tag == b'+':
            return rest
        if tag in (b'-', b'!'):
            text = self._bulk(int(rest)) if tag == b'!' else rest
            return self.parse_error(text.decode('utf-8', 'replace'))
        if tag == b'_':
            return None
        if tag == b'#':
            return rest == b't'
        if tag == b',':
            return float(rest)
        if tag == b'(':
            return int(rest)
        if tag == b'=':
            return self._bulk(int(rest))[4:]
        if tag == b'%':
            n = int(rest)
            return {self._value(): self._value() for _ in range(n)}
        if tag == b'|':  # attributes, then the value they describe
            n = int(rest)
            for _ in range(2 * n):
                self._value()
            return self._value()
        raise _rexc.InvalidResponse('Protocol Error: %r' % line[:40])

    def read(self, push: bool = False) -> Any:
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
        if isinstance(value, _rexc.RedisError):  # an error reply (LOADING: a ConnectionError)
            raise value
        return value

    def send(self, payload: bytes, check: bool = True) -> None:
        try:
            (self.ready() if check else self._socket()).sendall(payload)
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


class _FastSubscriber(_FastLink, Subscriber):
    """:class:`Subscriber` on the connection's socket, waiting with ``poll``."""

    def get_message(self, timeout: float) -> Optional[list[Any]]:
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
