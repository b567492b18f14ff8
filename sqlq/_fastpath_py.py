"""Pure-Python twin of the compiled ``sqlq._fastpath`` codec.

Same functions, signatures, results, exceptions and exception messages as ``_fastpath.pyx``;
``tests/fastpath/test_codec.py`` holds the two to that. Do not import this module directly to
encode or decode: go through ``sqlq._accel``, which picks the implementation once.

The wire format is described (and its constants defined) in ``sqlq._wire``.
"""
from __future__ import annotations

import heapq
import os
import struct
import time
from typing import Any, Iterable, List, Optional, Sequence, Tuple

from sqlq import _wire
from sqlq.exceptions import MessageDecodeError

__all__ = ['encode_message', 'encode_messages', 'decode_message', 'ClaimBuffer',
           'new_task_id', 'new_task_ids']

#: A decoded message: the 14 values of ``encode_message``'s parameters, in order.
Message = Tuple[str, str, bytes, int, int, float, float, Optional[float], Optional[float],
                Optional[float], Optional[bytes], Optional[bytes], Optional[bytes],
                Optional[bytes]]

_MAGIC = _wire.MAGIC
_VERSION = _wire.VERSION
_KNOWN_FLAGS = _wire.KNOWN_FLAGS
_HEADER_SIZE = _wire.HEADER_SIZE
_I64_MIN, _I64_MAX = _wire.I64_MIN, _wire.I64_MAX
_I32_MIN, _I32_MAX = _wire.I32_MIN, _wire.I32_MAX
_U32_MAX = _wire.U32_MAX

_HEADER = struct.Struct(_wire.HEADER_FORMAT)
_F64 = struct.Struct('<d')
_U32 = struct.Struct('<I')
_pack_f64 = _F64.pack
_pack_u32 = _U32.pack
_unpack_f64 = _F64.unpack_from
_unpack_u32 = _U32.unpack_from
assert _HEADER.size == _HEADER_SIZE and _F64.size == _wire.F64_SIZE and _U32.size == _wire.LEN_SIZE

# (flag, name) of the optional f64 fields and of the optional byte fields, in wire order.
_OPT_FLOATS = ((_wire.FLAG_ETA, 'eta'), (_wire.FLAG_EXPIRES_AT, 'expires_at'),
               (_wire.FLAG_TIMEOUT, 'timeout'))
_OPT_BYTES = ((_wire.FLAG_ON_COMPLETE, 'on_complete'), (_wire.FLAG_ON_ERROR, 'on_error'),
              (_wire.FLAG_EXTRA, 'extra'), (_wire.FLAG_TRACE, 'trace'))
# Header fields after the flags, for the truncation messages: (name, offset, size).
_HEADER_FIELDS = (('priority', 4, 8), ('retries', 12, 4),
                  ('retry_delay', 16, 8), ('retry_backoff', 24, 8))


def _int_field(value: Any, field: str, lo: int, hi: int, kind: str) -> int:
    if not isinstance(value, int):
        raise TypeError('%s must be int, not %s' % (field, type(value).__name__))
    if value < lo or value > hi:
        raise OverflowError('%s out of range for %s: %d' % (field, kind, value))
    return value


def _float_field(value: Any, field: str, optional: bool = False) -> float:
    if isinstance(value, float):
        return value
    if not isinstance(value, int):
        raise TypeError('%s must be %s, not %s' % (field, 'float, int or None' if optional
                                                    else 'float or int', type(value).__name__))
    return float(value)  # OverflowError for an int too large to convert, as PyFloat_AsDouble


def _check_len(n: int, field: str) -> None:
    if n > _U32_MAX:
        raise OverflowError('%s too long: %d bytes (max %d)' % (field, n, _U32_MAX))


