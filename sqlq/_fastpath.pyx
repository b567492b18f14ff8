# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# cython: cdivision=True, binding=True, embedsignature=True
"""Compiled task-message codec (the hot path); ``sqlq._fastpath_py`` is its pure twin.

Same functions, signatures, results, exceptions and exception messages as the twin;
``tests/fastpath/test_codec.py`` holds the two to that. Go through ``sqlq._accel`` to use either.

Encoding sizes the message first and writes it straight into the one ``bytes`` object it
returns; decoding reads from the buffer of the ``bytes`` it is given. The wire constants come
from ``sqlq._wire`` at import (module-level C variables, so as fast as literals).
"""
from libc.stdint cimport int32_t, int64_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.float cimport PyFloat_AS_DOUBLE

from sqlq import _wire
from sqlq.exceptions import MessageDecodeError

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object unicode, Py_ssize_t* size) except NULL
    bytes PyBytes_FromStringAndSize(const char* v, Py_ssize_t size)
    object PyUnicode_DecodeUTF8(const char* s, Py_ssize_t size, const char* errors)
    double PyFloat_AsDouble(object) except? -1.0
    long long PyLong_AsLongLong(object) except? -1
    object PyFloat_FromDouble(double)
    object PyLong_FromLongLong(long long)

__all__ = ['encode_message', 'encode_messages', 'decode_message', 'ClaimBuffer',
           'new_task_id', 'new_task_ids']

cdef unsigned char MAGIC = _wire.MAGIC
cdef unsigned char VERSION = _wire.VERSION
cdef uint16_t FLAG_ETA = _wire.FLAG_ETA
cdef uint16_t FLAG_EXPIRES_AT = _wire.FLAG_EXPIRES_AT
cdef uint16_t FLAG_TIMEOUT = _wire.FLAG_TIMEOUT
cdef uint16_t FLAG_ON_COMPLETE = _wire.FLAG_ON_COMPLETE
cdef uint16_t FLAG_ON_ERROR = _wire.FLAG_ON_ERROR
cdef uint16_t FLAG_EXTRA = _wire.FLAG_EXTRA
cdef uint16_t FLAG_TRACE = _wire.FLAG_TRACE
cdef uint16_t KNOWN_FLAGS = _wire.KNOWN_FLAGS
cdef Py_ssize_t HEADER_SIZE = _wire.HEADER_SIZE
cdef long long I32_MIN = _wire.I32_MIN
cdef long long I32_MAX = _wire.I32_MAX
cdef Py_ssize_t U32_MAX = _wire.U32_MAX

# The C layout below hard-codes the header's field offsets; make sure _wire agrees.
if _wire.HEADER_FORMAT != '<BBHqidd' or _wire.HEADER_SIZE != 32 or _wire.F64_SIZE != 8 \
        or _wire.LEN_SIZE != 4:
    raise ImportError('sqlq._fastpath was built for another sqlq._wire layout: rebuild it')


# ---- little-endian stores and loads (GCC/Clang merge these into single moves) -------------

cdef inline void _put_u16(unsigned char* p, uint16_t v) noexcept nogil:
    p[0] = <unsigned char>(v)
    p[1] = <unsigned char>(v >> 8)


cdef inline void _put_u32(unsigned char* p, uint32_t v) noexcept nogil:
    p[0] = <unsigned char>(v)
    p[1] = <unsigned char>(v >> 8)
    p[2] = <unsigned char>(v >> 16)
    p[3] = <unsigned char>(v >> 24)


cdef inline void _put_u64(unsigned char* p, uint64_t v) noexcept nogil:
    _put_u32(p, <uint32_t>v)
    _put_u32(p + 4, <uint32_t>(v >> 32))


cdef inline void _put_f64(unsigned char* p, double d) noexcept nogil:
    cdef uint64_t v
    memcpy(&v, &d, 8)
    _put_u64(p, v)


