"""Text for a terminal: file names and messages with nothing that can drive it.

A snapshot's file names are whatever bytes the backed-up file system held, or whatever a
hostile repository claims: an escape sequence in a name printed raw could retitle the
terminal, hide lines, fake output or worse. pannier prints names and messages through
one rule, close to GNU ls's ``--quoting-style=escape``:

* a printable character (Python's :meth:`str.isprintable`: letters, marks, numbers,
  punctuation, symbols, the ASCII space) is printed as is;
* ``\\xHH`` (two hex digits) is the byte ``HH``: an ASCII control character (``\\x1b``
  for ESC, ``\\x0a`` for a newline, ``\\x7f`` for DEL) or a byte that is not part of valid
  UTF-8;
* ``\\uHHHH`` or ``\\UHHHHHHHH`` is any other character that is not printable (C1 controls,
  bidirectional overrides, zero-width and format characters, line separators, unassigned
  code points, spaces other than the ASCII one);
* in a *name* (:func:`escape_name`) a backslash is doubled, so every printed name maps back
  to exactly one name; in a *message* (:func:`escape_text`) it is left single.

``--json`` output needs none of this: JSON escapes control characters itself.
"""

from __future__ import annotations

__all__ = ["escape_name", "escape_text"]


def _escape_char(c: str) -> str:
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x80:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _escape(text: str, backslash: str, keep: str) -> str:
    return "".join(
        backslash if c == "\\" else c if c.isprintable() or c in keep else _escape_char(c)
        for c in text
    )


def escape_name(name: str) -> str:
    """``name`` (a path decoded with ``surrogateescape``) as pannier prints it: every
    character that is not printable escaped and every backslash doubled (see the module
    docstring). The result is printable, holds no control character, and differs for
    different names; ``escape_name("a\\x1b[2Jb")`` is ``"a\\\\x1b[2Jb"``."""
    if name.isprintable() and "\\" not in name:
        return name
    return _escape(name, "\\\\", "")


def escape_text(text: str, *, keep_newlines: bool = False) -> str:
    """A message as pannier prints it: characters that are not printable escaped like
    in :func:`escape_name`, backslashes left as they are; newlines kept when
    ``keep_newlines`` (for results printed on several lines)."""
    if text.isprintable():
        return text
    return _escape(text, "\\", "\n" if keep_newlines else "")
