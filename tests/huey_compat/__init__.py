"""Conformance with huey 3.5's documented behaviour: a huey program behaves the same after
changing the import. One module per area; each test names the huey behaviour it pins, and
runs on every backend (the ``queue``/``make_queue`` fixtures)."""
