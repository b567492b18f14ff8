"""``python manage.py run_huey``: djhuey's name for ``sqlq_consume`` (the same command)."""
from __future__ import annotations

from .sqlq_consume import Command as SqlqConsume


class Command(SqlqConsume):
    help = 'The same as sqlq_consume (the name huey.contrib.djhuey gives its consumer).'
