"""sqlq: a task queue that needs nothing but one SQLite file."""
__version__ = '0.1.0'
