"""pannier's built-in plugins.

``backends``, ``meta`` and ``sources`` are namespace packages: every module in them with
a ``get_plugin_class()`` is a plugin, found by discovery exactly as a third party's is.
Nothing here is imported by pannier's core.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