cdef inline uint32_t _get_u32(const unsigned char* p) noexcept nogil:
    return (<uint32_t>p[0]) | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) \
        | (<uint32_t>p[3] << 24)


cdef inline uint64_t _get_u64(const unsigned char* p) noexcept nogil:
    return (<uint64_t>_get_u32(p)) | (<uint64_t>_get_u32(p + 4) << 32)


cdef inline double _get_f64(const unsigned char* p) noexcept nogil:
    cdef uint64_t v = _get_u64(p)
    cdef double d
    memcpy(&d, &v, 8)
    return d


# ---- encode -------------------------------------------------------------------------------

cdef inline double _as_double(object value, str field, bint optional) except? -1.0:
    if type(value) is float:
        return PyFloat_AS_DOUBLE(value)
    if not isinstance(value, (float, int)):
        if optional:
            raise TypeError('%s must be float, int or None, not %s'
                            % (field, type(value).__name__))
        raise TypeError('%s must be float or int, not %s' % (field, type(value).__name__))
    return PyFloat_AsDouble(value)  # OverflowError for an int too large to convert


cdef inline int _check_len(Py_ssize_t n, str field) except -1:
    if n > U32_MAX:
        raise OverflowError('%s too long: %d bytes (max %d)' % (field, n, U32_MAX))
    return 0


cdef inline int _check_opt_bytes(object value, str field) except -1:
    if not isinstance(value, bytes):
        raise TypeError('%s must be bytes or None, not %s' % (field, type(value).__name__))
    return _check_len(PyBytes_GET_SIZE(value), field)


cdef inline const char* _utf8(object value, str field, Py_ssize_t* n) except NULL:
    if not isinstance(value, str):
        raise TypeError('%s must be str, not %s' % (field, type(value).__name__))
    cdef const char* p = PyUnicode_AsUTF8AndSize(value, n)
    _check_len(n[0], field)
    return p


cdef inline Py_ssize_t _payload_size(object payload) except -1:
    if not isinstance(payload, bytes):
        raise TypeError('payload must be bytes, not %s' % type(payload).__name__)
    _check_len(PyBytes_GET_SIZE(payload), 'payload')
    return PyBytes_GET_SIZE(payload)


cdef inline unsigned char* _put_field(unsigned char* p, const char* src, Py_ssize_t n) noexcept:
    _put_u32(p, <uint32_t>n)
    memcpy(p + 4, src, n)
    return p + 4 + n


