"""The ``lagaug`` command line (click): parses options, calls the core, renders with rich."""
