"""The inspection commands of the ``sqlq`` command line."""
