"""What every plugin is: a kind, a name, an API version, and an origin.

A plugin is a class returned by a module's ``get_plugin_class()`` (or named by an entry
point). It declares the plugin API version it was written for in the class attribute
``plugin_api_version``; pannier refuses a plugin whose version it does not support, with a
message that names both.
"""

from __future__ import annotations

import enum

__all__ = ["PLUGIN_API_VERSION", "SUPPORTED_PLUGIN_API_VERSIONS", "PluginKind"]

#: The plugin API version this pannier defines. A plugin sets
#: ``plugin_api_version = PLUGIN_API_VERSION`` (the literal ``1``) in its class.
PLUGIN_API_VERSION = 1

#: Every plugin API version this pannier can load.
SUPPORTED_PLUGIN_API_VERSIONS = frozenset({1})


class PluginKind(str, enum.Enum):
    """The kinds of plugin, each with its own entry-point group and namespace package."""

    BACKEND = "backend"
    META = "meta"
    SOURCE = "source"
    HOOK = "hook"

    @property
    def entry_point_group(self) -> str:
        """The entry-point group that pip-installed plugins of this kind use."""
        return {
            PluginKind.BACKEND: "pannier.backends",
            PluginKind.META: "pannier.meta",
            PluginKind.SOURCE: "pannier.sources",
            PluginKind.HOOK: "pannier.hooks",
        }[self]

    @property
    def namespace_package(self) -> str | None:
        """The namespace package scanned for modules of this kind, or None (hooks)."""
        return {
            PluginKind.BACKEND: "pannier.plugins.backends",
            PluginKind.META: "pannier.plugins.meta",
            PluginKind.SOURCE: "pannier.plugins.sources",
            PluginKind.HOOK: None,
        }[self]
