"""``sqlq web app.queue``: a dashboard of a queue in the browser (standard library only).

:mod:`sqlq.web.app` holds the application (routes, data, actions), :mod:`sqlq.web.pages` the
HTML, :mod:`sqlq.web.chart` the SVG chart, :mod:`sqlq.web.server` the HTTP server and
``static/`` the one script and style sheet.
"""
from __future__ import annotations

from .app import Dashboard
from .server import DashboardServer, make_server

__all__ = ['Dashboard', 'DashboardServer', 'make_server']