def encode_message(id, name, payload, priority, retries, retry_delay, retry_backoff,
                   eta, expires_at, timeout, on_complete, on_error, extra, trace=None):
    """Encode one task message; see ``sqlq._wire`` for the layout."""
    cdef Py_ssize_t id_n, name_n, payload_n, total
    cdef const char* id_p
    cdef const char* name_p
    cdef long long prio, retr
    cdef double delay, backoff, eta_d = 0.0, exp_d = 0.0, timeout_d = 0.0
    cdef uint16_t flags = 0
    cdef bytes out
    cdef unsigned char* p

    id_p = _utf8(id, 'id', &id_n)
    name_p = _utf8(name, 'name', &name_n)
    payload_n = _payload_size(payload)

    if not isinstance(priority, int):
        raise TypeError('priority must be int, not %s' % type(priority).__name__)
    try:
        prio = PyLong_AsLongLong(priority)
    except OverflowError:
        raise OverflowError('priority out of range for i64: %d' % priority) from None
    if not isinstance(retries, int):
        raise TypeError('retries must be int, not %s' % type(retries).__name__)
    try:
        retr = PyLong_AsLongLong(retries)
    except OverflowError:
        retr = I32_MAX + 1
    if retr < I32_MIN or retr > I32_MAX:
        raise OverflowError('retries out of range for i32: %d' % retries)
    delay = _as_double(retry_delay, 'retry_delay', False)
    backoff = _as_double(retry_backoff, 'retry_backoff', False)

    total = HEADER_SIZE + 12 + id_n + name_n + payload_n
    if eta is not None:
        eta_d = _as_double(eta, 'eta', True)
        flags |= FLAG_ETA
        total += 8
    if expires_at is not None:
        exp_d = _as_double(expires_at, 'expires_at', True)
        flags |= FLAG_EXPIRES_AT
        total += 8
    if timeout is not None:
        timeout_d = _as_double(timeout, 'timeout', True)
        flags |= FLAG_TIMEOUT
        total += 8
    if on_complete is not None:
        _check_opt_bytes(on_complete, 'on_complete')
        flags |= FLAG_ON_COMPLETE
        total += 4 + PyBytes_GET_SIZE(on_complete)
    if on_error is not None:
        _check_opt_bytes(on_error, 'on_error')
        flags |= FLAG_ON_ERROR
        total += 4 + PyBytes_GET_SIZE(on_error)
    if extra is not None:
        _check_opt_bytes(extra, 'extra')
        flags |= FLAG_EXTRA
        total += 4 + PyBytes_GET_SIZE(extra)
    if trace is not None:
        _check_opt_bytes(trace, 'trace')
        flags |= FLAG_TRACE
        total += 4 + PyBytes_GET_SIZE(trace)

    out = PyBytes_FromStringAndSize(NULL, total)
    p = <unsigned char*>PyBytes_AS_STRING(out)
    p[0] = MAGIC
    p[1] = VERSION
    _put_u16(p + 2, flags)
    _put_u64(p + 4, <uint64_t>prio)
    _put_u32(p + 12, <uint32_t>retr)
    _put_f64(p + 16, delay)
    _put_f64(p + 24, backoff)
    p += HEADER_SIZE
    if flags & FLAG_ETA:
        _put_f64(p, eta_d)
        p += 8
    if flags & FLAG_EXPIRES_AT:
        _put_f64(p, exp_d)
        p += 8
    if flags & FLAG_TIMEOUT:
        _put_f64(p, timeout_d)
        p += 8
    p = _put_field(p, id_p, id_n)
    p = _put_field(p, name_p, name_n)
    p = _put_field(p, PyBytes_AS_STRING(payload), payload_n)
    if flags & FLAG_ON_COMPLETE:
        p = _put_field(p, PyBytes_AS_STRING(on_complete), PyBytes_GET_SIZE(on_complete))
    if flags & FLAG_ON_ERROR:
        p = _put_field(p, PyBytes_AS_STRING(on_error), PyBytes_GET_SIZE(on_error))
    if flags & FLAG_EXTRA:
        p = _put_field(p, PyBytes_AS_STRING(extra), PyBytes_GET_SIZE(extra))
    if flags & FLAG_TRACE:
        p = _put_field(p, PyBytes_AS_STRING(trace), PyBytes_GET_SIZE(trace))
    return out


