"""A throwaway ``redis-server`` for the tests: 127.0.0.1, a free port, no persistence.

Redis tests skip where they cannot run (no redis-server, no redis-py), except where they must
run: with ``CI=true`` (as CI sets it) or ``SQLQ_REQUIRE_REDIS=1`` they fail instead, so that a
CI box without Redis cannot pass by skipping them.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any, Optional, Sequence

INSTALL_HINT = 'redis-server not installed: apt-get install redis-server (or brew install redis)'
REDIS_PY_HINT = "redis-py not installed: pip install 'sqlq[redis]'"


def unavailable_reason() -> Optional[str]:
    """Why Redis tests cannot run here (None if they can)."""
    try:
        import redis  # noqa: F401
    except ImportError:
        return REDIS_PY_HINT
    if shutil.which('redis-server') is None:
        return INSTALL_HINT
    return None


def required() -> bool:
    """Whether Redis tests must fail rather than skip when they cannot run."""
    return os.environ.get('CI') == 'true' or os.environ.get('SQLQ_REQUIRE_REDIS') == '1'


def skip_unless_available() -> None:
    """Skip the calling test if Redis tests cannot run here (fail it if they are required)."""
    import pytest
    reason = unavailable_reason()
    if reason is None:
        return
    if required():
        pytest.fail('%s; Redis tests are required here (CI=true or SQLQ_REQUIRE_REDIS=1)'
                    % reason, pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process; :meth:`restart` keeps its port (and, with an append-only
    file, its data)."""

    def __init__(self, extra_args: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix='sqlq-redis-')
        self.extra_args = list(extra_args)
        self.proc: Optional['subprocess.Popen[bytes]'] = None

    @property
    def url(self) -> str:
        return 'redis://127.0.0.1:%d/0' % self.port

    def start(self, timeout: float = 15.0, loading: bool = False,
              extra_args: Sequence[str] = ()) -> 'RedisServer':
        """Start the server; return once it answers (with ``loading``: once it answers
        that it is still loading its data set)."""
        args = ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1',
                '--save', '', '--appendonly', 'no', '--dir', self.dir,
                '--protected-mode', 'no'] + self.extra_args + list(extra_args)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        import redis
        client = self._client(socket_connect_timeout=1)
        try:
            while True:
                try:
                    if client.ping():
                        if loading:
                            raise RuntimeError('redis-server loaded its data too fast')
                        return self
                except redis.exceptions.BusyLoadingError:
                    if loading:
                        return self
                except redis.ConnectionError:
                    pass
                if self.proc.poll() is not None:
                    raise RuntimeError('redis-server exited with %s' % self.proc.returncode)
                if time.monotonic() > deadline:
                    raise RuntimeError('redis-server did not accept connections within %ss'
                                       % timeout)
                time.sleep(0.02)  # polling interval of a bounded wait
        finally:
            client.close()

    def start_loading(self, keys: int = 40000) -> 'RedisServer':
        """Start the server with a data set of ``keys`` keys that it loads slowly (1 ms a
        key: the hidden debug setting ``key-load-delay``), answering every command but a few
        (SUBSCRIBE...) with ``-LOADING Redis is loading the dataset in memory`` for that
        long; return once it does. Each key is 1 KiB, uncompressed, so that the server serves
        its clients between any two keys. ``stop`` ends it."""
        import redis
        self.start(extra_args=['--rdbcompression', 'no'])
        client = redis.Redis(host='127.0.0.1', port=self.port)
        value = bytes(range(256)) * 4
        try:
            with client.pipeline(transaction=False) as pipe:
                for i in range(keys):
                    pipe.set('filler:%d' % i, value)
                pipe.execute()
            client.save()
        finally:
            client.close()
        self.stop()  # without saving again (no save points): the dump above is what loads
        return self.start(loading=True, extra_args=[
            '--key-load-delay', '1000', '--loading-process-events-interval-bytes', '1024'])

    def is_loading(self) -> bool:
        """Whether the server answers that it is still loading its data set."""
        import redis
        client = self._client(socket_connect_timeout=1)
        try:
            client.ping()
        except redis.exceptions.BusyLoadingError:
            return True
        finally:
            client.close()
        return False

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.proc = None

    def _client(self, **options: Any) -> Any:
        """A redis-py client of this server that never retries (redis-py's default client
        retries a failed command, a LOADING reply included, with a back-off of seconds)."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        return redis.Redis(host='127.0.0.1', port=self.port, retry=Retry(NoBackoff(), 0),
                           **options)

    def kill(self, timeout: float = 15.0) -> None:
        """SIGKILL the server (no shutdown: what its append-only file holds is what survives)."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait(timeout)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def flush(self) -> None:
        import redis
        client = redis.Redis(host='127.0.0.1', port=self.port)
        try:
            client.flushall()
        finally:
            client.close()
