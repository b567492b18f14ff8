"""The Django application ``sqlq.contrib.django`` (in ``INSTALLED_APPS``): its management
commands (``sqlq_consume``, ``run_huey``) and a system check of ``settings.SQLQ``."""
from __future__ import annotations

from typing import Any, List

from django.apps import AppConfig
from django.core import checks


class SqlqConfig(AppConfig):  # type: ignore[misc]
    name = 'sqlq.contrib.django'
    label = 'sqlq'
    verbose_name = 'sqlq task queue'

    def ready(self) -> None:
        checks.register(check_settings)


def check_settings(app_configs: Any = None, **kwargs: Any) -> List[checks.CheckMessage]:
    """``sqlq.E001``: ``settings.SQLQ`` describes no usable queue (a queue file that is one of
    Django's SQLite databases, an unknown consumer option...). Nothing is opened."""
    from django.core.exceptions import ImproperlyConfigured

    from . import queue_config
    try:
        queue_config()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint='See the README, "Django".', obj='settings.SQLQ',
                             id='sqlq.E001')]
    return []
