"""The guard of a database file against what SQLite's own locking cannot see.

**Another copy of SQLite in this process.** apsw ships its own SQLite library; Python's
``sqlite3`` module (Django, SQLAlchemy...) uses another. SQLite locks files with POSIX advisory
locks, which belong to a *process*: two libraries in one process never block each other, so
their write transactions on one file overlap and one commit overwrites the other (every enqueue
made inside an application's ``sqlite3`` transaction was lost, without an error); and when the
other library closes its last connection it takes the exclusive lock no one seems to hold,
checkpoints and deletes the ``-wal`` and ``-shm`` files that sqlq's connections still use (every
later write went to a deleted file). SQLite's "How To Corrupt An SQLite Database File", 2.2.1.

Each copy of SQLite opens a database's ``-shm`` file once per process, however many connections
it has, so the process's descriptors (``/proc/self/fd``) tell: more than one descriptor on the
``-shm`` file is another copy; a descriptor on a deleted ``-wal`` or ``-shm`` file is a copy that
closed under us. :meth:`FileGuard.scan` looks, when a connection opens and whenever something
may have changed; :meth:`FileGuard.check` runs before every write transaction and must cost
almost nothing (a single enqueue takes ~28 us), so it only asks whether something changed since
the last scan:

- with inotify (Linux; one instance per process): were the ``-shm`` file opened (by anyone) or
  the database, ``-wal`` or ``-shm`` file unlinked? One ``ioctl(FIONREAD)``, ~0.3 us;
- without (the per-user instance limit reached): has the number of descriptors of this process
  changed (``stat('/proc/self/fd').st_size``, Linux >= 6.2), or the ``-shm`` file's inode (a
  copy that opened and closed between two writes leaves the count as it was)? ~3 us;
- on older kernels, only once a second (and once a second in the two modes above too: a
  deleted database file changes neither the count nor the ``-shm`` inode).

What it finds: another copy has the file open -> :class:`~sqlq.exceptions.DatabaseSharedError`
(again at each write while it stays open); our ``-wal``/``-shm`` file was deleted -> the same
error, for good (the connections of this storage write to a file no one else can see; a new
storage opens new ones); the database file itself was deleted or replaced -> one warning (the
consumer goes on; what it writes is lost when it stops). Without ``/proc/self/fd`` (macOS,
Windows) there is no guard: the README tells users to give sqlq a file of its own.

**A file someone else prepared** (:func:`check_owner`): a database, ``-wal`` or ``-shm`` file
owned by another user or writable by group or others is refused before SQLite opens it, unless
the application trusts those users (``trust_other_users=True``).
"""
from __future__ import annotations

import array
import ctypes
import logging
import os
import sys
import threading
import time
from typing import Optional

from sqlq.exceptions import DatabaseSharedError, StorageError

logger = logging.getLogger('sqlq.storage')

_FD_DIR = '/proc/self/fd'

#: Whether this platform lets a process list its descriptors (Linux).
SUPPORTED = sys.platform.startswith('linux') and os.path.isdir(_FD_DIR)

#: Tests: behave as if inotify were unavailable (guards created afterwards count descriptors).
FORCE_FALLBACK = False

#: Seconds between two scans when neither inotify nor the descriptor count is available.
PERIOD = 1.0

_IN_ATTRIB, _IN_OPEN, _IN_DELETE_SELF = 0x4, 0x20, 0x400


class _Inotify:
    """This process's inotify instance: watches, and whether any event is waiting."""

    def __init__(self) -> None:
        import fcntl  # Unix only: imported where inotify exists (Linux)
        import termios
        self._ioctl, self._fionread = fcntl.ioctl, termios.FIONREAD
        libc = ctypes.CDLL(None, use_errno=True)
        self._add = libc.inotify_add_watch
        self._rm = libc.inotify_rm_watch
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        self.fd = fd
        self.pid = os.getpid()
        self._buf = array.array('i', [0])
        self._refs: dict[int, int] = {}
        self._lock = threading.Lock()

    def watch(self, path: str, mask: int) -> int:
        wd: int = self._add(self.fd, os.fsencode(path), mask)
        if wd < 0:
            raise OSError(ctypes.get_errno(), '%s: %s' % (path, os.strerror(ctypes.get_errno())))
        with self._lock:
            self._refs[wd] = self._refs.get(wd, 0) + 1
        return wd

    def unwatch(self, wd: int) -> None:
        with self._lock:
            left = self._refs.get(wd, 0) - 1
            if left > 0:
                self._refs[wd] = left
                return
            self._refs.pop(wd, None)
        self._rm(self.fd, wd)  # fails harmlessly if the inode is gone (IN_IGNORED)

    def pending(self) -> bool:
        self._ioctl(self.fd, self._fionread, self._buf, True)
        return self._buf[0] != 0

    def drain(self) -> None:
        with self._lock:
            try:
                while os.read(self.fd, 65536):
                    pass
            except BlockingIOError:
                pass


_lock = threading.Lock()
_notifier: Optional[_Inotify] = None
_notifier_failed = False
_guards: set[FileGuard] = set()


