"""Helpers of the fast-path tests."""
from __future__ import annotations

from typing import Any, Callable, Tuple

from hypothesis import HealthCheck, settings

#: The settings of the property tests: no deadline (a loaded box is slow, not wrong); the
#: example count comes from the profile the root conftest loads.
HYPOTHESIS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(func: Callable[..., Any], *args: Any) -> Tuple[Any, ...]:
    """('ok', result) or ('raise', exception class, message): what calling func gives."""
    try:
        return ('ok', func(*args))
    except Exception as exc:  # compared between the implementations, never swallowed
        return ('raise', type(exc), str(exc))
