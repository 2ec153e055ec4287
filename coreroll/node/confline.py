"""One update.conf line as each of its two readers reads it (`coreroll.node.updateconf` keeps the
file; this is the syntax).

- update_engine, flatcar/update_engine src/update_engine/simple_key_value_store.cc `ParseString`
  (lines 21-40): the file is split on "\\n" only (line 24, `strings::SplitDontTrim`); the key is
  every byte before the first "=", blanks included, the value every byte after it, with one
  enclosing pair of '' or "" removed (lines 31-35); no comments, no escapes, nothing trimmed; the
  last line for a key wins (line 37). omaha_request_params.cc `GetConfValue` (lines 89-96) looks in
  /etc/flatcar/update.conf, then /usr/share/flatcar/update.conf, then /usr/share/flatcar/release.
- systemd's EnvironmentFile=, src/basic/env-file.c `parse_env_file_internal` (systemd commit
  0002453b): a line ends at "\\n" or "\\r" (`NEWLINE`, src/basic/string-util.h line 14); blanks (space, tab) before the key, around "=" and
  trailing an unquoted value are dropped; `#` or `;` first: a comment; outside quotes `\\` takes the
  next character as it is; '...' is literal; in "..." a `\\` before one of `"` `\\` `` ` `` `$`
  (`SHELL_NEED_ESCAPE`) is dropped and kept before anything else; quoted and unquoted parts run
  together (`"a"b` is ab). A key or value that is not UTF-8 makes systemd refuse the whole file
  (`check_utf8ness_and_warn`).

Public API: `engine_reading(raw: bytes) -> (key, value) | None`, `systemd_assignment(line: str) ->
(key, value) | None` (None: blank or comment; ValueError: malformed, or it goes on into the next
line), `double_quoted(value)` (systemd's "..." of it), `shown(text)` (quoted, escaped, capped, for
messages), `KEY` (a shell variable name), `DQ_ESCAPABLE`.
"""

from __future__ import annotations

import re

from coreroll.textsafe import visible

__all__ = ["DQ_ESCAPABLE", "KEY", "double_quoted", "engine_reading", "shown", "systemd_assignment"]

KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DQ_ESCAPABLE = '"\\`$'  # systemd's SHELL_NEED_ESCAPE
_BLANKS = " \t"  # systemd's WHITESPACE, less the two line ends
_SHOWN = 120  # characters of a line quoted in a message


def shown(text: str) -> str:
    return "'" + visible(text[:_SHOWN]) + ("...'" if len(text) > _SHOWN else "'")


def engine_reading(raw: bytes) -> tuple[str, str] | None:
    """update_engine's (key, value) of a line; None without "="."""
    key, sep, value = raw.partition(b"=")
    if not sep:
        return None
    if len(value) >= 2 and value[:1] in (b'"', b"'") and value[:1] == value[-1:]:
        value = value[1:-1]
    return key.decode("utf-8", "replace"), value.decode("utf-8", "replace")


def _systemd_value(raw: str) -> str:
    """The value after "=" on one line, read as systemd reads it; ValueError when it goes on."""
    out: list[str] = []
    state = "pre"
    blank_from: int | None = None  # where the unquoted value's trailing blanks start
    for char in raw:
        if state == "pre":
            if char in "'\"":
                state = char
            elif char == "\\":
                state = "escape"
            elif char not in _BLANKS:
                state, blank_from = "value", None
                out.append(char)
        elif state == "value":
            if char == "\\":
                state, blank_from = "escape", None
            else:
                if char not in _BLANKS:
                    blank_from = None
                elif blank_from is None:
                    blank_from = len(out)
                out.append(char)
        elif state == "escape":
            out.append(char)
            state = "value"
        elif state == "'":
            if char == "'":
                state = "pre"
            else:
                out.append(char)
        elif state == '"':
            if char == '"':
                state = "pre"
            elif char == "\\":
                state = "dq-escape"
            else:
                out.append(char)
        else:  # dq-escape
            out.append(char if char in DQ_ESCAPABLE else "\\" + char)
            state = '"'
    if state in ("'", '"', "dq-escape"):
        raise ValueError("unterminated quote (systemd reads on into the next line)")
    if state == "escape":
        raise ValueError("trailing backslash (systemd joins the next line)")
    if state == "value" and blank_from is not None:
        del out[blank_from:]
    return "".join(out)


def systemd_assignment(part: str) -> tuple[str, str] | None:
    """systemd's (key, value) of one line; None for a blank or comment line; ValueError: malformed."""
    text = part.lstrip(_BLANKS)
    if not text or text[0] in "#;":
        return None
    key, sep, value = text.partition("=")
    if not sep:
        raise ValueError("expected KEY=value")
    key = key.rstrip(_BLANKS)
    if not KEY.fullmatch(key):
        raise ValueError(f"key {shown(key)} is not a shell variable name")
    return key, _systemd_value(value)


def double_quoted(value: str) -> str:
    return '"' + "".join("\\" + c if c in DQ_ESCAPABLE else c for c in value) + '"'
