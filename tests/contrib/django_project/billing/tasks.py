"""Imported by nothing but sqlq_consume's autodiscovery."""
from sqlq.contrib.django import task
from tests._harness import record


@task()
def invoice(number):
    record('invoice', number)
    return 'invoice %s' % number
