"""Hooks: named callables run before and after each task, and when a worker starts or stops.

As with huey, a hook is registered under a name (its function's by default), runs in
registration order, and a hook that raises is logged without stopping the others -- except a
pre-execute hook's CancelExecution, which cancels the task.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional, Tuple, Type, TypeVar

__all__ = ['HookSet', 'Hooks']

logger = logging.getLogger('sqlq')

Hook = Callable[..., Any]
H = TypeVar('H', bound=Hook)


class HookSet:
    """The hooks of one kind ('pre-execute', 'startup'...), by name, in registration order."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._hooks: Dict[str, Hook] = {}

    def decorator(self, name: Optional[str] = None) -> Callable[[H], H]:
        """A decorator registering its function under ``name`` (default: its own name)."""
        def register(fn: H) -> H:
            self._hooks[name or fn.__name__] = fn
            return fn
        return register

    def register(self, name: str, fn: Hook) -> None:
        self._hooks[name] = fn

    def unregister(self, name: Any) -> bool:
        """Remove the hook registered as ``name`` (a name, or the function whose name it is);
        True if there was one."""
        key = name if isinstance(name, str) else getattr(name, '__name__', None)
        return self._hooks.pop(key, None) is not None  # type: ignore[arg-type]

    def items(self) -> List[Tuple[str, Hook]]:
        return list(self._hooks.items())

    def __bool__(self) -> bool:
        return bool(self._hooks)

    def run(self, *args: Any, propagate: Tuple[Type[BaseException], ...] = ()) -> None:
        """Call every hook with ``args``; an exception is logged, unless it is one of
        ``propagate``, which stops the run and reaches the caller."""
        for name, hook in list(self._hooks.items()):
            try:
                hook(*args)
            except propagate:
                raise
            except Exception:
                logger.exception('%s hook %s failed', self.kind, name)


class Hooks:
    """Every hook set of a queue."""

    def __init__(self) -> None:
        self.pre_execute = HookSet('pre-execute')
        self.post_execute = HookSet('post-execute')
        self.startup = HookSet('startup')
        self.shutdown = HookSet('shutdown')
