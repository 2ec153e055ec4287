"""/etc/flatcar/update.conf (and /etc/coreos/update.conf) files: read, change, write back.

The file is a systemd EnvironmentFile: `KEY=value` lines, values optionally in single or double
quotes (double quotes allow `\\"` and `\\\\`), `#` or `;` comment lines, blank lines. Everything
that is not a key we change is written back byte for byte: comments, unknown keys, and lines we
could not parse (each of those produces a warning naming the file, line number and text, and the
rest of the file is still read). A key set twice takes its last value, as systemd does.

Public API:
- `UpdateConf.load(path) -> UpdateConf` (a missing file is an empty conf, as `EnvironmentFile=-`),
  `UpdateConf.parse(text, source)`, `.warnings: list[str]`, `.get(key, default=None)`,
  `.set(key, value)`, `.unset(key)`, `.render() -> str`, `.save(path=None)` (atomic).
- Properties with update_engine/locksmithd defaults: `group` (GROUP, "stable"), `server`
  (SERVER), `reboot_strategy` (REBOOT_STRATEGY, "reboot"), `window_start` / `window_length`
  (LOCKSMITHD_REBOOT_WINDOW_START/LENGTH, falling back to the legacy REBOOT_WINDOW_*),
  `locksmith_group` (LOCKSMITHD_GROUP, ""), `locksmith_endpoints` (LOCKSMITHD_ENDPOINT, split on commas).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from coreroll.etcd.config import split_endpoints
from coreroll.node.partitions import atomic_write

log = logging.getLogger(__name__)

DEFAULT_GROUP = "stable"
DEFAULT_SERVER = "https://public.update.flatcar-linux.net/v1/update/"
DEFAULT_STRATEGY = "reboot"
_KEY = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_SAFE_UNQUOTED = re.compile(r"^[A-Za-z0-9_.,:/@%+=-]*$")


class UpdateConfError(ValueError):
    """A value that cannot be written (a key that is not a shell identifier, a newline in a value)."""


@dataclass
class _Line:
    text: str
    key: str | None = None
    value: str | None = None
    quoted: bool = False


def _unquote(raw: str) -> tuple[str, bool]:
    """The value of `raw`; raises ValueError with the reason when the quoting is broken."""
    if not raw:
        return "", False
    if raw[0] == "'":
        if len(raw) < 2 or not raw.endswith("'") or "'" in raw[1:-1]:
            raise ValueError("unterminated or stray single quote")
        return raw[1:-1], True
    if raw[0] == '"':
        out: list[str] = []
        i = 1
        while i < len(raw):
            char = raw[i]
            if char == "\\" and i + 1 < len(raw):
                out.append(raw[i + 1])
                i += 2
                continue
            if char == '"':
                if i != len(raw) - 1:
                    raise ValueError("text after the closing double quote")
                return "".join(out), True
            out.append(char)
            i += 1
        raise ValueError("unterminated double quote")
    if any(q in raw for q in "\"'"):
        raise ValueError("quote in the middle of an unquoted value")
    return raw, False


def _quote(value: str, force: bool) -> str:
    if not force and _SAFE_UNQUOTED.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class UpdateConf:
    def __init__(self, lines: list[_Line], source: str, warnings: list[str]) -> None:
        self._lines = lines
        self.source = source
        self.warnings = warnings

    @classmethod
    def parse(cls, text: str, source: str = "<update.conf>") -> UpdateConf:
        lines: list[_Line] = []
        warnings: list[str] = []
        for number, text_line in enumerate(text.splitlines(), start=1):
            stripped = text_line.strip()
            if not stripped or stripped[0] in "#;":
                lines.append(_Line(text_line))
                continue
            match = _KEY.match(text_line)
            if match is None:
                reason = "expected KEY=value"
            else:
                try:
                    value, quoted = _unquote(match.group(2))
                except ValueError as exc:
                    reason = str(exc)
                else:
                    lines.append(_Line(text_line, match.group(1), value, quoted))
                    continue
            warning = f"{source}:{number}: ignoring malformed line {text_line!r}: {reason}"
            log.warning("%s", warning)
            warnings.append(warning)
            lines.append(_Line(text_line))
        return cls(lines, source, warnings)

    @classmethod
    def load(cls, path: Path | str) -> UpdateConf:
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        conf = cls.parse(text, str(path))
        conf._path = path
        return conf

    _path: Path | None = None

    # ----- access ------------------------------------------------------------------------
    def get(self, key: str, default: str | None = None) -> str | None:
        for line in reversed(self._lines):
            if line.key == key:
                return line.value
        return default

    def keys(self) -> list[str]:
        return list(dict.fromkeys(line.key for line in self._lines if line.key))

    def set(self, key: str, value: str) -> None:
        """Change the last `key=` line in place (keeping its quoting), or append one."""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise UpdateConfError(f"{key!r} is not a valid update.conf key")
        if "\n" in value or "\r" in value:
            raise UpdateConfError(f"the value for {key} contains a newline")
        for line in reversed(self._lines):
            if line.key == key:
                line.value = value
                line.text = f"{key}={_quote(value, line.quoted)}"
                return
        self._lines.append(_Line(f"{key}={_quote(value, False)}", key, value))

    def unset(self, key: str) -> None:
        self._lines = [line for line in self._lines if line.key != key]

    def render(self) -> str:
        return "".join(line.text + "\n" for line in self._lines)

    def save(self, path: Path | str | None = None) -> None:
        target = Path(path) if path is not None else self._path
        if target is None:
            raise UpdateConfError("no path to save to")
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, self.render().encode())
        self._path = target

    # ----- the keys update_engine and locksmithd read -------------------------------------
    @property
    def group(self) -> str:
        return self.get("GROUP") or DEFAULT_GROUP

    @property
    def server(self) -> str:
        return self.get("SERVER") or DEFAULT_SERVER

    @property
    def reboot_strategy(self) -> str:
        return self.get("REBOOT_STRATEGY") or DEFAULT_STRATEGY

    @property
    def window_start(self) -> str | None:
        return self.get("LOCKSMITHD_REBOOT_WINDOW_START") or self.get("REBOOT_WINDOW_START") or None

    @property
    def window_length(self) -> str | None:
        return self.get("LOCKSMITHD_REBOOT_WINDOW_LENGTH") or self.get("REBOOT_WINDOW_LENGTH") or None

    @property
    def locksmith_group(self) -> str:
        return self.get("LOCKSMITHD_GROUP") or ""

    @property
    def locksmith_endpoints(self) -> tuple[str, ...]:
        return split_endpoints([self.get("LOCKSMITHD_ENDPOINT") or ""])
