"""Conformance with huey 3.5's documented behaviour: each test names the huey behaviour it
pins, and runs on every backend."""
