"""Small tasks the conformance tests of workflows and pipelines share."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Dict, List, Tuple


def define_tasks(queue: Any) -> SimpleNamespace:
    """Registers the tasks on ``queue``; returns their wrappers by name."""

    @queue.task()
    def add(a: int, b: int) -> int:
        return a + b

    @queue.task()
    def incr(n: int) -> int:
        return n + 1

    @queue.task()
    def total(ns: List[int]) -> int:
        return sum(ns)

    @queue.task()
    def record(*args: Any, **kwargs: Any) -> List[Any]:
        return [list(args), kwargs]

    @queue.task()
    def mapping() -> Dict[str, int]:
        return {'x': 1, 'y': 2}

    @queue.task()
    def fib(a: int, b: int = 1) -> Tuple[int, int]:
        return (a + b, a)

    @queue.task()
    def boom(*args: Any) -> None:
        raise ValueError('boom %s' % (args,))

    @queue.task()
    def handled(*args: Any) -> List[Any]:
        return ['handled'] + [type(a).__name__ if isinstance(a, Exception) else a
                              for a in args]

    return SimpleNamespace(add=add, incr=incr, total=total, record=record, mapping=mapping,
                           fib=fib, boom=boom, handled=handled)
