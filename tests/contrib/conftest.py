"""Fixtures of the framework integration tests: each skips (saying why) where its framework
is not installed -- CI installs them (the ``django`` and ``flask`` extras)."""
from __future__ import annotations

import importlib.util
from typing import Iterator

import pytest

from tests.contrib._projects import DjangoProject


def tasks_framework() -> str:
    """Where Django's Tasks framework comes from here, or '' if nowhere."""
    if importlib.util.find_spec('django') is None:
        return ''
    if importlib.util.find_spec('django.tasks') is not None:
        return 'django.tasks'
    return 'django_tasks' if importlib.util.find_spec('django_tasks') is not None else ''


@pytest.fixture
def django_project(tmp_path) -> Iterator[DjangoProject]:
    """The test project, migrated, in its own directory; its processes are killed after."""
    pytest.importorskip('django', reason="Django is not installed (pip install 'sqlq[django]')")
    project = DjangoProject(tmp_path)
    try:
        assert project.scenario('migrate') == 'ok'
        yield project
    finally:
        project.close()


@pytest.fixture
def tasks_project(django_project) -> DjangoProject:
    """The test project where Django's Tasks framework is installed."""
    if not tasks_framework():
        pytest.skip("neither django.tasks (Django 6) nor the django-tasks backport is installed")
    return django_project
