"""The task-message codec: the compiled ``sqlq._fastpath`` and its pure twin ``sqlq._fastpath_py``.

Both must round-trip, produce byte-identical output, decode each other's output, and fail on the
same inputs with the same exception class and message. The ``codec`` and ``both`` fixtures are
in this folder's conftest.
"""
from __future__ import annotations

import inspect
import math
import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqlq import _fastpath_py, _wire
from sqlq.exceptions import DeserializationError, MessageDecodeError
from tests.fastpath._helpers import HYPOTHESIS, outcome


def same_outcome(both, funcname, *args):
    compiled, twin = both
    got = outcome(getattr(compiled, funcname), *args)
    want = outcome(getattr(twin, funcname), *args)
    assert _comparable(got) == _comparable(want), (got, want)
    return want


def _comparable(result):
    """NaN != NaN: compare decoded tuples with floats turned into their bit patterns."""
    if result[0] == 'ok' and isinstance(result[1], tuple):
        return ('ok', tuple(struct.pack('<d', v) if isinstance(v, float) else v
                            for v in result[1]))
    return result


# ---- fixed examples -----------------------------------------------------------------------

BASE = dict(id='6f1c9a2e', name='app.tasks.add', payload=b'\x80\x05K\x01.', priority=5,
            retries=3, retry_delay=10.0, retry_backoff=2.0, eta=None, expires_at=None,
            timeout=None, on_complete=None, on_error=None, extra=None, trace=None)
TRACEPARENT = b'traceparent:00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
OPTIONAL_VALUES = dict(eta=1700000000.25, expires_at=1700000360.0, timeout=30.0,
                       on_complete=b'\x01pipeline', on_error=b'', extra=b'{"k": 1}',
                       trace=TRACEPARENT)


def message(**changes):
    fields = dict(BASE, **changes)
    return tuple(fields[f] for f in _wire.FIELDS)


def all_combinations():
    names = list(OPTIONAL_VALUES)
    for mask in range(1 << len(names)):
        yield message(**{n: OPTIONAL_VALUES[n] for i, n in enumerate(names) if mask >> i & 1})


ALL_COMBINATIONS = list(all_combinations())

# Encoded with format version 1 when it was introduced (13 fields: before the trace field,
# they decode with trace None). If one of these changes, the wire format changed: bump
# _wire.VERSION (old messages in queues must stay decodable or be refused clearly) and only
# then regenerate these.
GOLDEN = [
    (('', '', b'', 0, 0, 0.0, 0.0, None, None, None, None, None, None),
     'a701000000000000000000000000000000000000000000000000000000000000'
     '000000000000000000000000'),
    (('6f1c9a2e', 'app.tasks.add', b'\x80\x05K\x01.', 5, 3, 10.0, 2.0, 1700000000.25, None,
      30.0, None, None, None),
     'a70105000500000000000000030000000000000000002440000000000000004000001040fc54d941'
     '0000000000003e400800000036663163396132650d0000006170702e7461736b732e616464050000'
     '0080054b012e'),
    (('id-\u00e9', 'n\u00e4me/\U0001f600', b'\x00\xff', -(1 << 63), -1, 0.5, -1.5, -2.0, 1e300,
      0.001, b'done', b'', b'xtra'),
     'a7013f000000000000000080ffffffff000000000000e03f000000000000f8bf00000000000000c0'
     '9c7500883ce4377efca9f1d24d62503f0500000069642dc3a90a0000006ec3a46d652ff09f988002'
     '00000000ff04000000646f6e65000000000400000078747261'),
    (('x', 'y', b'z', (1 << 63) - 1, (1 << 31) - 1, math.inf, -0.0, None, 3.0, None, None,
      b'err', None),
     'a7011200ffffffffffffff7fffffff7f000000000000f07f0000000000000080000000000000084001'
     '000000780100000079010000007a03000000657272'),
    # With the trace field (FLAG_TRACE, 0x0040), added to version 1 behind its flag.
    (('t', 'n', b'', 0, 0, 0.0, 0.0, None, None, None, None, None, None, b'tp:00-ab'),
     'a701400000000000000000000000000000000000000000000000000000000000'
     '0100000074010000006e00000000080000007470' '3a30302d6162'),
]


