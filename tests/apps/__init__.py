"""Applications loaded by the subprocesses of the tests (``sqlq consume``, multiprocessing)."""
