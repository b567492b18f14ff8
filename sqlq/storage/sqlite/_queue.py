"""The ready queue of SQLite storage: enqueues, claims, and the settling of claims.

A row of ``task`` is ready while ``owner IS NULL``; a claim sets its owner and counts the
attempt, and a receipt ``(id, owner, attempts)`` fences every later ack or release.
"""
from __future__ import annotations

import threading
from typing import Any, Iterable, Optional, Sequence

import apsw

from sqlq.storage._common import as_bytes
from sqlq.storage._common import limit as _limit  # a contract parameter is named limit
from sqlq.storage.sqlite import _sql
from sqlq.storage.sqlite._handoff import HAND_OFF_MAX, HandOff, IdleWorker
from sqlq.storage.sqlite._schema import ID_BAND, INLINE_MAX
from sqlq.storage.sqlite._tracking import TaskTracking
from sqlq.storage.types import Claim, ClaimedItem, Finished, Receipt, new_receipt


class ReadyQueue(HandOff, TaskTracking):
    """Enqueue, claim, ack, release and bury messages of the ready queue; list them."""

    def enqueue(self, data: bytes, priority: int = 0, key: Optional[str] = None) -> None:
        params = (self.name, priority if type(priority) is int else int(priority),
                  data if type(data) is bytes else as_bytes(data), self._clock(), key)
        if self._in_transaction():
            with self._tx() as conn:  # joins the caller's transaction
                if len(params[2]) > INLINE_MAX:
                    try:
                        _sql.insert_long(conn, _sql.ENQUEUE, params)
                    except apsw.Error as exc:
                        raise self._error(exc, 'writing') from exc
                else:
                    try:
                        self._insert_inline(conn, params)
                    except apsw.Error as exc:
                        raise self._error(exc, 'writing') from exc
                self._touch('q')
                self._rank(params[1])
            return
        # The producer's hot path, on the critical path of a task's wake-up latency: a
        # transaction of its own without _tx()'s bookkeeping (topics, change counts).
        conn = self._conn()
        self._begin(conn)
        idle: Optional[IdleWorker] = None
        try:
            listing = self._wake.listing()  # a registered idle worker has a 'q' socket
            if 'q' in listing.topics and len(params[2]) <= HAND_OFF_MAX:
                idle = self._idle_worker(conn, params)
            long = len(params[2]) > INLINE_MAX  # its own payload row (see _schema)
            if idle:
                handed = params + (idle[1], params[3], idle[0])
                if long:
                    msg_id = _sql.insert_long(conn, _sql.ENQUEUE_HANDED, handed)
                else:
                    conn.execute(_sql.ENQUEUE_HANDED, handed)
                    msg_id = conn.last_insert_rowid()
            else:
                # Idle workers are woken now, while we hold the write lock: their claims wait
                # for our commit, and their wake-up overlaps our insert and commit. Busy ones
                # learn the priority: a higher one than theirs overtakes their buffered claims.
                self._wake.notify(('q',), untopical=False, listing=listing, rank=params[1])
                if long:
                    _sql.insert_long(conn, _sql.ENQUEUE, params)
                else:
                    self._insert_inline(conn, params)
        except BaseException as exc:
            self._roll_back(conn)
            if isinstance(exc, apsw.Error):
                raise self._error(exc, 'writing') from exc
            raise
        self._commit(conn)
        if idle:
            self._hand_off(idle, msg_id, params[1], params[2])
        if None in listing.topics:
            # Waiters for any change (no topic) must see the commit. One that came after the
            # listing (taken under the write lock) sees it in data_version, at the latest when
            # its wait rechecks (Waiting.recheck_interval).
            self._wake.notify((), listing=listing)

    def _start_thread(self, local: threading.local, conn: Any) -> None:
        super()._start_thread(local, conn)
        local.bands_in_file = False  # seen rows of a priority other than 0 in their bands

    def _insert_inline(self, conn: Any, params: Sequence[Any]) -> None:
        """Insert an ENQUEUE row (a message no longer than INLINE_MAX) with its id in its
        priority's band (see _schema.id_band).

        Priority 0 first lets SQLite pick the next rowid, which is the band's own while the
        file holds no row in another band, and spares the band's lookup (~7k instructions of
        ~66k). Should the id land beyond the band, the row moves into it at once, in this
        transaction, and this connection looks its priority-0 ids up from then on."""
        local = self._local
        if params[1] or local.bands_in_file:
            conn.execute(_sql.ENQUEUE, params)
            return
        conn.execute(_sql.ENQUEUE_ANY_ID, params)
        row_id = conn.last_insert_rowid()
        if row_id >= ID_BAND:
            local.bands_in_file = True
            top = conn.execute(_sql.BAND_MAX, (0, ID_BAND)).fetchall()[0][0]
            if (top or 0) + 1 < ID_BAND:  # (a full band keeps SQLite's choice, as NEXT_ID)
                conn.execute(_sql.MOVE_ROW, ((top or 0) + 1, row_id))

    def enqueue_many(self, items: Iterable[tuple[bytes, int]],
                     keys: Optional[Sequence[Optional[str]]] = None) -> int:
        now, name = self._clock(), self.name
        params: list[Any] = []
        add = params.extend
        # Rows of (id, queue, priority, body, enqueued_at, key); the ids are set below.
        if keys is None:
            for data, priority in items:
                add((None, name, priority if type(priority) is int else int(priority),
                     data if type(data) is bytes else as_bytes(data), now, None))
        else:
            for (data, priority), key in zip(items, keys):
                add((None, name, priority if type(priority) is int else int(priority),
                     data if type(data) is bytes else as_bytes(data), now, key))
        width = 6  # parameters per row
        count = len(params) // width
        if not count:
            return 0
        chunk = _sql.INSERT_ROWS
        priorities = params[2::width]
        with self._tx() as conn:
            self._rank(max(priorities))
            try:
                ids = None
                if max(map(len, params[3::width])) <= INLINE_MAX:
                    ids = _sql.band_ids(conn, priorities)
                if ids is None:  # long messages (or a full band): row by row
                    _sql.insert_tasks(conn, [params[i + 1:i + width]
                                             for i in range(0, len(params), width)])
                else:
                    params[0::width] = ids
                    # Many rows per INSERT statement: about half the cost per row of
                    # executemany.
                    full = count - count % chunk
                    for start in range(0, full * width, chunk * width):
                        conn.execute(_sql.ENQUEUE_CHUNK, params[start:start + chunk * width])
                    if full < count:
                        rest = params[full * width:]
                        conn.executemany(_sql.ENQUEUE_WITH_ID,
                                         [rest[i:i + width] for i in range(0, len(rest), width)])
            except apsw.Error as exc:
                raise self._error(exc, 'writing') from exc
            self._touch('q')
        return count

    def _ready_hint(self, token: Optional[str]) -> bool:
        """False if a cheap read shows no ready task (nor, for a registered idle worker with
        registration ``token``, a message handed to it): an idle consumer polling an empty
        queue then never takes the write lock. Skipped right after a notification (work is
        likely; the read would only add latency) and inside a transaction."""
        local = self._local
        notified = getattr(local, 'last_wake', None) == 'notify'
        local.last_wake = None
        local.expect_commit = notified
        if notified or self._in_transaction():
            return True
        if token is None:
            return bool(self._rows(_sql.ANY_READY, (self.name,)))
        return bool(self._rows(_sql.READY_OR_HANDED, (self.name, token))[0][0])

    def dequeue(self) -> Optional[Claim]:
        claims = self.dequeue_many(1)
        return claims[0] if claims else None

    def dequeue_many(self, limit: int) -> list[Claim]:
        conn = self._conn()
        flag_prefix = self.flag_prefix
        local = self._local
        if local.handed:  # handed over by a producer with the wake-up: already claimed
            claims: list[Claim] = local.handed
            local.handed = []
            local.last_wake = None
            return claims
        token = local.idle_token
        if limit < 1 or not self._ready_hint(token):
            if limit >= 1 and token is None and getattr(local, 'serving', None):
                self._register_idle()
            return []
        owner, name, limit = self.owner_id, self.name, int(limit)
        # A claim of one is recorded as started: its worker runs it at once.
        params: tuple[Any, ...] = (owner, self._clock(), name, limit, int(limit == 1))
        if flag_prefix is not None:
            params += _sql.prefix_range(flag_prefix)
        checked = flag_prefix is not None
        handed: list[Any] = []
        if token is None and not self._in_transaction():
            # A single statement is atomic on its own, and in autocommit mode its wait for
            # the write lock goes through the busy handler. A claim wakes nobody.
            self._guard.check()
            try:
                rows = conn.execute(_sql.CLAIM_RETURNING if flag_prefix is None
                                    else _sql.CLAIM_RETURNING_FLAGGED, params).fetchall()
            except apsw.Error as exc:
                raise self._error(exc, 'claiming') from exc
            if not rows and getattr(local, 'serving', None):
                self._register_idle()
            added = 0  # RETURNING gives the attempts after the claim
        else:
            local.idle_token = None
            try:
                with self._tx() as conn:  # joins the caller's transaction, if any
                    if token is not None:  # a registered worker claims: it is idle no more
                        handed = self._take_handed(conn, token, owner)
                    rows = []
                    if limit > len(handed):
                        rows = self._do(conn, _sql.READY_HEAD if flag_prefix is None
                                        else _sql.READY_HEAD_FLAGGED,
                                        params[:3] + (limit - len(handed),) + params[4:])
                        if rows:
                            self._do(conn, _sql.CLAIM_HEAD,
                                     params[:3] + (len(rows), params[4]))
                    if not rows and not handed and getattr(local, 'serving', None):
                        self._register_idle()
            except BaseException:
                if token is not None and local.idle_token is None:
                    local.idle_token = token  # rolled back: still registered
                raise
            added = 1
        claims = [Claim(row[1], new_receipt((row[0], owner, row[2] + added)), row[2] + added,
                        row[3], row[4], row[0], bool(row[7]) if checked else None,
                        bool(row[6]), row[5])
                  for row in rows]
        if handed:  # handed messages are recorded as started (ENQUEUE_HANDED)
            claims += [Claim(row[1], new_receipt((row[0], owner, row[2])), row[2], row[3], row[4],
                             row[0], None, True)
                       for row in handed]
        return claims

    def claim_outranking(self, priority: int, limit: int) -> list[Claim]:
        """See :meth:`Storage.claim_outranking`: a producer's wake-up carries the priority of
        what it made ready (:meth:`WakeupChannel.poll_rank`), so a busy worker's check costs
        one ``poll`` until one outranks its next buffered claim."""
        local = self._local
        poll_rank = getattr(local, 'poll_rank', None)  # set in a worker session
        if poll_rank is None:
            return []
        rank = poll_rank()
        if rank is None:
            return []
        # Drained: a wake-up for a commit that may still be under way is gone, so the next
        # claim must not trust a cheap read (see _ready_hint): it takes the write lock.
        local.last_wake = 'notify'
        self._accept_hand_offs(local)  # (none expected: a busy worker is not registered)
        if rank <= priority or limit < 1 or local.idle_token is not None or \
                self._in_transaction():
            return []
        flag_prefix = self.flag_prefix
        params = (self.owner_id, self._clock(), self.name, int(limit), 0) + (
            (None, None) if flag_prefix is None else _sql.prefix_range(flag_prefix)) + (
            int(priority),)
        self._guard.check()
        local.expect_commit = True  # the producer woke us holding the lock: its commit is near
        try:
            rows = self._conn().execute(_sql.CLAIM_OUTRANKING, params).fetchall()
        except apsw.Error as exc:
            raise self._error(exc, 'claiming') from exc
        finally:
            local.expect_commit = False
        owner, checked = self.owner_id, flag_prefix is not None
        return [Claim(row[1], new_receipt((row[0], owner, row[2])), row[2], row[3], row[4],
                      row[0], bool(row[7]) if checked else None, bool(row[6]), row[5])
                for row in rows]

    def mark_started(self, receipt: Any) -> bool:
        with self._tx() as conn:
            self._do(conn, _sql.MARK_STARTED, (*Receipt.of(receipt), self.name))
            marked: bool = conn.changes() > 0
            return marked

    def release_unstarted(self, receipts: Iterable[Any]) -> int:
        params = [(*Receipt.of(receipt), self.name) for receipt in receipts]
        if not params:
            return 0
        with self._tx() as conn:
            before = conn.total_changes()
            try:
                conn.executemany(_sql.RELEASE_UNSTARTED, params)
            except apsw.Error as exc:
                raise self._error(exc, 'writing') from exc
            released: int = conn.total_changes() - before
            if released:
                self._touch('q')
        return released

    def complete_many(self, items: Sequence[tuple[Any, Optional[str], Optional[bytes],
                                                  Optional[float]]],
                      history: Optional[Sequence[Optional[Finished]]] = None) -> list[bool]:
        acks = [(*Receipt.of(receipt), self.name) for receipt, _, _, _ in items]
        if not acks:
            return []
        clock = self._clock
        with self._tx() as conn:
            try:
                if history is None:
                    acked = set(conn.executemany(_sql.ACK_RETURNING, acks))
                    held = [ack[:3] in acked for ack in acks]
                else:  # the history rows take the enqueue and claim times of the acked rows
                    times = list(conn.executemany(_sql.ACK_RETURNING_TIMES, acks))
                    if len(times) == len(acks):  # every claim held: a row per ack, in order
                        held = [True] * len(acks)
                        entries: Sequence[Optional[Finished]] = history
                        kept: Sequence[Any] = acks
                    else:
                        by_id = {row[0]: row for row in times}
                        held = [ack[0] in by_id for ack in acks]
                        entries = [entry for entry, ok in zip(history, held) if ok]
                        kept = [ack for ack, ok in zip(acks, held) if ok]
                        times = [by_id[ack[0]] for ack in kept]
                    if None in entries:
                        entries, kept, times = _recorded(entries, kept, times)
                    self._record(conn, entries, kept, times)  # type: ignore[arg-type]
                results = [(self.name, key, as_bytes(value),
                            None if ttl is None else clock() + float(ttl))
                           for ok, (_, key, value, ttl) in zip(held, items)
                           if ok and key is not None]
                if results:
                    conn.executemany(_sql.PUT_RESULT, results)
                    self._touch('d')
            except apsw.Error as exc:
                raise self._error(exc, 'writing') from exc
        return held

    def ack(self, receipt: Any) -> bool:
        msg_id, owner, attempts = Receipt.of(receipt)
        with self._tx() as conn:
            self._do(conn, _sql.ACK, (msg_id, self.name, owner, attempts))
            acked: bool = conn.changes() > 0
            return acked

    def release(self, receipt: Any) -> bool:
        msg_id, owner, attempts = Receipt.of(receipt)
        with self._tx() as conn:
            self._do(conn, _sql.RELEASE, (msg_id, self.name, owner, attempts))
            if conn.changes() > 0:
                self._touch('q')
                return True
            return False

    def bury(self, receipt: Any, reason: str) -> bool:
        msg_id, owner, attempts = Receipt.of(receipt)
        with self._tx() as conn:
            rows = self._do(conn, _sql.BURY, (msg_id, self.name, owner, attempts))
            if not rows:
                return False
            self._do(conn, _sql.ADD_DEAD_LETTER,
                     (self.name, rows[0][0], str(reason), self._clock(), rows[0][1],
                      rows[0][2], rows[0][3]))
            return True

    def queue_size(self) -> int:
        size: int = self._scalar(_sql.READY_COUNT, (self.name,))
        return size

    def claimed_size(self) -> int:
        size: int = self._scalar(_sql.CLAIMED_COUNT, (self.name,))
        return size

    def enqueued_items(self, limit: Optional[int] = None) -> list[bytes]:
        return [row[0] for row in self._rows(_sql.READY_ITEMS,
                                             (self.name, _limit(limit)))]

    def claimed_items(self) -> list[ClaimedItem]:
        return [ClaimedItem(*row) for row in self._rows(_sql.CLAIMED_ITEMS, (self.name,))]

    def flush_queue(self) -> None:
        with self._tx() as conn:
            self._do(conn, _sql.FLUSH_QUEUE, (self.name,))


def _recorded(entries: Sequence[Optional[Finished]], acks: Sequence[Any],
              times: Sequence[Any]) -> tuple[list[Finished], list[Any], list[Any]]:
    """The runs of a batch that go to the history (those with an entry), with their acks and
    message times."""
    kept = [(entry, ack, row) for entry, ack, row in zip(entries, acks, times)
            if entry is not None]
    return [k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept]