def encode_messages(ids, name, payloads, priority, retries, retry_delay, retry_backoff,
                    eta, expires_at, timeout, trace=None):
    """``encode_message`` of each (id, payload) pair of ``ids`` and ``payloads`` (sequences of
    one length, else ValueError), every other field shared and no links or extra fields: the
    list of the messages, or the error of the first message that fails."""
    cdef Py_ssize_t count, index, prefix_n, name_n, suffix_n, id_n, payload_n
    cdef bytes first, out
    cdef const char* src
    cdef const char* id_p
    cdef unsigned char* p
    cdef list result
    if not isinstance(ids, list):
        ids = list(ids)
    if not isinstance(payloads, list):
        payloads = list(payloads)
    count = len(<list>ids)
    if count != len(<list>payloads):
        raise ValueError('ids and payloads differ in length: %d and %d'
                         % (count, len(<list>payloads)))
    if not count:
        return []
    # The first message checks every shared field (with encode_message's errors); the others
    # copy its header, name and trace, and differ only in their id and payload.
    first = encode_message((<list>ids)[0], name, (<list>payloads)[0], priority, retries,
                           retry_delay, retry_backoff, eta, expires_at, timeout, None, None,
                           None, trace)
    result = [first]
    src = PyBytes_AS_STRING(first)
    prefix_n = HEADER_SIZE + 8 * ((eta is not None) + (expires_at is not None)
                                  + (timeout is not None))
    PyUnicode_AsUTF8AndSize(name, &name_n)
    suffix_n = 0 if trace is None else 4 + PyBytes_GET_SIZE(trace)
    id_n = <Py_ssize_t>_get_u32(<const unsigned char*>src + prefix_n)
    name_n += 4  # with its length
    cdef const char* name_src = src + prefix_n + 4 + id_n
    cdef const char* suffix_src = src + PyBytes_GET_SIZE(first) - suffix_n
    for index in range(1, count):
        id_p = _utf8((<list>ids)[index], 'id', &id_n)
        payload = (<list>payloads)[index]
        payload_n = _payload_size(payload)
        out = PyBytes_FromStringAndSize(NULL, prefix_n + 8 + id_n + name_n + payload_n
                                        + suffix_n)
        p = <unsigned char*>PyBytes_AS_STRING(out)
        memcpy(p, src, prefix_n)
        p = _put_field(p + prefix_n, id_p, id_n)
        memcpy(p, name_src, name_n)
        p = _put_field(p + name_n, PyBytes_AS_STRING(payload), payload_n)
        memcpy(p, suffix_src, suffix_n)
        result.append(out)
    return result


# ---- decode -------------------------------------------------------------------------------

cdef object _truncated(str field, Py_ssize_t need, Py_ssize_t offset, Py_ssize_t size):
    return MessageDecodeError('message truncated at %s: need %d bytes at offset %d, have %d'
                              % (field, need, offset, max(size - offset, 0)))


cdef int _check_header(const unsigned char* p, Py_ssize_t size) except -1:
    """Raise the precise error for a bad or short header (the cold path)."""
    cdef uint16_t flags
    if size < 1:
        raise _truncated('magic', 1, 0, size)
    if p[0] != MAGIC:
        raise MessageDecodeError('bad magic byte 0x%02x (expected 0x%02x)' % (p[0], MAGIC))
    if size < 2:
        raise _truncated('version', 1, 1, size)
    if p[1] != VERSION:
        raise MessageDecodeError('unknown format version %d (supported: %d)' % (p[1], VERSION))
    if size < 4:
        raise _truncated('flags', 2, 2, size)
    flags = <uint16_t>(p[2] | (p[3] << 8))
    if flags & ~KNOWN_FLAGS:
        raise MessageDecodeError('unknown flag bits 0x%04x' % (flags & ~KNOWN_FLAGS))
    if size < 12:
        raise _truncated('priority', 8, 4, size)
    if size < 16:
        raise _truncated('retries', 4, 12, size)
    if size < 24:
        raise _truncated('retry_delay', 8, 16, size)
    if size < 32:
        raise _truncated('retry_backoff', 8, 24, size)
    return 0


cdef inline Py_ssize_t _read_len(const unsigned char* p, Py_ssize_t pos, Py_ssize_t size,
                                 str field) except -1:
    """Check the u32 length at ``pos`` and the bytes it announces; return that length."""
    cdef Py_ssize_t n
    if size - pos < 4:
        raise _truncated('length of ' + field, 4, pos, size)
    n = <Py_ssize_t>_get_u32(p + pos)
    if size - pos - 4 < n:
        raise _truncated(field, n, pos + 4, size)
    return n


cdef inline object _read_str(const unsigned char* p, Py_ssize_t start, Py_ssize_t n,
                             str field):
    try:
        return PyUnicode_DecodeUTF8(<const char*>(p + start), n, NULL)
    except UnicodeDecodeError as exc:
        raise MessageDecodeError('invalid utf-8 in %s at offset %d' % (field, start)) from exc


