"""The operator's own files for the dashboard, under `$XDG_CONFIG_HOME/coreroll/` (else
`~/.config/coreroll/`): `keys.toml` (tui.keymap_config) and `filters.toml` (tui.saved_filters).

- `config_dir()`: that folder (not created until something is saved).
- `read_toml(path) -> (data, lines)`: the parsed file and the line each key is on (`key_lines`);
  a file that is not TOML raises `ConfigError` naming the file and the line.
- `key_lines(text)`: key path (a tuple, as the parsed data nests it) -> line number, so that an
  error about a value can name its line (tomllib only gives positions for syntax errors).
- `toml_string(text)`: `text` as a TOML basic string (writing goes through
  `coreroll.atomicfile.atomic_write`: a crash never leaves half a file).
- `folder_locked(folder)`: an exclusive lock on the folder around a read-modify-write.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

KeyPath = tuple[str, ...]


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the line."""


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"  # the spec ignores relative
    return root / "coreroll"


_BARE = r"[A-Za-z0-9_-]+"
_BASIC = r'"(?:[^"\\]|\\.)*"'
_LITERAL = r"'[^']*'"
_PART = rf"(?:{_BARE}|{_BASIC}|{_LITERAL})"
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_TABLE = re.compile(rf"^\s*\[\[?\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=\s*(.*)$")
_PARTS = re.compile(_PART)


def _key_path(dotted: str) -> KeyPath:
    parts: list[str] = []
    for part in _PARTS.findall(dotted):
        if part.startswith('"'):
            try:
                part = json.loads(part)
            except ValueError:  # a TOML-only escape (\U0001F600): good enough to find the line
                part = part[1:-1]
        elif part.startswith("'"):
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)


def key_lines(text: str) -> dict[KeyPath, int]:
    """The line (from 1) of every `key = value` and `[table]` in `text`, by its full key path (table
    headers included). Skips the inside of multi-line strings; for a well-formed file each path occurs once."""
    lines: dict[KeyPath, int] = {}
    table: KeyPath = ()
    closing: str | None = None  # inside a multi-line string: the quotes that end it
    for number, line in enumerate(text.splitlines(), 1):
        if closing is not None:
            if closing in line:
                closing = None
            continue
        header = _TABLE.match(line)
        if header:
            table = _key_path(header.group(1))
            lines.setdefault(table, number)
            continue
        assign = _ASSIGN.match(line)
        if not assign:
            continue
        lines.setdefault(table + _key_path(assign.group(1)), number)
        value = assign.group(2)
        for quotes in ('"""', "'''"):
            if value.startswith(quotes) and value.count(quotes) == 1:
                closing = quotes
    return lines


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def parse_toml(text: str, where: str) -> dict[str, Any]:
    """`text` parsed; a syntax error becomes `ConfigError("<where> line N: ...")`."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        if position is None:  # "(at end of document)" and the like
            raise ConfigError(f"{where}: not TOML: {message}") from None
        what = message[: position.start()]
        raise ConfigError(
            f"{where} line {position.group(1)}: not TOML: {what} (column {position.group(2)})"
        ) from None


def read_toml(path: Path) -> tuple[dict[str, Any], dict[KeyPath, int]]:
    """The file parsed, and the line of each key; raises ConfigError (bad TOML, not UTF-8) or
    OSError (cannot read it)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path} line {line}: not UTF-8 text") from None
    return parse_toml(text, str(path)), key_lines(text)


def toml_string(text: str) -> str:
    """`text` as a TOML basic string: quotes, backslashes and every control character escaped."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


@contextlib.contextmanager
def folder_locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (flock), so two dashboards saving at once do not lose
    each other's change between their read and their rename."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
