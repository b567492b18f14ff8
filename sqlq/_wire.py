"""Wire format of a task message: the ONE definition of its constants.

Both codecs (the compiled ``sqlq._fastpath`` and its pure-Python twin ``sqlq._fastpath_py``)
read their constants from here; this module uses the standard library only.

Layout (format version 1), all integers and floats little-endian::

    offset  size  field
    0       1     MAGIC (0xA7)
    1       1     VERSION (1)
    2       2     u16 flags: which optional fields follow (FLAG_* below); other bits must be 0
    4       8     i64 priority
    12      4     i32 retries
    16      8     f64 retry_delay
    24      8     f64 retry_backoff
    32      ...   f64 eta          only if FLAG_ETA
            ...   f64 expires_at   only if FLAG_EXPIRES_AT
            ...   f64 timeout      only if FLAG_TIMEOUT
            ...   u32 length + bytes: id (UTF-8)
            ...   u32 length + bytes: name (UTF-8)
            ...   u32 length + bytes: payload
            ...   u32 length + bytes: on_complete   only if FLAG_ON_COMPLETE
            ...   u32 length + bytes: on_error      only if FLAG_ON_ERROR
            ...   u32 length + bytes: extra         only if FLAG_EXTRA
            ...   u32 length + bytes: trace         only if FLAG_TRACE

The message ends exactly after the last present field: trailing bytes are an error. A field that
is absent (flag clear) decodes as ``None``; an empty byte string is present with length 0.

``trace`` is the trace context the producer's tracer propagated (opaque to the codec; see
``sqlq.tracing``): absent, and costing nothing, when the message was enqueued without one.

Changing anything here changes the format: bump ``VERSION`` and update the golden corpus in
``tests/fastpath/test_codec.py``. The one exception is a new optional field behind a new flag
bit, appended last (as ``trace`` was): messages without it are byte for byte what they were,
so every message already stored still decodes, and the golden corpus stays; a decoder that
predates the flag refuses a message that has it ('unknown flag bits'; the message becomes a
dead letter that ``requeue_failed`` puts back once every consumer is upgraded).
"""
from __future__ import annotations

MAGIC = 0xA7
VERSION = 1

FLAG_ETA = 0x0001
FLAG_EXPIRES_AT = 0x0002
FLAG_TIMEOUT = 0x0004
FLAG_ON_COMPLETE = 0x0008
FLAG_ON_ERROR = 0x0010
FLAG_EXTRA = 0x0020
FLAG_TRACE = 0x0040
KNOWN_FLAGS = (FLAG_ETA | FLAG_EXPIRES_AT | FLAG_TIMEOUT
               | FLAG_ON_COMPLETE | FLAG_ON_ERROR | FLAG_EXTRA | FLAG_TRACE)

# struct format of the fixed header: magic, version, flags, priority, retries,
# retry_delay, retry_backoff.
HEADER_FORMAT = '<BBHqidd'
HEADER_SIZE = 32
F64_SIZE = 8
LEN_SIZE = 4                      # u32 length prefix of a variable-length field

I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1
I32_MIN = -(1 << 31)
I32_MAX = (1 << 31) - 1
U32_MAX = (1 << 32) - 1           # longest variable-length field, in bytes

# The decoded tuple, in order (also the parameters of encode_message).
FIELDS = ('id', 'name', 'payload', 'priority', 'retries', 'retry_delay', 'retry_backoff',
          'eta', 'expires_at', 'timeout', 'on_complete', 'on_error', 'extra', 'trace')
