"""Hooks: named callables run before and after each task, and when a worker starts or stops.

As with huey, a hook is registered under a name (its function's by default), runs in
registration order, and a hook that raises is logged without stopping the others -- except a
pre-execute hook's CancelExecution, which cancels the task.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, Type, TypeVar

if TYPE_CHECKING:
    from .signals import Signals

__all__ = ['HookSet', 'Hooks', 'QueueHooks']

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


class QueueHooks:
    """The Queue's methods that connect signal receivers and register hooks (mixed into
    ``Queue``)."""

    signals: 'Signals'
    hooks: Hooks

    def signal(self, *signals: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator connecting ``receiver(signal, task, *extra)`` to ``signals`` (all if none)."""
        def decorator(receiver: Callable[..., Any]) -> Callable[..., Any]:
            self.signals.connect(receiver, *signals)
            return receiver
        return decorator

    def disconnect_signal(self, receiver: Callable[..., Any], *signals: str) -> None:
        self.signals.disconnect(receiver, *signals)

    def pre_execute(self, name: Optional[str] = None) -> Callable[..., Any]:
        """Decorator for ``hook(task)`` run before each task; CancelExecution cancels it."""
        return self.hooks.pre_execute.decorator(name)

    def post_execute(self, name: Optional[str] = None) -> Callable[..., Any]:
        """Decorator for ``hook(task, task_value, exception)`` run after each task."""
        return self.hooks.post_execute.decorator(name)

    def on_startup(self, name: Optional[str] = None) -> Callable[..., Any]:
        """Decorator for ``hook()`` run when each consumer worker starts."""
        return self.hooks.startup.decorator(name)

    def on_shutdown(self, name: Optional[str] = None) -> Callable[..., Any]:
        """Decorator for ``hook()`` run when each consumer worker stops."""
        return self.hooks.shutdown.decorator(name)

    def register_pre_execute(self, name: str, fn: Callable[..., Any]) -> None:
        self.hooks.pre_execute.register(name, fn)

    def register_post_execute(self, name: str, fn: Callable[..., Any]) -> None:
        self.hooks.post_execute.register(name, fn)

    def register_on_startup(self, name: str, fn: Callable[..., Any]) -> None:
        self.hooks.startup.register(name, fn)

    def register_on_shutdown(self, name: str, fn: Callable[..., Any]) -> None:
        self.hooks.shutdown.register(name, fn)

    def unregister_pre_execute(self, name: Any) -> bool:
        return self.hooks.pre_execute.unregister(name)

    def unregister_post_execute(self, name: Any) -> bool:
        return self.hooks.post_execute.unregister(name)

    def unregister_on_startup(self, name: Any) -> bool:
        return self.hooks.startup.unregister(name)

    def unregister_on_shutdown(self, name: Any) -> bool:
        return self.hooks.shutdown.unregister(name)

    def run_startup_hooks(self) -> None:
        self.hooks.startup.run()

    def run_shutdown_hooks(self) -> None:
        self.hooks.shutdown.run()
