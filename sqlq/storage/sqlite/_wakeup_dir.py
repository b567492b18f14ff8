"""Where a storage file's wake-up sockets live (see :mod:`._wakeup`): the candidate
directories, whether socket names fit under one within ``AF_UNIX``'s path limit, and making
one private to this user."""
from __future__ import annotations

import errno
import hashlib
import os
import stat
import sys
import tempfile

__all__ = ['SUFFIX', 'SUN_PATH_MAX', 'NAME_MAX', 'directories_for', 'fits', 'owned',
           'make_private_dir']

#: The file name ending of a wake-up socket.
SUFFIX = '.sock'
#: Longest ``sun_path`` (bytes, without the terminating NUL).
SUN_PATH_MAX = 107 if sys.platform.startswith('linux') else 103
#: Longest socket name: pid (Linux pid_max <= 2**22: 7 digits), thread ident (64 bits: 20
#: digits), 8 random hex digits, topic (``-x``), separators and suffix. Writers and waiters
#: must pick the same directory, so the choice depends on this bound, never on one thread's
#: actual name.
NAME_MAX = 7 + 1 + 20 + 1 + 8 + 2 + len(SUFFIX)


def directories_for(path: str) -> list[str]:
    """Candidate wake-up directories for the file at ``path``, best first.

    ``<real path>.sqlq-wake`` beside the file, then ``sqlq-wake-<uid>-<hash of the real
    path>`` under :func:`tempfile.gettempdir`.
    """
    real = os.path.realpath(path)
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:20]
    uid = os.getuid() if hasattr(os, 'getuid') else 0
    return [real + '.sqlq-wake',
            os.path.join(tempfile.gettempdir(), 'sqlq-wake-%d-%s' % (uid, digest))]


def fits(directory: str) -> bool:
    """Whether every socket name fits under ``directory`` within the ``AF_UNIX`` limit."""
    return len(os.fsencode(directory)) + 1 + NAME_MAX <= SUN_PATH_MAX


def owned(st: os.stat_result) -> bool:
    """Whether a file with status ``st`` belongs to this user."""
    return not hasattr(os, 'getuid') or st.st_uid == os.getuid()


def make_private_dir(directory: str) -> None:
    """Create ``directory`` (mode 0700) unless it exists; make sure it is a real directory
    owned by this user and private to it. ``OSError`` if it cannot be used."""
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode):
        raise OSError(errno.ENOTDIR, 'not a directory (or a symlink)', directory)
    if not owned(st):
        raise OSError(errno.EPERM, 'owned by another user', directory)
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(directory, 0o700)