cdef inline object _opt_f64(const unsigned char* p, Py_ssize_t* pos, Py_ssize_t size,
                            uint16_t flags, uint16_t flag, str field):
    if not (flags & flag):
        return None
    if size - pos[0] < 8:
        raise _truncated(field, 8, pos[0], size)
    value = PyFloat_FromDouble(_get_f64(p + pos[0]))
    pos[0] += 8
    return value


cdef inline object _opt_bytes(const unsigned char* p, Py_ssize_t* pos, Py_ssize_t size,
                              uint16_t flags, uint16_t flag, str field):
    cdef Py_ssize_t n
    if not (flags & flag):
        return None
    n = _read_len(p, pos[0], size, field)
    value = PyBytes_FromStringAndSize(<const char*>(p + pos[0] + 4), n)
    pos[0] += 4 + n
    return value


def decode_message(data):
    """Decode one task message into the 14-tuple of ``encode_message``'s arguments."""
    cdef const unsigned char* p
    cdef Py_ssize_t size, pos, n
    cdef uint16_t flags

    if type(data) is not bytes:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError('data must be bytes, bytearray or memoryview, not %s'
                            % type(data).__name__)
        data = bytes(data)
    p = <const unsigned char*>PyBytes_AS_STRING(data)
    size = PyBytes_GET_SIZE(data)
    if size < HEADER_SIZE or p[0] != MAGIC or p[1] != VERSION:
        _check_header(p, size)
    flags = <uint16_t>(p[2] | (p[3] << 8))
    if flags & ~KNOWN_FLAGS:
        _check_header(p, size)

    priority = PyLong_FromLongLong(<long long><int64_t>_get_u64(p + 4))
    retries = PyLong_FromLongLong(<long long><int32_t>_get_u32(p + 12))
    retry_delay = PyFloat_FromDouble(_get_f64(p + 16))
    retry_backoff = PyFloat_FromDouble(_get_f64(p + 24))
    pos = HEADER_SIZE
    eta = _opt_f64(p, &pos, size, flags, FLAG_ETA, 'eta')
    expires_at = _opt_f64(p, &pos, size, flags, FLAG_EXPIRES_AT, 'expires_at')
    timeout = _opt_f64(p, &pos, size, flags, FLAG_TIMEOUT, 'timeout')

    n = _read_len(p, pos, size, 'id')
    id_ = _read_str(p, pos + 4, n, 'id')
    pos += 4 + n
    n = _read_len(p, pos, size, 'name')
    name = _read_str(p, pos + 4, n, 'name')
    pos += 4 + n
    n = _read_len(p, pos, size, 'payload')
    payload = PyBytes_FromStringAndSize(<const char*>(p + pos + 4), n)
    pos += 4 + n
    on_complete = _opt_bytes(p, &pos, size, flags, FLAG_ON_COMPLETE, 'on_complete')
    on_error = _opt_bytes(p, &pos, size, flags, FLAG_ON_ERROR, 'on_error')
    extra = _opt_bytes(p, &pos, size, flags, FLAG_EXTRA, 'extra')
    trace = _opt_bytes(p, &pos, size, flags, FLAG_TRACE, 'trace')
    if pos != size:
        raise MessageDecodeError('%d trailing bytes after end of message at offset %d'
                                 % (size - pos, pos))
    return (id_, name, payload, priority, retries, retry_delay, retry_backoff,
            eta, expires_at, timeout, on_complete, on_error, extra, trace)


# ---------------------------------------------------------------------------- claim buffer

from libc.stdlib cimport malloc, realloc, free
from cpython.ref cimport PyObject, Py_INCREF, Py_XDECREF

cdef struct _Slot:
    int64_t neg_priority
    int64_t seq
    int64_t order
    PyObject* item


cdef inline bint _before(_Slot* a, _Slot* b) noexcept nogil:
    if a.neg_priority != b.neg_priority:
        return a.neg_priority < b.neg_priority
    if a.seq != b.seq:
        return a.seq < b.seq
    return a.order < b.order


