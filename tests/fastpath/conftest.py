"""Fixtures of the fast-path tests: the compiled module and its pure twin side by side."""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Tuple

import pytest

from sqlq import _accel, _fastpath_py
from tests._helpers import require_compiled


def _compiled_module() -> ModuleType:
    require_compiled()
    return importlib.import_module('sqlq._fastpath')


@pytest.fixture(scope='module', params=_accel.IMPLEMENTATIONS)
def codec(request: pytest.FixtureRequest) -> ModuleType:
    """One implementation's module (its encode_message/decode_message, ClaimBuffer...)."""
    return _compiled_module() if request.param == 'compiled' else _fastpath_py


@pytest.fixture(scope='module')
def both() -> Tuple[ModuleType, ModuleType]:
    """(compiled, twin), for the tests that compare them."""
    return _compiled_module(), _fastpath_py
