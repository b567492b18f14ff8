"""Tasks to stored bytes and back: the mapping between :class:`~sqlq.task.Task` and
:class:`~sqlq.message.Message`, in one queue's time convention and task registry."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from ._time import to_timestamp
from .message import Message
from .task import Task

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue

__all__ = ['TaskCodec']


class TaskCodec:
    """Serializes a queue's tasks (``serialize``) and rebuilds them (``deserialize``)."""

    def __init__(self, queue: 'Queue') -> None:
        self.queue = queue

    def message(self, task: Task) -> Message:
        """The Message of ``task`` (and of its pipeline links)."""
        utc = self.queue.time.utc
        extra: Optional[Dict[str, Any]] = None
        if task.chord_config is not None:
            extra = {'chord': task.chord_config}
        if task.unique_key is not None:
            extra = dict(extra or (), unique=task.unique_key)
        return Message(
            task.id, task.registered_name, task.args, task.kwargs, task.options,
            None if task.eta is None else to_timestamp(task.eta, utc),
            None if task.expires_resolved is None else to_timestamp(task.expires_resolved, utc),
            None if task.on_complete is None else self.message(task.on_complete),
            None if task.on_error is None else self.message(task.on_error),
            extra, task.trace_context)

    def task(self, message: Message) -> Task:
        """A Task of the registered class ``message`` names (UnknownTaskError if none)."""
        queue = self.queue
        task_class = queue.registry.get(message.name)
        extra = message.extra or {}
        task = task_class(
            message.args, message.kwargs, id=message.id,
            eta=None if message.eta is None else queue.time.datetime(message.eta),
            options=message.options,
            expires_resolved=(None if message.expires_at is None
                              else queue.time.datetime(message.expires_at)),
            on_complete=None if message.on_complete is None else self.task(message.on_complete),
            on_error=None if message.on_error is None else self.task(message.on_error),
            chord_config=extra.get('chord'), unique_key=extra.get('unique'))
        if message.trace is not None:
            task.trace_context = message.trace
        return task

    def serialize(self, task: Task) -> bytes:
        """The bytes stored for ``task``; SerializationError if its arguments can't be stored.

        With tracing on, a task that carries no trace context yet gets the current one (the
        producer's span, or the running task's for the follower it enqueues); a task that
        has one (a retry, a scheduled task moved to the queue) keeps it."""
        tracing = self.queue.tracing
        if tracing is not None and task.trace_context is None:
            tracing.stamp(task)
        if task.on_complete is None and task.on_error is None and task.chord_config is None \
                and task.unique_key is None and (task.options.expires is None
                                                 or task.expires_resolved is not None):
            # No nested messages and no extra fields: skip building a Message.
            utc = self.queue.time.utc
            return self.queue.codec.encode_plain(
                task.id, task.registered_name, task.args, task.kwargs, task.options,
                None if task.eta is None else to_timestamp(task.eta, utc),
                None if task.expires_resolved is None else to_timestamp(task.expires_resolved,
                                                                        utc),
                task.trace_context)
        return self.queue.codec.encode(self.message(task))

    def serialize_fresh(self, tasks: Sequence[Task]) -> List[bytes]:
        """``serialize`` of each of ``tasks``: tasks of one class, with its default options
        (no ``expires``) and nothing else set (``fresh_tasks``), on a queue without tracing."""
        first = tasks[0]
        return self.queue.codec.encode_plain_many(
            [task.id for task in tasks], first.registered_name,
            [(task.args, task.kwargs) for task in tasks], first.options)

    def deserialize(self, data: bytes) -> Task:
        """The Task stored as ``data``; DeserializationError or UnknownTaskError if unusable."""
        return self.task(self.queue.codec.decode(data))