@pytest.mark.parametrize('fields', ALL_COMBINATIONS)
def test_round_trip_every_combination_of_optional_fields(codec, fields):
    data = codec.encode_message(*fields)
    assert isinstance(data, bytes)
    decoded = codec.decode_message(data)
    assert decoded == fields
    assert [type(v) for v in decoded] == [type(v) for v in fields]


@pytest.mark.parametrize('fields', ALL_COMBINATIONS)
def test_implementations_byte_identical_and_cross_decode(both, fields):
    compiled, twin = both
    c, t = compiled.encode_message(*fields), twin.encode_message(*fields)
    assert c == t
    assert compiled.decode_message(t) == fields
    assert twin.decode_message(c) == fields


@pytest.mark.parametrize('fields,hexdata', GOLDEN)
def test_golden_corpus(codec, fields, hexdata):
    fields += (None,) * (len(_wire.FIELDS) - len(fields))  # written before the trace field
    data = bytes.fromhex(hexdata)
    assert codec.encode_message(*fields) == data
    assert _comparable(('ok', codec.decode_message(data))) == _comparable(('ok', fields))


def test_layout_matches_wire_documentation(codec):
    fields = message(**OPTIONAL_VALUES)
    data = codec.encode_message(*fields)
    magic, version, flags, priority, retries, delay, backoff = \
        struct.unpack_from(_wire.HEADER_FORMAT, data)
    assert (magic, version, flags) == (_wire.MAGIC, _wire.VERSION, _wire.KNOWN_FLAGS)
    assert (priority, retries, delay, backoff) == (5, 3, 10.0, 2.0)
    assert struct.calcsize(_wire.HEADER_FORMAT) == _wire.HEADER_SIZE
    var = sum(len(v) if isinstance(v, bytes) else len(v.encode()) for v in fields
              if isinstance(v, (bytes, str)))
    assert len(data) == _wire.HEADER_SIZE + 3 * _wire.F64_SIZE + 7 * _wire.LEN_SIZE + var
    assert data.endswith(struct.pack('<I', len(TRACEPARENT)) + TRACEPARENT)  # the last field


def test_no_trace_costs_no_bytes_and_may_be_left_out(both):
    """A message without a trace context is byte for byte what it was before the field
    existed, and callers that predate it (13 arguments) still encode."""
    for impl in both:
        old_call = impl.encode_message(*message()[:-1])
        assert old_call == impl.encode_message(*message())
        traced = impl.encode_message(*message(trace=TRACEPARENT))
        assert len(traced) == len(old_call) + _wire.LEN_SIZE + len(TRACEPARENT)
        assert impl.decode_message(old_call)[-1] is None


def test_decode_accepts_bytes_like(codec):
    fields = message(**OPTIONAL_VALUES)
    data = codec.encode_message(*fields)
    assert codec.decode_message(bytearray(data)) == fields
    assert codec.decode_message(memoryview(data)) == fields
    assert codec.decode_message(memoryview(b'..' + data)[2:]) == fields


def test_nan_and_signed_zero_keep_their_bits(both):
    fields = message(retry_delay=math.nan, retry_backoff=-0.0, eta=-math.inf)
    c, t = (impl.encode_message(*fields) for impl in both)
    assert c == t
    for impl in both:
        decoded = impl.decode_message(c)
        assert math.isnan(decoded[5]) and math.copysign(1, decoded[6]) == -1.0
        assert decoded[7] == -math.inf


