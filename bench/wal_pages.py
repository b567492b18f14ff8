"""Where a drain's WAL bytes go: the pages each table and index wrote, per task.

Enqueues M tasks of a P-byte argument into a fresh SqliteQueue, truncates the WAL, drains them
with one Worker in this process (checkpoints deferred: every frame stays in the WAL), then
reads the WAL's frame headers and names the b-tree each page belonged to (``dbstat`` after the
enqueue and after the drain: a page freed meanwhile keeps its first owner, marked "freed";
pages of neither are pointer-map pages and page 1's header). Prints frames per commit and
bytes per task by b-tree::

    python bench/wal_pages.py                      # 4000 tasks of 10 kB
    python bench/wal_pages.py -n 4000 -p 100 --max-batch 64 --no-history
"""
from __future__ import annotations

import argparse
import collections
import os
import struct
import sys
import tempfile
import threading
import time
from typing import Dict, List, Tuple

import apsw

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlq import SqliteQueue  # noqa: E402
from sqlq.worker import MAX_BATCH, Worker  # noqa: E402

WAL_HEADER = 32
FRAME_HEADER = 24
DRAIN_TIMEOUT = 300.0


def page_owners(db: str) -> Dict[int, str]:
    """Page number -> name of the table or index that holds it (``dbstat``)."""
    conn = apsw.Connection(db)
    try:
        return {page: name for name, page in conn.execute('SELECT name, pageno FROM dbstat')}
    finally:
        conn.close()


def wal_frames(path: str) -> Tuple[int, List[Tuple[int, bool]]]:
    """The WAL's page size and its frames as ``(page number, ends a commit)``."""
    with open(path, 'rb') as f:
        wal = f.read()
    page_size: int = struct.unpack('>I', wal[8:12])[0]
    frames = []
    at = WAL_HEADER
    while at + FRAME_HEADER + page_size <= len(wal):
        page, commit = struct.unpack('>II', wal[at:at + 8])
        frames.append((page, commit != 0))
        at += FRAME_HEADER + page_size
    return page_size, frames


def measure(tasks: int, payload: int, max_batch: int, history: bool, priorities: int) -> None:
    workdir = tempfile.mkdtemp(prefix='sqlq-wal-pages-')
    db = os.path.join(workdir, 'queue.db')
    queue = SqliteQueue(db, name='wal-pages', history=history)

    @queue.task(name='sized')
    def sized(i: int, data: bytes) -> int:
        return i

    queue.storage.defer_checkpoints(True)
    data = b'x' * payload
    for start in range(0, tasks, 1000):
        queue.enqueue_many([sized.s(i, data, priority=i % priorities)
                            for i in range(start, min(tasks, start + 1000))])
    before = page_owners(db)
    conn = apsw.Connection(db)
    try:
        conn.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchall()
    finally:
        conn.close()
    stop = threading.Event()
    worker = Worker(queue, stop, name='wal-pages', idle_wait=0.01, max_batch=max_batch)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + DRAIN_TIMEOUT
    try:
        while queue.storage.result_store_size() < tasks:
            if time.monotonic() > deadline:
                raise SystemExit('the drain did not finish in %.0f s' % DRAIN_TIMEOUT)
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(30)
    owners = page_owners(db)
    for page, name in before.items():
        owners.setdefault(page, name + ' (freed)')
    page_size, frames = wal_frames(db + '-wal')
    queue.close()
    by_owner: collections.Counter[str] = collections.Counter(
        owners.get(page, 'pointer map' if page != 1 else 'page 1') for page, _ in frames)
    commits = sum(1 for _, ends in frames if ends)
    frame_bytes = page_size + FRAME_HEADER
    print('%d tasks of %d bytes, %d priorities interleaved, max_batch %d, history %s: %d frames '
          'in %d commits (%.1f frames, %.1f tasks per commit); drain WAL %.0f bytes per task'
          % (tasks, payload, priorities, max_batch, 'on' if history else 'off', len(frames),
             commits,
             len(frames) / max(commits, 1),
             tasks / max(commits, 1), len(frames) * frame_bytes / tasks))
    print('| b-tree | frames | bytes per task |\n|---|---:|---:|')
    for name, count in by_owner.most_common():
        print('| %s | %d | %.0f |' % (name, count, count * frame_bytes / tasks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('-n', '--tasks', type=int, default=4000)
    parser.add_argument('-p', '--payload', type=int, default=10240, help='bytes per task')
    parser.add_argument('--max-batch', type=int, default=MAX_BATCH)
    parser.add_argument('--no-history', action='store_true', help='SqliteQueue(history=False)')
    parser.add_argument('--priorities', type=int, default=1,
                        help='task i gets priority i %% PRIORITIES (bench/scale.py\'s priority '
                             'scenario: 10)')
    args = parser.parse_args()
    measure(args.tasks, args.payload, args.max_batch, not args.no_history, args.priorities)


if __name__ == '__main__':
    main()
