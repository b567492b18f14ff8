"""Checking that call arguments fit a task function, at the call instead of in the worker.

``inspect.Signature.bind`` costs more than the rest of an enqueue, so a cheap check answers
first for the common shapes of functions, and ``bind`` only words the error.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Optional, Tuple

__all__ = ['Fits', 'signature_of', 'fast_fit', 'accepts']

#: ``fits(args, kwargs, partial)``: True when the call certainly binds; False means "ask
#: inspect" (which words the error).
Fits = Callable[[Tuple[Any, ...], Dict[str, Any], bool], bool]


def _always(args: Tuple[Any, ...], kwargs: Dict[str, Any], partial: bool) -> bool:
    return True


def _never(args: Tuple[Any, ...], kwargs: Dict[str, Any], partial: bool) -> bool:
    return False


def fast_fit(signature: Optional[inspect.Signature], context: bool) -> Fits:
    """A cheap ``fits`` for functions whose parameters are all plain positional-or-keyword
    (optionally with ``*args``/``**kwargs``); other shapes are always left to inspect."""
    if signature is None:
        return _always
    P = inspect.Parameter
    names, required = [], set()
    varargs = varkw = False
    for param in signature.parameters.values():
        if param.kind is P.POSITIONAL_OR_KEYWORD:
            names.append(param.name)
            if param.default is P.empty and not (context and param.name == 'task'):
                required.add(param.name)
        elif param.kind is P.VAR_POSITIONAL:
            varargs = True
        elif param.kind is P.VAR_KEYWORD:
            varkw = True
        else:  # positional-only or keyword-only: leave it to inspect
            return _never
    count = len(names)
    position = {name: index for index, name in enumerate(names)}

    def fits(args: Tuple[Any, ...], kwargs: Dict[str, Any], partial: bool) -> bool:
        given = len(args)
        if given > count and not varargs:
            return False
        for key in kwargs:
            index = position.get(key)
            if index is None:
                if not varkw:
                    return False
            elif index < given:
                return False  # given twice
        if not partial:
            for name in names[given:]:
                if name in required and name not in kwargs:
                    return False
        return True
    return fits


def signature_of(func: Callable[..., Any]) -> Optional[inspect.Signature]:
    """``func``'s signature, or None if it has none (some builtins)."""
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        return None


def accepts(signature: inspect.Signature, name: str) -> bool:
    """True if a function of ``signature`` accepts a keyword argument ``name``."""
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD
               for p in signature.parameters.values())
