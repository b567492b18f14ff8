from django.db import connection

from sqlq.contrib.django import db_task, on_commit_task, task
from tests._harness import record

from .models import Order


@on_commit_task()
def confirm_order(order_id):
    order = Order.objects.get(pk=order_id)  # committed before the task was enqueued
    order.confirmed = True
    order.save()
    record('confirm', order_id)
    return {'order': order_id, 'total': order.total}


@task()
def audit(text):
    record('audit', text)


def _connection_state(tag):
    was_open = connection.connection is not None
    Order.objects.count()  # opens it
    record('connection', tag, was_open)
    return was_open


db_connection_state = db_task(name='shop.db_connection_state')(_connection_state)
plain_connection_state = task(name='shop.plain_connection_state')(_connection_state)
