"""``manage.py shop SCENARIO [ARGS...]``: run one function of shop.scenarios, print its value
as JSON (what the tests read back)."""
import json

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument('scenario')
        parser.add_argument('values', nargs='*')

    def handle(self, *args, scenario, values, **options):
        from shop import scenarios
        value = getattr(scenarios, scenario.replace('-', '_'))(*values)
        self.stdout.write(json.dumps(value))