cdef inline int64_t _as_int64(object value, str field) except? -1:
    if not isinstance(value, int):
        raise TypeError('%s must be int, not %s' % (field, type(value).__name__))
    if not _wire.I64_MIN <= value <= _wire.I64_MAX:
        raise OverflowError('%s out of range: %d' % (field, value))
    return PyLong_AsLongLong(value)


cdef class ClaimBuffer:
    """Claimed-but-unstarted items, taken highest ``priority`` first, then lowest ``seq``.

    A worker's local queue between a batch claim and the runs: ``extend`` takes the claims
    of one batch (objects with ``priority`` and ``seq`` attributes, e.g. ``storage.Claim``),
    ``pop`` returns the next one to run, ``drain`` empties it in run order.
    """

    cdef _Slot* _heap
    cdef Py_ssize_t _size
    cdef Py_ssize_t _capacity
    cdef int64_t _count

    def __cinit__(self):
        self._heap = NULL
        self._size = 0
        self._capacity = 0
        self._count = 0

    def __dealloc__(self):
        cdef Py_ssize_t i
        for i in range(self._size):
            Py_XDECREF(self._heap[i].item)
        free(self._heap)

    def __len__(self):
        return self._size

    def __bool__(self):
        return self._size > 0

    cdef int _grow(self) except -1:
        cdef Py_ssize_t capacity = self._capacity * 2 if self._capacity else 32
        cdef _Slot* heap = <_Slot*>realloc(self._heap, capacity * sizeof(_Slot))
        if heap == NULL:
            raise MemoryError()
        self._heap = heap
        self._capacity = capacity
        return 0

    cdef int _push(self, int64_t neg_priority, int64_t seq, object item) except -1:
        if self._size == self._capacity:
            self._grow()
        cdef Py_ssize_t i = self._size
        cdef Py_ssize_t parent
        cdef _Slot slot
        self._count += 1
        slot.neg_priority = neg_priority
        slot.seq = seq
        slot.order = self._count
        Py_INCREF(item)
        slot.item = <PyObject*>item
        while i > 0:
            parent = (i - 1) >> 1
            if not _before(&slot, &self._heap[parent]):
                break
            self._heap[i] = self._heap[parent]
            i = parent
        self._heap[i] = slot
        self._size += 1
        return 0

    cdef object _pop(self):
        cdef PyObject* top = self._heap[0].item
        cdef _Slot last
        cdef Py_ssize_t i = 0, child, n
        self._size -= 1
        n = self._size
        if n > 0:
            last = self._heap[n]
            while True:
                child = 2 * i + 1
                if child >= n:
                    break
                if child + 1 < n and _before(&self._heap[child + 1], &self._heap[child]):
                    child += 1
                if not _before(&self._heap[child], &last):
                    break
                self._heap[i] = self._heap[child]
                i = child
            self._heap[i] = last
        item = <object>top
        Py_XDECREF(top)  # the buffer's reference; `item` holds its own
        return item

    def push(self, priority, seq, item):
        """Add ``item`` with its ordering key."""
        cdef int64_t p = _as_int64(priority, 'priority')
        cdef int64_t s = _as_int64(seq, 'seq')
        if p == _wire.I64_MIN:
            raise OverflowError('priority out of range: %d' % priority)
        self._push(-p, s, item)

    def extend(self, claims):
        """Add each claim in ``claims`` under its own ``priority`` and ``seq``."""
        for claim in claims:
            self.push(claim.priority, claim.seq, claim)

    def pop(self):
        """Remove and return the next item; IndexError if empty."""
        if self._size == 0:
            raise IndexError('pop from an empty ClaimBuffer')
        return self._pop()

    def drain(self):
        """Remove and return every item, in the order ``pop`` would give them."""
        cdef list items = []
        while self._size:
            items.append(self._pop())
        return items


# ---------------------------------------------------------------------------- task ids

