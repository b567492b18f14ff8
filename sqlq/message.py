"""The task message: what a queue stores for one task invocation, and its byte codec.

This module is the one place that knows the wire format's field order (see ``sqlq._wire``):
the envelope (id, name, options, pipeline links) is encoded by the fast path
(``_accel.encode_message``); the call arguments are encoded by the queue's serializer, so a
custom serializer decides how user data is represented. ``extra`` holds rarely used fields
(an unresolved ``expires``, chord membership, a unique key) and is always pickled. ``trace``
(the trace context a traced enqueue propagates, :mod:`sqlq.tracing`) is opaque bytes, present
only when there is one. The queue's serializer then seals the whole message (compression,
signature).
"""
from __future__ import annotations

import functools
import pickle
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from . import _accel
from .exceptions import DeserializationError, MessageDecodeError
from .options import TaskOptions
from .serializer import Serializer

__all__ = ['Message', 'MessageCodec']

# TaskOptions from its fields in order, without the Python frame of the NamedTuple's __new__
# (one per decoded message: on the drain's path).
_new_options = functools.partial(tuple.__new__, TaskOptions)
assert TaskOptions._fields == ('retries', 'retry_delay', 'retry_backoff', 'priority',
                               'expires', 'timeout'), 'the decoder builds TaskOptions by position'


class Message(NamedTuple):
    """One task invocation, independent of any Task class."""
    id: str
    name: str
    args: Tuple[Any, ...]
    kwargs: Dict[str, Any]
    options: TaskOptions = TaskOptions()
    #: When it may run (epoch seconds), None: now.
    eta: Optional[float] = None
    #: ``options.expires`` resolved to epoch seconds at enqueue time.
    expires_at: Optional[float] = None
    on_complete: Optional['Message'] = None
    on_error: Optional['Message'] = None
    extra: Optional[Dict[str, Any]] = None
    #: The trace context it carries (``sqlq.tracing``), opaque here; None: none (no bytes).
    trace: Optional[bytes] = None


class MessageCodec:
    """Messages to bytes and back, through a queue's serializer."""

    def __init__(self, serializer: Serializer) -> None:
        self.serializer = serializer

    def encode(self, message: Message) -> bytes:
        """Sealed bytes for ``message``; SerializationError if its arguments can't be serialized."""
        return self.serializer.seal(self._encode(message))

    def encode_plain(self, id: str, name: str, args: Tuple[Any, ...], kwargs: Dict[str, Any],
                     options: TaskOptions, eta: Optional[float],
                     expires_at: Optional[float], trace: Optional[bytes] = None) -> bytes:
        """``encode`` of a Message with these fields, no links and no extra fields (whose
        ``options.expires``, if any, is resolved as ``expires_at``)."""
        return self.serializer.seal(_accel.encode_message(
            id, name, self.serializer.dumps_raw((args, kwargs)), options.priority or 0,
            options.retries, options.retry_delay, options.retry_backoff or 0.0, eta,
            expires_at, options.timeout, None, None, None, trace))

    def encode_plain_many(self, ids: List[str], name: str,
                          calls: Sequence[Tuple[Tuple[Any, ...], Dict[str, Any]]],
                          options: TaskOptions) -> List[bytes]:
        """``encode_plain`` of one message per id and its ``(args, kwargs)`` in ``calls``, all
        with ``name`` and ``options`` (whose ``expires`` is None), no eta and no trace."""
        serializer = self.serializer
        return serializer.seal_many(_accel.encode_messages(
            ids, name, serializer.dumps_raw_many(calls), options.priority or 0,
            options.retries, options.retry_delay, options.retry_backoff or 0.0, None, None,
            options.timeout, None))

    def decode(self, data: bytes) -> Message:
        """The message stored as ``data``; a DeserializationError subclass if unreadable."""
        return self._decode(self.serializer.unseal(data))

    def _encode(self, m: Message) -> bytes:
        options = m.options
        extra = m.extra
        if options.expires is not None and m.expires_at is None:
            extra = {'expires': options.expires, **(extra or {})}
        payload = self.serializer.dumps_raw((m.args, m.kwargs))
        return _accel.encode_message(
            m.id, m.name, payload, options.priority or 0, options.retries, options.retry_delay,
            options.retry_backoff or 0.0, m.eta, m.expires_at, options.timeout,
            None if m.on_complete is None else self._encode(m.on_complete),
            None if m.on_error is None else self._encode(m.on_error),
            pickle.dumps(extra, pickle.HIGHEST_PROTOCOL) if extra else None, m.trace)

    def _decode(self, raw: bytes) -> Message:
        (id_, name, payload, priority, retries, retry_delay, retry_backoff, eta, expires_at,
         timeout, on_complete, on_error, raw_extra, trace) = _accel.decode_message(raw)
        try:
            args, kwargs = self.serializer.loads_raw(payload)
        except ValueError as exc:
            raise DeserializationError('arguments of task %s (%s) cannot be decoded: %s'
                                       % (name, id_, exc)) from None
        extra: Optional[Dict[str, Any]] = None
        if raw_extra is not None:
            try:
                extra = pickle.loads(raw_extra)
            except Exception as exc:
                raise MessageDecodeError('extra fields of task %s (%s) are corrupt: %s'
                                         % (name, id_, exc)) from None
        expires = extra.pop('expires', None) if extra else None
        options = _new_options((retries, retry_delay, retry_backoff, priority or None, expires,
                                timeout))
        return Message(
            id_, name, tuple(args), dict(kwargs), options, eta, expires_at,
            None if on_complete is None else self._decode(on_complete),
            None if on_error is None else self._decode(on_error),
            extra or None, trace)