def test_bool_and_int_subclasses_encode_as_ints(both):
    fields = message(priority=True, retries=False, retry_delay=1, retry_backoff=True, eta=7)
    c, t = (impl.encode_message(*fields) for impl in both)
    assert c == t
    decoded = both[1].decode_message(c)
    assert decoded[3:8] == (1, 0, 1.0, 1.0, 7.0)
    assert (type(decoded[3]), type(decoded[5]), type(decoded[7])) == (int, float, float)


def test_large_payload(both):
    payload = os.urandom(1 << 20)
    fields = message(payload=payload, extra=payload[:1000])
    c, t = (impl.encode_message(*fields) for impl in both)
    assert c == t
    assert both[0].decode_message(t) == both[1].decode_message(c) == fields


def _parameters(function):
    # names, kinds and defaults: the twin's annotations are for type checkers only
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_same_signature(both):
    compiled, twin = both
    for name in ('encode_message', 'decode_message'):
        assert _parameters(getattr(compiled, name)) == _parameters(getattr(twin, name))
    assert list(inspect.signature(twin.encode_message).parameters) == list(_wire.FIELDS)


def test_keyword_arguments(both):
    kwargs = dict(BASE, eta=1.0)
    assert both[0].encode_message(**kwargs) == both[1].encode_message(**kwargs)


# ---- hypothesis properties ----------------------------------------------------------------

finite = st.floats(allow_nan=False)
opt_finite = st.none() | finite
opt_bytes = st.none() | st.binary(max_size=64)
messages = st.tuples(
    st.text(max_size=40), st.text(max_size=40), st.binary(max_size=200),
    st.integers(_wire.I64_MIN, _wire.I64_MAX), st.integers(_wire.I32_MIN, _wire.I32_MAX),
    finite, finite, opt_finite, opt_finite, opt_finite, opt_bytes, opt_bytes, opt_bytes,
    opt_bytes)


@HYPOTHESIS
@given(fields=messages)
def test_property_round_trip(codec, fields):
    assert codec.decode_message(codec.encode_message(*fields)) == fields


@HYPOTHESIS
@given(fields=messages)
def test_property_identical_and_cross_decoding(both, fields):
    compiled, twin = both
    c = compiled.encode_message(*fields)
    assert c == twin.encode_message(*fields)
    assert compiled.decode_message(c) == twin.decode_message(c) == fields


@HYPOTHESIS
@given(data=st.binary(max_size=120))
def test_property_random_bytes_same_outcome(both, data):
    result = same_outcome(both, 'decode_message', data)
    assert result[0] == 'ok' or result[1] is MessageDecodeError


@HYPOTHESIS
@given(flags=st.integers(0, 0x7F), tail=st.binary(max_size=80))
def test_property_random_body_after_valid_header(both, flags, tail):
    data = struct.pack(_wire.HEADER_FORMAT, _wire.MAGIC, _wire.VERSION, flags, 1, 2, 3.0, 4.0)
    result = same_outcome(both, 'decode_message', data + tail)
    assert result[0] == 'ok' or result[1] is MessageDecodeError


@HYPOTHESIS
@given(fields=messages, st_data=st.data())
def test_property_corrupted_message_same_outcome(both, fields, st_data):
    data = bytearray(both[1].encode_message(*fields))
    index = st_data.draw(st.integers(0, len(data) - 1))
    data[index] = st_data.draw(st.integers(0, 255))
    result = same_outcome(both, 'decode_message', bytes(data))
    assert result[0] == 'ok' or result[1] is MessageDecodeError


# ---- malformed input ----------------------------------------------------------------------

FULL = message(**OPTIONAL_VALUES)


@pytest.mark.parametrize('fields', [message(), FULL, GOLDEN[0][0]])
def test_every_truncation_fails_identically(both, fields):
    data = both[1].encode_message(*fields)
    for cut in range(len(data)):
        result = same_outcome(both, 'decode_message', data[:cut])
        assert result[0] == 'raise' and result[1] is MessageDecodeError, (cut, result)
        assert result[2].startswith('message truncated at '), (cut, result)


