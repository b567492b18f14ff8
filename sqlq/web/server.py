"""The dashboard's HTTP server: the standard library's ``http.server``, with a small pool of
threads answering requests (each keeps its database connection: a thread per request would
open one per request), bound to localhost unless told otherwise.

Why the standard library and not a framework: the dashboard is a handful of pages and JSON
routes, rendered on the server; ``http.server`` serves them with nothing to install, which
fits a queue whose only infrastructure is one file (see the README).
"""
from __future__ import annotations

import concurrent.futures
import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from .app import Dashboard

if TYPE_CHECKING:  # pragma: no cover
    from ..api import Queue

__all__ = ['DashboardServer', 'make_server', 'is_loopback', 'THREADS']

#: Threads answering requests (a page and its live fragments; several browser tabs).
THREADS = 4
#: Largest request body accepted (the action forms are tiny).
MAX_BODY = 64 * 1024


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host in ('localhost', ''):
        return host == 'localhost'
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    server: 'DashboardServer'
    protocol_version = 'HTTP/1.1'

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        form: Dict[str, List[str]] = {}
        if method == 'POST':
            length = int(self.headers.get('Content-Length') or 0)
            if length > MAX_BODY:
                self.send_error(413)
                return
            form = parse_qs(self.rfile.read(length).decode('utf-8', 'replace'))
        headers = {k: v for k, v in self.headers.items()}
        status, out_headers, body = self.server.dashboard.handle(
            method, parts.path, query, form, headers)
        self.send_response(status)
        for name, value in out_headers:
            self.send_header(name, value)
        self.end_headers()
        if method != 'HEAD':
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's names)
        self._serve('GET')

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve('HEAD')

    def do_POST(self) -> None:  # noqa: N802
        self._serve('POST')

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log:
            super().log_message(format, *args)


class DashboardServer(HTTPServer):
    """An HTTP server whose requests are answered by a fixed pool of threads."""

    daemon_threads = True

    def __init__(self, address: Tuple[str, int], dashboard: Dashboard,
                 log: bool = False) -> None:
        host = address[0]
        if ':' in host:
            self.address_family = socket.AF_INET6
        self.dashboard = dashboard
        self.log = log
        self._pool = concurrent.futures.ThreadPoolExecutor(THREADS,
                                                           thread_name_prefix='sqlq-web')
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        return 'http://%s:%d/' % ('[%s]' % host if ':' in host else host, port)

    def process_request(self, request: Any, client_address: Any) -> None:
        self._pool.submit(self._answer, request, client_address)

    def _answer(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away (a page left while its fragment loaded)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False)

    def serve_in_thread(self) -> threading.Thread:
        """Serve from a daemon thread (tests, embedding); stop with ``shutdown()``."""
        thread = threading.Thread(target=self.serve_forever, name='sqlq-web-server',
                                  daemon=True)
        thread.start()
        return thread


def make_server(queue: 'Queue', host: str = '127.0.0.1', port: int = 8765,
                auth: Optional[str] = None, log: bool = False) -> DashboardServer:
    """A dashboard server of ``queue`` bound to ``host:port`` (port 0: any free one)."""
    return DashboardServer((host, port), Dashboard(queue, auth=auth), log=log)