def _get_notifier() -> Optional[_Inotify]:
    """This process's inotify instance (a new one after fork: the inherited one is shared with
    the parent, which would read our events), or None if there can be none."""
    global _notifier, _notifier_failed
    with _lock:
        if _notifier is not None and _notifier.pid != os.getpid():
            try:
                os.close(_notifier.fd)  # our copy of the parent's: not a file with locks
            except OSError:
                pass
            _notifier, _notifier_failed = None, False
            _guards.clear()
        if _notifier is None and not _notifier_failed and not FORCE_FALLBACK:
            try:
                _notifier = _Inotify()
            except (OSError, AttributeError) as exc:  # limit reached, no inotify in libc
                _notifier_failed = True
                logger.info('inotify unavailable (%s): sqlq checks for another SQLite library '
                            'in this process by counting descriptors instead', exc)
        return None if FORCE_FALLBACK else _notifier


def inotify_available() -> bool:
    return SUPPORTED and _get_notifier() is not None


def _fd_count() -> int:
    return os.stat(_FD_DIR).st_size


def check_owner(path: str) -> None:
    """Refuse a database, -wal or -shm file that another user owns or that group or others may
    write: with the default pickle serializer, whoever can write the queue's file can run code
    in its consumers (and read every task's arguments). POSIX only: Windows has no such
    owner and mode bits (its ACLs are not checked)."""
    if os.name != 'posix':
        return
    uid = os.geteuid()
    for name in (path, path + '-wal', path + '-shm'):
        try:
            st = os.stat(name)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StorageError('cannot check sqlq database file %r: %s' % (name, exc)) from exc
        if st.st_uid != uid:
            problem = 'is owned by another user (uid %d; this process runs as uid %d)' % (
                st.st_uid, uid)
        elif st.st_mode & 0o022:
            problem = 'is writable by other users (mode %04o)' % (st.st_mode & 0o7777)
        else:
            continue
        raise StorageError(
            'sqlq database file %r %s: whoever can write it can make the consumers run code of '
            'their choosing (the default serializer is pickle) and read task arguments. Delete '
            'it, or make it yours and private (chown; chmod 600), or run as its owner; if '
            'every user who can write it is trusted, pass trust_other_users=True (and consider '
            'SignedSerializer).' % (name, problem))


#: Free bytes under which a write error is reported as a full disk.
FULL_BELOW = 1 << 20


def full_disk(path: str, exc: BaseException) -> Optional[str]:
    """If the file system holding ``path`` is (nearly) full, an error message for ``exc`` that
    says so and names the file -- SQLite reports a failure to grow the -shm file as "disk I/O
    error"; None otherwise."""
    directory = os.path.dirname(path)
    try:
        st = os.statvfs(directory)
    except (OSError, AttributeError):
        return None
    free = (st.f_bfree if hasattr(os, 'geteuid') and os.geteuid() == 0 else st.f_bavail)
    free *= st.f_frsize
    if free >= FULL_BELOW:
        return None
    return ('cannot use sqlq database %r: the disk is full (%d bytes free on the file system '
            'of %r), so SQLite could not write the database or create its -wal/-shm files '
            '(%s: %s). Free some space, then start again.'
            % (path, free, directory, type(exc).__name__, exc))