def _full():
    return _fastpath_py.encode_message(*FULL)


def _set(data, offset, raw):
    return data[:offset] + raw + data[offset + len(raw):]


def _id_offset():
    return _wire.HEADER_SIZE + 3 * _wire.F64_SIZE    # FULL has eta, expires_at and timeout


MALFORMED = [
    ('empty', b'', 'message truncated at magic: need 1 bytes at offset 0, have 0'),
    ('bad magic', _set(_full(), 0, b'\x00'), 'bad magic byte 0x00 (expected 0xa7)'),
    ('bad magic, short', b'{', 'bad magic byte 0x7b (expected 0xa7)'),
    ('pickle, not a message', b'\x80\x05K\x01.', 'bad magic byte 0x80 (expected 0xa7)'),
    ('version 0', _set(_full(), 1, b'\x00'), 'unknown format version 0 (supported: 1)'),
    ('version 2', _set(_full(), 1, b'\x02'), 'unknown format version 2 (supported: 1)'),
    ('version 255, short', b'\xa7\xff', 'unknown format version 255 (supported: 1)'),
    ('only magic', b'\xa7', 'message truncated at version: need 1 bytes at offset 1, have 0'),
    ('half the flags', b'\xa7\x01\x00',
     'message truncated at flags: need 2 bytes at offset 2, have 1'),
    ('unknown flag', _set(_full(), 2, b'\xff\x00'), 'unknown flag bits 0x0080'),
    ('unknown high flag, short', b'\xa7\x01\x00\x80', 'unknown flag bits 0x8000'),
    ('short priority', _full()[:10],
     'message truncated at priority: need 8 bytes at offset 4, have 6'),
    ('short retry_backoff', _full()[:31],
     'message truncated at retry_backoff: need 8 bytes at offset 24, have 7'),
    ('short eta', _full()[:33], 'message truncated at eta: need 8 bytes at offset 32, have 1'),
    ('short id length', _full()[:_id_offset() + 3],
     'message truncated at length of id: need 4 bytes at offset 56, have 3'),
    ('id length past the end', _set(_full(), _id_offset(), b'\xff\xff\xff\xff'),
     'message truncated at id: need 4294967295 bytes at offset 60, have 134'),
    ('trailing garbage', _full() + b'\x00\x01',
     '2 trailing bytes after end of message at offset 194'),
    ('invalid utf-8 in id', _set(_full(), _id_offset() + 4, b'\xff'),
     'invalid utf-8 in id at offset 60'),
    ('invalid utf-8 in name', _set(_full(), _id_offset() + 4 + 8 + 4, b'\xc3\x28'),
     'invalid utf-8 in name at offset 72'),
    ('encoded surrogate in name', _set(_full(), _id_offset() + 4 + 8 + 4, b'\xed\xa0\x80'),
     'invalid utf-8 in name at offset 72'),
]


