"""Tasks of Django's Tasks framework (django.tasks, or the django_tasks backport), run by
sqlq through SqlqBackend."""
import os

try:
    from django.tasks import task
except ImportError:
    from django_tasks import task


@task()
def add(a, b):
    return a + b


@task(queue_name='emails')
def fail(message):
    raise ValueError(message)


@task(takes_context=True)
def whoami(context, tag):
    return {'tag': tag, 'attempt': context.attempt, 'id': context.task_result.id}


@task()
async def double(x):
    return x * 2


@task(backend='retrying')
def flaky(flag_path):
    """Fails the first time (creating ``flag_path``), succeeds the second."""
    if not os.path.exists(flag_path):
        open(flag_path, 'w').close()
        raise OSError('first attempt fails')
    return 'second attempt'
