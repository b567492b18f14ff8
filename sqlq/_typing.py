"""The type variables of sqlq's generic classes, for users' type checkers.

``TaskWrapper[P, R]``: ``P`` the task function's parameters, ``R`` what a run returns (for an
``async def``, what its coroutine returns); ``Result[R]``, ``ResultGroup[R]``. ``ParamSpec``
is in :mod:`typing` from Python 3.10; type checkers of 3.9 code take it from
``typing_extensions`` (bundled with them), and at run time on 3.9 a plain TypeVar stands in,
which is all ``Generic`` needs there (sqlq's annotations are never evaluated at run time).
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TypeVar

if sys.version_info >= (3, 10):
    from typing import ParamSpec
elif TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import ParamSpec
else:  # pragma: no cover - Python 3.9 at run time
    def ParamSpec(name: str) -> Any:
        return TypeVar(name)

__all__ = ['P', 'R']

#: The task function's parameters.
P = ParamSpec('P')
#: What a run of the task returns.
R = TypeVar('R', covariant=True)
