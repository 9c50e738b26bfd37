"""The ``modelport`` command line: thin commands over the Python API."""
