"""Which task classes a queue knows, by their ``registered_name`` (what messages carry)."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Dict, List, Type

from .exceptions import UnknownTaskError

if TYPE_CHECKING:  # pragma: no cover
    from .task import Task

logger = logging.getLogger('sqlq.registry')


class Registry:
    """Task classes of one queue, keyed by task name."""

    def __init__(self) -> None:
        self._classes: Dict[str, Type['Task']] = {}

    def register(self, task_class: Type['Task']) -> None:
        previous = self._classes.get(task_class.registered_name)
        if previous is not None and previous is not task_class:
            logger.warning('task %s re-registered; the newer definition replaces the older',
                           task_class.registered_name)
        self._classes[task_class.registered_name] = task_class

    def unregister(self, task_class: Type['Task']) -> bool:
        if self._classes.get(task_class.registered_name) is task_class:
            del self._classes[task_class.registered_name]
            return True
        return False

    def get(self, name: str) -> Type['Task']:
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownTaskError(
                'task %r is not registered in this process (registered: %s); import the module '
                'that defines it before the consumer starts'
                % (name, ', '.join(sorted(self._classes)) or 'none')) from None

    def __contains__(self, name: str) -> bool:
        return name in self._classes

    def names(self) -> List[str]:
        return sorted(self._classes)

    def periodic(self) -> List[Type['Task']]:
        return [c for c in self._classes.values() if getattr(c, 'validate_datetime', None)
                and c.periodic]
