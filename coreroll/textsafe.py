"""Strings from outside (etcd, the update server, the network) made safe to show on a terminal.

A hostname such as ``"\\x1b]0;pwned\\x07"`` would retitle the operator's terminal, and ``"\\x1b[2J"``
would wipe it. :func:`visible` spells every character that is not printable as a Python-style escape
(``\\x1b``, ``\\n``, ``\\u202e``), so what reaches the screen is plain text that shows what was sent.
"""

from __future__ import annotations

__all__ = ["visible"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: str) -> str:
    """``text`` with every non-printable character (C0/C1 controls, DEL, bidi and other format
    characters, line and paragraph separators) written as an escape. Printable text, spaces
    included, is returned as it is (the common case costs one C-level scan)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def print_error(text: str) -> None:
    """One line on stderr, control characters made visible (what a command's refusal prints)."""
    import sys

    print(visible(text), file=sys.stderr, flush=True)
