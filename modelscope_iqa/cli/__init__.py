"""The ``modelscope-iqa`` command line (see :mod:`.main`)."""
