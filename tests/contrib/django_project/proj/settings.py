"""Settings of the test project. The test gives each run its own directory
(``SQLQ_TEST_DJANGO_DIR``: the Django database ``db.sqlite3`` and, by default, the queue's
``db-queue.sqlite3`` beside it); ``SQLQ_TEST_DJANGO_QUEUE_FILE`` sets ``SQLQ['filename']`` and
``SQLQ_TEST_DJANGO_WORKERS`` ``SQLQ['consumer']['workers']``; ``SQLQ_TEST_DJANGO_QUEUE_OBJECT``
makes ``SQLQ`` a queue object and ``SQLQ_TEST_DJANGO_QUEUES_STR`` a ``QUEUES`` a str."""
import importlib.util
import os

BASE_DIR = os.environ['SQLQ_TEST_DJANGO_DIR']
SECRET_KEY = 'sqlq-tests'
DEBUG = False
ALLOWED_HOSTS = ['testserver']
USE_TZ = True
TIME_ZONE = 'UTC'
ROOT_URLCONF = 'proj.urls'
MIDDLEWARE = []
DEFAULT_AUTO_FIELD = 'django.db.models.AutoField'

HAS_DJANGO_TASKS = importlib.util.find_spec('django.tasks') is not None
HAS_BACKPORT = not HAS_DJANGO_TASKS and importlib.util.find_spec('django_tasks') is not None

INSTALLED_APPS = ['sqlq.contrib.django', 'shop', 'billing'] + (
    ['django_tasks'] if HAS_BACKPORT else [])

DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3',
                         'NAME': os.path.join(BASE_DIR, 'db.sqlite3')}}

SQLQ = {'name': 'shop', 'consumer': {'workers': int(os.environ.get('SQLQ_TEST_DJANGO_WORKERS',
                                                                   '1'))}}
if os.environ.get('SQLQ_TEST_DJANGO_QUEUE_FILE'):
    SQLQ['filename'] = os.environ['SQLQ_TEST_DJANGO_QUEUE_FILE']
if os.environ.get('SQLQ_TEST_DJANGO_QUEUE_OBJECT'):  # SQLQ as a queue object
    from sqlq import SqliteQueue
    SQLQ = SqliteQueue(os.path.join(BASE_DIR, 'object-queue.sqlite3'), name='shop')

if HAS_DJANGO_TASKS or HAS_BACKPORT:
    TASKS = {
        'default': {'BACKEND': 'sqlq.contrib.django.SqlqBackend',
                    'QUEUES': ['default', 'emails']},
        'on_commit': {'BACKEND': 'sqlq.contrib.django.SqlqBackend',
                      'OPTIONS': {'enqueue_on_commit': True}},
        'retrying': {'BACKEND': 'sqlq.contrib.django.SqlqBackend',
                     'OPTIONS': {'retries': 1}},
    }
    if os.environ.get('SQLQ_TEST_DJANGO_QUEUES_STR'):  # a str, not a list: refused
        TASKS['retrying']['QUEUES'] = 'emails'
