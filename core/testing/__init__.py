"""Conformance suites shipped to plugin authors.

A third party runs, in its own pytest run, the very tests pannier's built-ins run:

* ``pannier.testing.meta_suite`` -- the metadata-plugin suite;
* ``pannier.testing.backend_suite`` -- the storage-backend kit (also
  ``pannier backend test URL``).
"""
