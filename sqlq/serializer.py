"""Turning Python values into bytes and back: pickle by default, optional zlib, optional HMAC.

A custom serializer subclasses :class:`Serializer` and overrides ``_serialize`` and
``_deserialize`` (as with huey). Compression and signing wrap whatever those produce.

A compressing serializer also reads what was stored uncompressed (as huey's does), and gzip
data as well as zlib data, so that turning compression on -- or moving from huey's default
gzip framing -- never strands stored tasks and results. It always writes zlib: the same
deflate stream as gzip with a 6-byte frame instead of 18 (huey's ``use_zlib`` is accepted and
has nothing left to choose).
"""
from __future__ import annotations

import hashlib
import hmac
import pickle
import reprlib
import zlib
from typing import Any, List, Optional, Sequence, Union

from .exceptions import DeserializationError, SerializationError, SignatureError

_DIGEST_SIZE = hashlib.sha256().digest_size
_GZIP_MAGIC = b'\x1f\x8b'
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib.decompress reads a gzip frame with these


class Serializer:
    """pickle (the highest protocol unless ``pickle_protocol``) with optional zlib
    compression."""

    def __init__(self, compression: bool = False, compression_level: int = 6,
                 use_zlib: bool = True,
                 pickle_protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        if not 0 <= compression_level <= 9:
            raise ValueError('compression_level must be 0..9, not %r' % (compression_level,))
        if not 0 <= pickle_protocol <= pickle.HIGHEST_PROTOCOL:
            raise ValueError('pickle_protocol must be 0..%d, not %r'
                             % (pickle.HIGHEST_PROTOCOL, pickle_protocol))
        self.compression = bool(compression)
        self.compression_level = compression_level
        self.use_zlib = True  # huey's option: sqlq always writes zlib, reads gzip too
        self.pickle_protocol = pickle_protocol

    # -- what subclasses override ------------------------------------------------------------
    def _serialize(self, data: Any) -> bytes:
        return pickle.dumps(data, self.pickle_protocol)

    def _deserialize(self, data: bytes) -> Any:
        return pickle.loads(data)

    # -- byte-level envelope (compression, signing) -----------------------------------------
    def seal(self, raw: bytes) -> bytes:
        """Wrap already-serialized bytes for storage (compress when enabled)."""
        if self.compression:
            return zlib.compress(raw, self.compression_level)
        return raw

    def unseal(self, data: bytes) -> bytes:
        """Undo :meth:`seal`. With compression: zlib or gzip data is decompressed; other
        bytes were stored before compression was turned on and are returned as they are (a
        zlib or gzip frame checks its content, so such bytes are never mistaken for one)."""
        if self.compression:
            try:
                return zlib.decompress(data)
            except zlib.error:
                return _decompress_gzip(data)
        return data

    # -- values -------------------------------------------------------------------------------
    def dumps_raw(self, value: Any) -> bytes:
        """``_serialize`` with failures reported as SerializationError."""
        try:
            return self._serialize(value)
        except SerializationError:
            raise
        except Exception as exc:
            raise _failure(value, exc) from exc

    def dumps_raw_many(self, values: Sequence[Any]) -> List[bytes]:
        """``dumps_raw`` of each of ``values`` (a batch's arguments: ``map``); the error of the
        first that fails. The stock pickling runs without a method call per value."""
        cls = type(self)
        if cls._serialize is not Serializer._serialize or cls.dumps_raw is not Serializer.dumps_raw:
            return [self.dumps_raw(value) for value in values]
        dumps, protocol = pickle.dumps, self.pickle_protocol
        out: List[bytes] = []
        append = out.append
        try:
            for value in values:
                append(dumps(value, protocol))
        except SerializationError:
            raise
        except Exception as exc:
            raise _failure(values[len(out)], exc) from exc
        return out

    def seal_many(self, raws: List[bytes]) -> List[bytes]:
        """``seal`` of each of ``raws`` (the list itself when sealing changes nothing)."""
        if type(self).seal is Serializer.seal and not self.compression:
            return raws
        seal = self.seal
        return [seal(raw) for raw in raws]

    def loads_raw(self, data: bytes) -> Any:
        """``_deserialize`` with failures reported as DeserializationError."""
        try:
            return self._deserialize(data)
        except DeserializationError:
            raise
        except Exception as exc:
            raise DeserializationError('cannot deserialize stored data: %s: %s'
                                       % (type(exc).__name__, exc)) from exc

    def serialize(self, value: Any) -> bytes:
        """Bytes for ``value``; SerializationError (nothing half-written) if it can't be."""
        return self.seal(self.dumps_raw(value))

    def deserialize(self, data: bytes) -> Any:
        """The value stored as ``data``; DeserializationError/SignatureError if unreadable."""
        return self.loads_raw(self.unseal(data))


class SignedSerializer(Serializer):
    """A Serializer whose output carries an HMAC-SHA256; tampered data raises SignatureError."""

    def __init__(self, secret: Union[str, bytes], salt: Union[str, bytes] = 'sqlq',
                 **kwargs: Any) -> None:
        if not secret:
            raise ValueError('SignedSerializer needs a non-empty secret')
        super().__init__(**kwargs)
        secret_b = secret.encode('utf8') if isinstance(secret, str) else bytes(secret)
        salt_b = salt.encode('utf8') if isinstance(salt, str) else bytes(salt)
        self._key = hashlib.sha256(salt_b + b'\x00' + secret_b).digest()

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def seal(self, raw: bytes) -> bytes:
        body = super().seal(raw)
        return self._mac(body) + body

    def unseal(self, data: bytes) -> bytes:
        mac, body = data[:_DIGEST_SIZE], data[_DIGEST_SIZE:]
        if len(mac) != _DIGEST_SIZE or not hmac.compare_digest(mac, self._mac(body)):
            raise SignatureError('signature mismatch: the data was tampered with or '
                                 'signed with another secret')
        return super().unseal(body)


def _decompress_gzip(data: bytes) -> bytes:
    """``data`` decompressed if it is gzip data, else ``data`` itself (stored uncompressed)."""
    if data[:2] != _GZIP_MAGIC:
        return data
    try:
        return zlib.decompress(data, _GZIP_WBITS)
    except zlib.error as exc:
        raise DeserializationError('cannot decompress stored gzip data: %s' % exc) from None


def _failure(value: Any, exc: Exception) -> SerializationError:
    """The error of a value ``_serialize`` failed on with ``exc``."""
    return SerializationError('cannot serialize %s: %s: %s'
                              % (_describe(value), type(exc).__name__, exc))


def _describe(value: Any) -> str:
    """A short description of ``value`` for an error message: a bounded ``repr`` (a value
    nested 100k deep, whose full repr would itself overflow the stack, or a ``__repr__`` that
    fails, still gets one)."""
    try:
        text = _REPR.repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = '<%s object>' % type(value).__name__
    return text if len(text) <= 120 else text[:117] + '...'


_REPR = reprlib.Repr()
_REPR.maxlevel = 4
_REPR.maxother = 100


def default_serializer(serializer: Optional[Serializer], compression: bool) -> Serializer:
    """The serializer a queue uses given its ``serializer`` and ``compression`` options
    (huey's ``use_zlib`` has no effect: see the module docstring)."""
    if serializer is None:
        return Serializer(compression=compression)
    if not isinstance(serializer, Serializer):
        raise TypeError('serializer must be a sqlq.Serializer instance, not %s'
                        % type(serializer).__name__)
    return serializer