def encode_message(id: str, name: str, payload: bytes, priority: int, retries: int,
                   retry_delay: float, retry_backoff: float, eta: Optional[float],
                   expires_at: Optional[float], timeout: Optional[float],
                   on_complete: Optional[bytes], on_error: Optional[bytes],
                   extra: Optional[bytes], trace: Optional[bytes] = None) -> bytes:
    """Encode one task message; see ``sqlq._wire`` for the layout."""
    if not isinstance(id, str):
        raise TypeError('id must be str, not %s' % type(id).__name__)
    id_b = id.encode('utf-8')
    _check_len(len(id_b), 'id')
    if not isinstance(name, str):
        raise TypeError('name must be str, not %s' % type(name).__name__)
    name_b = name.encode('utf-8')
    _check_len(len(name_b), 'name')
    if not isinstance(payload, bytes):
        raise TypeError('payload must be bytes, not %s' % type(payload).__name__)
    _check_len(len(payload), 'payload')
    _int_field(priority, 'priority', _I64_MIN, _I64_MAX, 'i64')
    _int_field(retries, 'retries', _I32_MIN, _I32_MAX, 'i32')
    retry_delay = _float_field(retry_delay, 'retry_delay')
    retry_backoff = _float_field(retry_backoff, 'retry_backoff')

    parts = [b'']                 # the header, packed once the flags are known
    flags = 0
    for (flag, field), number in zip(_OPT_FLOATS, (eta, expires_at, timeout)):
        if number is not None:
            parts.append(_pack_f64(_float_field(number, field, True)))
            flags |= flag
    parts += (_pack_u32(len(id_b)), id_b, _pack_u32(len(name_b)), name_b,
              _pack_u32(len(payload)), payload)
    for (flag, field), value in zip(_OPT_BYTES, (on_complete, on_error, extra, trace)):
        if value is not None:
            if not isinstance(value, bytes):
                raise TypeError('%s must be bytes or None, not %s'
                                % (field, type(value).__name__))
            _check_len(len(value), field)
            parts.append(_pack_u32(len(value)))
            parts.append(value)
            flags |= flag
    parts[0] = _HEADER.pack(_MAGIC, _VERSION, flags, priority, retries,
                            retry_delay, retry_backoff)
    return b''.join(parts)


def encode_messages(ids: Sequence[str], name: str, payloads: Sequence[bytes], priority: int,
                    retries: int, retry_delay: float, retry_backoff: float,
                    eta: Optional[float], expires_at: Optional[float], timeout: Optional[float],
                    trace: Optional[bytes] = None) -> List[bytes]:
    """``encode_message`` of each (id, payload) pair of ``ids`` and ``payloads`` (sequences of
    one length, else ValueError), every other field shared and no links or extra fields: the
    list of the messages, or the error of the first message that fails."""
    ids, payloads = list(ids), list(payloads)
    if len(ids) != len(payloads):
        raise ValueError('ids and payloads differ in length: %d and %d'
                         % (len(ids), len(payloads)))
    return [encode_message(id, name, payload, priority, retries, retry_delay, retry_backoff,
                           eta, expires_at, timeout, None, None, None, trace)
            for id, payload in zip(ids, payloads)]


def _truncated(field: str, need: int, offset: int, size: int) -> MessageDecodeError:
    return MessageDecodeError('message truncated at %s: need %d bytes at offset %d, have %d'
                              % (field, need, offset, max(size - offset, 0)))


def _check_header(data: bytes, size: int) -> None:
    """Raise the precise error for a bad or short header (the cold path)."""
    if size < 1:
        raise _truncated('magic', 1, 0, size)
    if data[0] != _MAGIC:
        raise MessageDecodeError('bad magic byte 0x%02x (expected 0x%02x)' % (data[0], _MAGIC))
    if size < 2:
        raise _truncated('version', 1, 1, size)
    if data[1] != _VERSION:
        raise MessageDecodeError('unknown format version %d (supported: %d)'
                                 % (data[1], _VERSION))
    if size < 4:
        raise _truncated('flags', 2, 2, size)
    flags = data[2] | (data[3] << 8)
    if flags & ~_KNOWN_FLAGS:
        raise MessageDecodeError('unknown flag bits 0x%04x' % (flags & ~_KNOWN_FLAGS))
    for field, offset, need in _HEADER_FIELDS:
        if size < offset + need:
            raise _truncated(field, need, offset, size)


def _read_bytes(data: bytes, pos: int, size: int, field: str) -> Tuple[int, int]:
    if size - pos < 4:
        raise _truncated('length of ' + field, 4, pos, size)
    (n,) = _unpack_u32(data, pos)
    pos += 4
    if size - pos < n:
        raise _truncated(field, n, pos, size)
    return pos + n, pos


def _read_str(data: bytes, pos: int, size: int, field: str) -> Tuple[int, str]:
    end, start = _read_bytes(data, pos, size, field)
    try:
        return end, data[start:end].decode('utf-8')
    except UnicodeDecodeError as exc:
        raise MessageDecodeError('invalid utf-8 in %s at offset %d' % (field, start)) from exc