class FileGuard:
    """Watches one database file for this process; see the module docstring.
    ``trust_other_users``: skip :func:`check_owner`."""

    def __init__(self, path: str, trust_other_users: bool = False) -> None:
        self.trust_other_users = bool(trust_other_users)
        self.path = os.path.realpath(path)  # what /proc/self/fd shows
        self.shm = self.path + '-shm'
        self.wal = self.path + '-wal'
        self._generation = 0  # bumped by every possible change
        self._scanned = -1    # the generation of the last clean scan
        self._broken: Optional[str] = None
        self._db_gone_logged = False
        self._pid = 0
        self._notifier: Optional[_Inotify] = None
        self._wds: list[int] = []
        self._fds = 0
        self._shm_ino = 0
        self._next_scan = 0.0
        self._mode = ''
        self._start_lock = threading.Lock()

    # ---------------------------------------------------------------- set-up

    def check_files(self) -> None:
        """Before SQLite opens the file, and again once it has: :func:`check_owner`."""
        if not self.trust_other_users:
            check_owner(self.path)

    def opened(self) -> None:
        """A connection of this process was just opened on the file: check its owner (the -wal
        and -shm files exist now), scan (raises if another copy of SQLite has it open) and,
        first in each process, start watching."""
        self.check_files()
        if not SUPPORTED:
            return
        self._start_in_this_process()
        self._generation += 1
        self.scan()

    def _start_in_this_process(self) -> None:
        """Watch the file from this process, once (after a fork, every thread of the child
        may come here first: the inherited watches belong to the parent's inotify instance,
        whose descriptor the child closes)."""
        if self._pid == os.getpid():
            return
        with self._start_lock:
            if self._pid != os.getpid():
                self._start()
                self._generation += 1

    def _start(self) -> None:
        wds: list[int] = []
        notifier = _get_notifier()
        watching: Optional[_Inotify] = None
        if notifier is not None:
            try:
                wds.append(notifier.watch(self.shm, _IN_OPEN | _IN_ATTRIB))
                wds.append(notifier.watch(self.path, _IN_ATTRIB | _IN_DELETE_SELF))
                wds.append(notifier.watch(self.wal, _IN_ATTRIB))
                watching = notifier
            except OSError as exc:
                for wd in wds:
                    notifier.unwatch(wd)
                wds = []
                logger.debug('cannot watch %r (%s): counting descriptors instead', self.path, exc)
        self._wds, self._notifier = wds, watching
        if watching is not None:
            self._mode = 'inotify'
            with _lock:
                _guards.add(self)
        else:
            self._fds = _fd_count()
            self._mode = 'count' if self._fds else 'period'
        # Last: a thread that sees this process's pid here finds the watches above in place.
        self._pid = os.getpid()

    def close(self) -> None:
        notifier, self._notifier = self._notifier, None
        if notifier is not None and self._pid == os.getpid():
            with _lock:
                _guards.discard(self)
            for wd in self._wds:
                notifier.unwatch(wd)
        self._wds = []
        self._pid = 0

    # ---------------------------------------------------------------- checks

    def check(self) -> None:
        """Before a write: raise if the file is not safe to write (see the module docstring).
        Nearly free unless something changed since the last scan."""
        if self._broken is not None:
            raise DatabaseSharedError(self._broken)
        if SUPPORTED and self._pid != os.getpid():
            self._start_in_this_process()  # a forked child's thread, before its connection
        notifier = self._notifier
        if notifier is not None:
            if notifier.pending():
                notifier.drain()
                with _lock:
                    for guard in _guards:
                        guard._generation += 1
        elif self._mode:  # without inotify: at least once a PERIOD, and on a count change
            now = time.monotonic()
            if now >= self._next_scan:
                self._next_scan = now + PERIOD
                self._generation += 1
            elif self._mode == 'count':
                fds = _fd_count()
                if fds != self._fds or _inode(self.shm) != self._shm_ino:
                    self._fds = fds
                    self._generation += 1
        if self._scanned != self._generation:
            self.scan()

    def scan(self) -> None:
        """Look at this process's descriptors on the file; raise if it is not safe to write."""
        generation = self._generation
        shm_open = 0
        deleted: list[str] = []
        db_gone = False
        prefix = self.path
        try:
            names = os.listdir(_FD_DIR)
        except OSError:  # pragma: no cover - /proc unmounted
            return
        for name in names:
            try:
                target = os.readlink(_FD_DIR + '/' + name)
            except OSError:  # closed meanwhile (the listing's own descriptor, for one)
                continue
            if not target.startswith(prefix):
                continue
            if target == self.shm:
                shm_open += 1
            elif target.endswith(' (deleted)'):
                base = target[:-len(' (deleted)')]
                if base in (self.shm, self.wal):
                    deleted.append(base)
                elif base == self.path:
                    db_gone = True
        if db_gone or not os.path.exists(self.path):
            if not self._db_gone_logged:
                self._db_gone_logged = True
                logger.warning(
                    'sqlq database %r was deleted or replaced while this process had it open: '
                    'what it writes now goes to a file no other process can see, and is lost '
                    'when it stops. Stop the consumers and producers of this queue and start '
                    'them again (they will create a new, empty database).', self.path)
        elif deleted:
            names = sorted({p[len(prefix):] for p in deleted})
            self._broken = (
                'the %s %s of sqlq database %r %s deleted while this process used it: '
                'another copy of the SQLite library in this process (Python\'s sqlite3 module, '
                'as used by Django or SQLAlchemy) closed its connection to the same file, '
                'which removes the WAL files under sqlq\'s connections; writes made now would '
                'be lost. %s' % (' and '.join(names), 'files' if len(names) > 1 else 'file',
                                 self.path, 'were' if len(names) > 1 else 'was',
                                 _REMEDY % _suggest(self.path)))
            raise DatabaseSharedError(self._broken)
        if shm_open > 1:
            self._shm_ino = -1  # scan again at the next write
            raise DatabaseSharedError(
                'sqlq database %r is also open through another copy of the SQLite library in '
                'this process (%d descriptors on its -shm file; Python\'s sqlite3 module, as '
                'used by Django or SQLAlchemy, is another copy: apsw has its own). Two SQLite '
                'libraries in one process do not see each other\'s locks: their writes to one '
                'file overwrite each other and are lost without an error. %s'
                % (self.path, shm_open, _REMEDY % _suggest(self.path)))
        if self._mode == 'count':
            self._shm_ino = _inode(self.shm)
        self._scanned = generation


def _inode(path: str) -> int:
    try:
        return os.stat(path).st_ino
    except OSError:
        return -1


_REMEDY = ('Give sqlq a database file of its own, e.g. SqliteQueue(%r), and never open it '
           'with the sqlite3 module in a process that uses the queue (see "Storage" in the '
           'README).')


def _suggest(path: str) -> str:
    root, ext = os.path.splitext(path)
    return root + '-queue' + (ext or '.db')
