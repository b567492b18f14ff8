"""Serializer and SignedSerializer: round trips, compression, errors, tamper detection."""
from __future__ import annotations

import datetime
import threading

import pytest

from sqlq import (
    DeserializationError,
    SerializationError,
    Serializer,
    SignatureError,
    SignedSerializer,
    SqlqError,
)

VALUES = [None, 0, -1, 2 ** 70, 1.5, 'text', 'ünïcødé', b'\x00\xff', [1, [2]], (1, 2),
          {'a': {'b': None}}, {1, 2}, datetime.datetime(2024, 1, 2, 3, 4, 5),
          datetime.timedelta(seconds=3)]


@pytest.mark.parametrize('value', VALUES, ids=[type(v).__name__ for v in VALUES])
@pytest.mark.parametrize('make', [lambda: Serializer(), lambda: Serializer(compression=True),
                                  lambda: SignedSerializer('s3cret'),
                                  lambda: SignedSerializer(b'k', compression=True)],
                         ids=['plain', 'zlib', 'signed', 'signed-zlib'])
def test_round_trip(make, value):
    s = make()
    data = s.serialize(value)
    assert isinstance(data, bytes)
    assert s.deserialize(data) == value


def test_compression_shrinks_redundant_data():
    value = 'x' * 10000
    assert len(Serializer(compression=True).serialize(value)) < \
        len(Serializer().serialize(value)) / 10


def test_unserializable_value_raises_serialization_error():
    for bad in (lambda: None, threading.Lock()):
        with pytest.raises(SerializationError) as excinfo:
            Serializer().serialize(bad)
        assert isinstance(excinfo.value, SqlqError)


def test_garbage_raises_deserialization_error():
    with pytest.raises(DeserializationError):
        Serializer().deserialize(b'\x00not a pickle at all')
    with pytest.raises(DeserializationError):
        Serializer(compression=True).deserialize(b'not zlib')


def test_signed_rejects_tampered_data():
    s = SignedSerializer('secret')
    data = bytearray(s.serialize({'amount': 10}))
    data[-1] ^= 0x01
    with pytest.raises(SignatureError):
        s.deserialize(bytes(data))


def test_signed_rejects_other_secret_and_unsigned_data():
    data = SignedSerializer('one').serialize('payload')
    with pytest.raises(SignatureError):
        SignedSerializer('two').deserialize(data)
    with pytest.raises(SignatureError):
        SignedSerializer('one').deserialize(Serializer().serialize('payload'))
    with pytest.raises(SignatureError):
        SignedSerializer('one').deserialize(b'')


def test_signature_error_is_a_deserialization_error():
    assert issubclass(SignatureError, DeserializationError)
    assert issubclass(DeserializationError, SqlqError)


def test_signed_serializer_requires_secret():
    with pytest.raises((ValueError, TypeError)):
        SignedSerializer('')


def test_queue_uses_configured_serializer_end_to_end(make_queue):
    queue = make_queue(serializer=SignedSerializer('app-secret'))

    @queue.task()
    def add(a, b):
        return a + b

    r = add(2, 3)
    task = queue.dequeue()
    queue.execute(task)
    assert r.get() == 5


def test_queue_with_compression_end_to_end(make_queue):
    queue = make_queue(compression=True)

    @queue.task()
    def echo(x):
        return x

    r = echo('y' * 5000)
    queue.execute(queue.dequeue())
    assert r.get() == 'y' * 5000