def decode_message(data: Any) -> Message:
    """Decode one task message into the 14-tuple of ``encode_message``'s arguments."""
    if type(data) is not bytes:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError('data must be bytes, bytearray or memoryview, not %s'
                            % type(data).__name__)
        data = bytes(data)
    size = len(data)
    if size < _HEADER_SIZE or data[0] != _MAGIC or data[1] != _VERSION:
        _check_header(data, size)
    magic, version, flags, priority, retries, retry_delay, retry_backoff = \
        _HEADER.unpack_from(data)
    if flags & ~_KNOWN_FLAGS:
        _check_header(data, size)
    pos = _HEADER_SIZE

    opt_floats = []
    for flag, field in _OPT_FLOATS:
        if flags & flag:
            if size - pos < 8:
                raise _truncated(field, 8, pos, size)
            opt_floats.append(_unpack_f64(data, pos)[0])
            pos += 8
        else:
            opt_floats.append(None)

    pos, id_ = _read_str(data, pos, size, 'id')
    pos, name = _read_str(data, pos, size, 'name')
    end, start = _read_bytes(data, pos, size, 'payload')
    payload = data[start:end]
    pos = end
    opt_bytes = []
    for flag, field in _OPT_BYTES:
        if flags & flag:
            end, start = _read_bytes(data, pos, size, field)
            opt_bytes.append(data[start:end])
            pos = end
        else:
            opt_bytes.append(None)
    if pos != size:
        raise MessageDecodeError('%d trailing bytes after end of message at offset %d'
                                 % (size - pos, pos))
    return (id_, name, payload, priority, retries, retry_delay, retry_backoff,
            opt_floats[0], opt_floats[1], opt_floats[2],
            opt_bytes[0], opt_bytes[1], opt_bytes[2], opt_bytes[3])


class ClaimBuffer:
    """Claimed-but-unstarted items, taken highest ``priority`` first, then lowest ``seq``.

    A worker's local queue between a batch claim and the runs: ``extend`` takes the claims
    of one batch (objects with ``priority`` and ``seq`` attributes, e.g. ``storage.Claim``),
    ``pop`` returns the next one to run, ``drain`` empties it in run order.
    """

    __slots__ = ('_heap', '_count')

    def __init__(self) -> None:
        self._heap: List[Tuple[int, int, int, Any]] = []
        self._count = 0

    def __len__(self) -> int:
        return len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)

    def push(self, priority: int, seq: int, item: Any) -> None:
        """Add ``item`` with its ordering key."""
        p = _int64(priority, 'priority')
        s = _int64(seq, 'seq')
        if p == _I64_MIN:  # its negation, the heap key, would not fit the compiled twin's int64
            raise OverflowError('priority out of range: %d' % priority)
        self._count += 1
        heapq.heappush(self._heap, (-p, s, self._count, item))

    def extend(self, claims: Iterable[Any]) -> None:
        """Add each claim in ``claims`` under its own ``priority`` and ``seq``."""
        for claim in claims:
            self.push(claim.priority, claim.seq, claim)

    def pop(self) -> Any:
        """Remove and return the next item; IndexError if empty."""
        if not self._heap:
            raise IndexError('pop from an empty ClaimBuffer')
        return heapq.heappop(self._heap)[3]

    def drain(self) -> List[Any]:
        """Remove and return every item, in the order ``pop`` would give them."""
        heap, self._heap = self._heap, []
        heap.sort()
        return [entry[3] for entry in heap]


def _int64(value: Any, field: str) -> int:
    if not isinstance(value, int):
        raise TypeError('%s must be int, not %s' % (field, type(value).__name__))
    if not _I64_MIN <= value <= _I64_MAX:
        raise OverflowError('%s out of range: %d' % (field, value))
    return value


def new_task_id() -> str:
    """A version-7 UUID as a str (RFC 9562: 48-bit Unix time in ms, then 74 random bits).

    Ids made later sort later, so results -- stored under their task's id -- are written
    near each other in the database instead of all over its key index.
    """
    return _text(bytearray(os.urandom(16)), time.time_ns() // 1000000)


def _text(raw: bytearray, ms: int) -> str:
    """The id of 16 bytes ``raw`` (random bytes from the 7th on) with timestamp ``ms``: the
    version and variant bits set, as text."""
    raw[:6] = ms.to_bytes(6, 'big')
    raw[6] = (raw[6] & 0x0F) | 0x70  # version 7
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 9562 variant
    h = raw.hex()
    return '%s-%s-%s-%s-%s' % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def new_task_ids(n: int) -> List[str]:
    """``n`` task ids, each later in the list sorting later (so a batch's rows go to the end of
    the message-key index in order): version-7 UUIDs whose 12 bits after the version (random
    in ``new_task_id``'s) count on within a millisecond, from a random start below 2048, as
    RFC 9562's "monotonic random" method 1; a count past 4095 carries into the timestamp,
    which may then run ahead of the clock by a millisecond per 2048 ids."""
    if not isinstance(n, int):
        raise TypeError('n must be int, not %s' % type(n).__name__)
    if n < 0:
        raise ValueError('n must not be negative: %d' % n)
    ids = []
    last = 0
    for _ in range(n):
        raw = bytearray(os.urandom(16))
        ms = time.time_ns() // 1000000
        value = (ms << 12) | ((raw[6] & 0x07) << 8) | raw[7] if ms << 12 > last else last + 1
        last = value
        raw[6], raw[7] = (value >> 8) & 0x0F, value & 0xFF
        ids.append(_text(raw, value >> 12))
    return ids
