"""``sqlq web app.queue``: serve the queue's dashboard (see :mod:`sqlq.web`)."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ._common import CliError, load_queue

__all__ = ['add_web_command', 'web']

#: Environment variable holding ``user:password`` (kept out of ``ps``), as --auth does.
AUTH_ENV = 'SQLQ_WEB_AUTH'


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError('port must be 0-65535, not %s' % text)
    return value


def add_web_command(commands: Any) -> None:
    web = commands.add_parser(
        'web', help='serve a dashboard of the queue in the browser',
        description='Serve a dashboard of QUEUE: counts, throughput and failures over the '
                    'last hour, consumers and their heartbeats, pending/scheduled/running/'
                    'failed/history lists with search, task pages, requeue/purge/revoke '
                    '(POST forms with a CSRF token), and /metrics. Bound to 127.0.0.1 by '
                    'default; binding another address needs --auth (or %s).' % AUTH_ENV)
    web.add_argument('queue', help='the queue object, as module.attribute')
    web.add_argument('--host', default='127.0.0.1', help='address to bind (default 127.0.0.1)')
    web.add_argument('--port', type=_port, default=8765, help='port (default 8765; 0: any)')
    web.add_argument('--auth', default=None, metavar='USER:PASSWORD',
                     help='require HTTP basic authentication (default: $%s)' % AUTH_ENV)
    web.add_argument('--no-auth', action='store_true',
                     help='allow a non-loopback --host without authentication')
    web.add_argument('--access-log', action='store_true', help='log each request to stderr')


def web(args: argparse.Namespace) -> int:
    from ..web.server import is_loopback, make_server
    auth = args.auth or os.environ.get(AUTH_ENV) or None
    if auth is not None and ':' not in auth:
        raise CliError('--auth must be USER:PASSWORD')
    if auth is None and not is_loopback(args.host) and not args.no_auth:
        raise CliError('refusing to serve the dashboard on %r without authentication: give '
                       '--auth USER:PASSWORD (or set %s), or --no-auth if a proxy in front '
                       'checks who may see it' % (args.host, AUTH_ENV))
    queue = load_queue(args.queue)
    try:
        server = make_server(queue, args.host, args.port, auth=auth, log=args.access_log)
    except OSError as exc:
        raise CliError('cannot listen on %s:%d: %s' % (args.host, args.port, exc)) from None
    print('sqlq dashboard of %r at %s (Ctrl-C to stop)' % (queue.name, server.url),
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