@pytest.mark.parametrize('label,data,expected', MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_raises_message_decode_error(codec, label, data, expected):
    with pytest.raises(MessageDecodeError) as info:
        codec.decode_message(data)
    assert str(info.value) == expected
    assert isinstance(info.value, DeserializationError)


@pytest.mark.parametrize('label,data,expected', MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_identical_in_both(both, label, data, expected):
    assert same_outcome(both, 'decode_message', data) == ('raise', MessageDecodeError,
                                                          expected)


def test_invalid_utf8_chains_the_unicode_error(codec):
    with pytest.raises(MessageDecodeError) as info:
        codec.decode_message(_set(_full(), _id_offset() + 4, b'\xff'))
    assert isinstance(info.value.__cause__, UnicodeDecodeError)


@pytest.mark.parametrize('bad', ['text', 12, None, [0xA7, 1]])
def test_decode_non_bytes_is_type_error(both, bad):
    result = same_outcome(both, 'decode_message', bad)
    assert result == ('raise', TypeError, 'data must be bytes, bytearray or memoryview, not %s'
                      % type(bad).__name__)


# ---- encode type errors -------------------------------------------------------------------

BAD_ENCODE = [
    (dict(id=b'bytes-id'), TypeError, 'id must be str, not bytes'),
    (dict(id=None), TypeError, 'id must be str, not NoneType'),
    (dict(name=3), TypeError, 'name must be str, not int'),
    (dict(payload='text'), TypeError, 'payload must be bytes, not str'),
    (dict(payload=bytearray(b'x')), TypeError, 'payload must be bytes, not bytearray'),
    (dict(payload=None), TypeError, 'payload must be bytes, not NoneType'),
    (dict(priority=1.0), TypeError, 'priority must be int, not float'),
    (dict(priority=None), TypeError, 'priority must be int, not NoneType'),
    (dict(priority=1 << 63), OverflowError, 'priority out of range for i64: %d' % (1 << 63)),
    (dict(priority=-(1 << 63) - 1), OverflowError,
     'priority out of range for i64: %d' % (-(1 << 63) - 1)),
    (dict(priority=10 ** 30), OverflowError, 'priority out of range for i64: %d' % 10 ** 30),
    (dict(retries='3'), TypeError, 'retries must be int, not str'),
    (dict(retries=1 << 31), OverflowError, 'retries out of range for i32: 2147483648'),
    (dict(retries=-(1 << 31) - 1), OverflowError, 'retries out of range for i32: -2147483649'),
    (dict(retries=1 << 70), OverflowError, 'retries out of range for i32: %d' % (1 << 70)),
    (dict(retry_delay='1'), TypeError, 'retry_delay must be float or int, not str'),
    (dict(retry_delay=None), TypeError, 'retry_delay must be float or int, not NoneType'),
    (dict(retry_backoff=10 ** 400), OverflowError, 'int too large to convert to float'),
    (dict(eta='now'), TypeError, 'eta must be float, int or None, not str'),
    (dict(expires_at=[1]), TypeError, 'expires_at must be float, int or None, not list'),
    (dict(timeout=10 ** 400), OverflowError, 'int too large to convert to float'),
    (dict(on_complete='x'), TypeError, 'on_complete must be bytes or None, not str'),
    (dict(on_error=memoryview(b'x')), TypeError,
     'on_error must be bytes or None, not memoryview'),
    (dict(extra=1), TypeError, 'extra must be bytes or None, not int'),
    (dict(trace='traceparent:00'), TypeError, 'trace must be bytes or None, not str'),
    # Several bad fields: the first in parameter order is reported.
    (dict(retries=None, name=None, extra=1), TypeError, 'name must be str, not NoneType'),
]


@pytest.mark.parametrize('changes,exc,text', BAD_ENCODE,
                         ids=['-'.join(sorted(c)) + '-' + str(i)
                              for i, (c, _, _) in enumerate(BAD_ENCODE)])
def test_encode_type_errors_consistent(both, changes, exc, text):
    result = same_outcome(both, 'encode_message', *message(**changes))
    assert result == ('raise', exc, text)


def test_encode_unencodable_str_same_error(both):
    result = same_outcome(both, 'encode_message', *message(id='a\ud800'))
    assert result[0] == 'raise' and result[1] is UnicodeEncodeError
    result = same_outcome(both, 'encode_message', *message(name='\udfff'))
    assert result[0] == 'raise' and result[1] is UnicodeEncodeError


def test_wrong_argument_count_is_type_error(codec):
    with pytest.raises(TypeError):
        codec.encode_message(*message()[:-2])
    with pytest.raises(TypeError):
        codec.encode_message(*message(), None)
    with pytest.raises(TypeError):
        codec.decode_message()


def test_empty_strings_and_bytes_are_present_not_none(codec):
    fields = message(on_complete=b'', on_error=b'', extra=b'', trace=b'', eta=0.0)
    assert codec.decode_message(codec.encode_message(*fields)) == fields
