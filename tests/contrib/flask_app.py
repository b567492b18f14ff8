"""The Flask application of tests/contrib/test_flask.py: an application factory, the Sqlq
extension configured from ``app.config`` (the queue file: ``SQLQ_TEST_DB``), and tasks that use
the application context."""
import os

from flask import Flask, current_app, g

from sqlq.contrib.flask import Sqlq

sqlq = Sqlq()


@sqlq.task()
def greet(name):
    """Uses the app's config and ``g``: each run has a context of its own."""
    seen = getattr(g, 'last_name', None)
    g.last_name = name
    return {'greeting': '%s, %s' % (current_app.config['GREETING'], name),
            'app': current_app.name, 'g_before': seen, 'pid': os.getpid()}


def create_app(**config):
    app = Flask('flaskshop')
    app.config.update(GREETING='Hello', SQLQ_FILENAME=os.environ.get('SQLQ_TEST_DB'),
                      SQLQ_CONSUMER={'workers': 1})
    app.config.update(config)
    sqlq.init_app(app)

    @app.post('/greet/<name>')
    def greet_view(name):
        result = greet(name)
        return {'id': result.id}

    return app
