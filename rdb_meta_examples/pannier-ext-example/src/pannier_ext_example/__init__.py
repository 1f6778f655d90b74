"""pannier-ext-example: a metadata plugin (``linecount``) and a hook plugin."""

__version__ = "1.0.0"
