"""The task message: what a queue stores for one task invocation, and its byte codec.

The envelope (id, name, options, pipeline links) is encoded by the fast path
(``_accel.encode_message``); the call arguments are encoded by the queue's serializer, so a
custom serializer decides how user data is represented. ``extra`` holds rarely used internal
fields (unresolved expiry, chord membership) and is always pickled. The queue's serializer
then seals the whole message (compression, signature).
"""
from __future__ import annotations

import pickle
from typing import Any, Dict, NamedTuple, Optional, Tuple

from . import _accel
from .exceptions import DeserializationError, MessageDecodeError
from .serializer import Serializer


class Message(NamedTuple):
    """One task invocation, independent of any Task class."""
    id: str
    name: str
    args: Tuple[Any, ...]
    kwargs: Dict[str, Any]
    priority: int = 0
    retries: int = 0
    retry_delay: float = 0.0
    retry_backoff: float = 0.0
    eta: Optional[float] = None
    expires_at: Optional[float] = None
    timeout: Optional[float] = None
    on_complete: Optional['Message'] = None
    on_error: Optional['Message'] = None
    extra: Optional[Dict[str, Any]] = None


class MessageCodec:
    """Messages to bytes and back, through a queue's serializer."""

    def __init__(self, serializer: Serializer) -> None:
        self.serializer = serializer

    def encode(self, message: Message) -> bytes:
        """Sealed bytes for ``message``; SerializationError if its arguments can't be serialized."""
        return self.serializer.seal(self._encode(message))

    def encode_fields(self, id: str, name: str, args: Tuple[Any, ...], kwargs: Dict[str, Any],
                      priority: int, retries: int, retry_delay: float, retry_backoff: float,
                      eta: Optional[float], expires_at: Optional[float],
                      timeout: Optional[float]) -> bytes:
        """``encode`` of a Message with these fields and no links or extra fields."""
        return self.serializer.seal(_accel.encode_message(
            id, name, self.serializer.dumps_raw((args, kwargs)), priority, retries, retry_delay,
            retry_backoff, eta, expires_at, timeout, None, None, None))

    def decode(self, data: bytes) -> Message:
        """The message stored as ``data``; a DeserializationError subclass if unreadable."""
        return self._decode(self.serializer.unseal(data))

    def _encode(self, m: Message) -> bytes:
        payload = self.serializer.dumps_raw((m.args, m.kwargs))
        return _accel.encode_message(
            m.id, m.name, payload, m.priority, m.retries, m.retry_delay, m.retry_backoff,
            m.eta, m.expires_at, m.timeout,
            None if m.on_complete is None else self._encode(m.on_complete),
            None if m.on_error is None else self._encode(m.on_error),
            pickle.dumps(m.extra, pickle.HIGHEST_PROTOCOL) if m.extra else None)

    def _decode(self, raw: bytes) -> Message:
        (id_, name, payload, priority, retries, retry_delay, retry_backoff, eta, expires_at,
         timeout, on_complete, on_error, extra) = _accel.decode_message(raw)
        try:
            args, kwargs = self.serializer.loads_raw(payload)
        except ValueError as exc:
            raise DeserializationError('arguments of task %s (%s) cannot be decoded: %s'
                                       % (name, id_, exc)) from None
        if extra is not None:
            try:
                extra = pickle.loads(extra)
            except Exception as exc:
                raise MessageDecodeError('extra fields of task %s (%s) are corrupt: %s'
                                         % (name, id_, exc)) from None
        return Message(
            id_, name, tuple(args), dict(kwargs), priority, retries, retry_delay, retry_backoff,
            eta, expires_at, timeout,
            None if on_complete is None else self._decode(on_complete),
            None if on_error is None else self._decode(on_error),
            extra)