import os as _os

cdef extern from "unistd.h":
    int getpid() nogil

from posix.time cimport clock_gettime, timespec, CLOCK_REALTIME

cdef enum:
    _POOL_SIZE = 4096

# OS random bytes drawn 4 KiB at a time; refilled after fork (the pid changes), so a parent
# and its forked children never hand out the same bytes.
cdef unsigned char _pool[_POOL_SIZE]
cdef Py_ssize_t _pool_used = _POOL_SIZE
cdef int _pool_pid = -1
cdef const char* _HEX = b'0123456789abcdef'


cdef void _draw(int pid, unsigned char* raw):
    """The 10 random bytes of an id into ``raw[6:16]``, from the pool of random bytes (refilled
    when spent or when ``pid``, the caller's getpid(), shows a fork)."""
    global _pool_used, _pool_pid
    cdef bytes fresh
    if _pool_used + 10 > _POOL_SIZE or pid != _pool_pid:
        fresh = _os.urandom(_POOL_SIZE)
        memcpy(_pool, PyBytes_AS_STRING(fresh), _POOL_SIZE)
        _pool_used = 0
        _pool_pid = pid
    memcpy(raw + 6, _pool + _pool_used, 10)
    _pool_used += 10


cdef uint64_t _now_ms() noexcept:
    cdef timespec now
    clock_gettime(CLOCK_REALTIME, &now)
    return <uint64_t>now.tv_sec * 1000 + <uint64_t>(now.tv_nsec // 1000000)


cdef str _text(unsigned char* raw, uint64_t ms):
    """The id of 16 bytes ``raw`` (random bytes from the 7th on) with timestamp ``ms``: the
    version and variant bits set, as text."""
    cdef int i, j = 0
    for i in range(6):
        raw[i] = (ms >> (40 - 8 * i)) & 0xFF
    raw[6] = (raw[6] & 0x0F) | 0x70  # version 7
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 9562 variant
    cdef char out[36]
    for i in range(16):
        if i == 4 or i == 6 or i == 8 or i == 10:
            out[j] = b'-'
            j += 1
        out[j] = _HEX[raw[i] >> 4]
        out[j + 1] = _HEX[raw[i] & 0x0F]
        j += 2
    return PyUnicode_DecodeUTF8(out, 36, NULL)


def new_task_id():
    """A version-7 UUID as a str (RFC 9562: 48-bit Unix time in ms, then 74 random bits).

    Ids made later sort later, so results -- stored under their task's id -- are written
    near each other in the database instead of all over its key index.
    """
    cdef unsigned char raw[16]
    _draw(getpid(), raw)
    return _text(raw, _now_ms())


def new_task_ids(n):
    """``n`` task ids, each later in the list sorting later (so a batch's rows go to the end of
    the message-key index in order): version-7 UUIDs whose 12 bits after the version (random
    in ``new_task_id``'s) count on within a millisecond, from a random start below 2048, as
    RFC 9562's "monotonic random" method 1; a count past 4095 carries into the timestamp,
    which may then run ahead of the clock by a millisecond per 2048 ids."""
    if not isinstance(n, int):
        raise TypeError('n must be int, not %s' % type(n).__name__)
    if n < 0:
        raise ValueError('n must not be negative: %d' % n)
    cdef Py_ssize_t count = n, k
    cdef int pid = getpid()  # once: nothing forks in between
    cdef unsigned char raw[16]
    cdef uint64_t ms, value, last = 0
    cdef list ids = []
    for k in range(count):
        _draw(pid, raw)
        ms = _now_ms()
        if (ms << 12) > last:
            value = (ms << 12) | ((<uint64_t>(raw[6] & 0x07)) << 8) | raw[7]
        else:
            value = last + 1
        last = value
        raw[6] = <unsigned char>((value >> 8) & 0x0F)
        raw[7] = <unsigned char>(value & 0xFF)
        ids.append(_text(raw, value >> 12))
    return ids
