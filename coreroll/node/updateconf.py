"""/etc/flatcar/update.conf (and /etc/coreos/update.conf) files: read, change, write back.

Two programs read this file, each its own way (`coreroll.node.confline` has both readings of a
line, with the source lines they follow), and coreroll reads each key the way the program that
uses it does: update_engine's keys (`UPDATE_ENGINE_KEYS`: GROUP, SERVER, MACHINE_ALIAS,
PCR_POLICY_SERVER, DOWNLOAD_USER, DOWNLOAD_PASSWORD, FLATCAR_RELEASE_*) as update_engine does,
every other key (REBOOT_STRATEGY, LOCKSMITHD_*, REBOOT_WINDOW_*: locksmithd's) as systemd's
EnvironmentFile= does. Only "\n" ends a line for both (systemd also ends one at "\r"): form feed,
vertical tab, NEL (U+0085) and U+2028 are ordinary bytes. Where the two would read a line
differently (a carriage return inside it, blanks around a key update_engine reads, escapes in its
value), a warning names the file, line and both readings. A construct that continues on the next
line for systemd (an open quote, a trailing backslash) is a malformed line: warned about, not read.
Warnings show text with control characters escaped.

The file is kept as bytes: a change rewrites the one line that holds the key (or appends one) and
every other byte stays as it was, CRLF line ends, latin-1 bytes and all. A rewritten line ends in
"\\n" alone, so both programs read the new value. `save()` keeps the replaced file's mode and
owner (a file it creates is 0644, as Flatcar ships update.conf).

Public API:
- `UpdateConf.load(path) -> UpdateConf` (a missing file is an empty conf, as `EnvironmentFile=-`),
  `UpdateConf.parse(data: bytes | str, source)`, `UpdateConf.merged(layers, source)` (lowest
  first: a key's last value wins, as update_engine's file order and systemd's repeated
  EnvironmentFile= give it), `.warnings: list[str]`, `.get(key, default=None)`, `.where(key)`
  ("<file>:<line>" of that value), `.keys()`, `.set(key, value)`, `.unset(key)`,
  `.render() -> bytes`, `.save(path=None)` (atomic).
- Properties with update_engine/locksmithd defaults: `group` (GROUP, "stable"), `server`
  (SERVER), `reboot_strategy` (REBOOT_STRATEGY, "reboot"), `window_start` / `window_length`
  (LOCKSMITHD_REBOOT_WINDOW_START/LENGTH, falling back to the legacy REBOOT_WINDOW_*),
  `locksmith_group` (LOCKSMITHD_GROUP, ""), `locksmith_endpoints` (LOCKSMITHD_ENDPOINT, split on commas).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from coreroll.etcd.config import split_endpoints
from coreroll.node.confline import (
    DQ_ESCAPABLE,
    KEY,
    double_quoted,
    engine_reading,
    shown,
    systemd_assignment,
)
from coreroll.node.partitions import atomic_write

log = logging.getLogger(__name__)

DEFAULT_GROUP = "stable"
DEFAULT_SERVER = "https://public.update.flatcar-linux.net/v1/update/"
DEFAULT_STRATEGY = "reboot"
CREATED_MODE = 0o644  # Flatcar's /etc/flatcar/update.conf
UPDATE_ENGINE_KEYS = frozenset(
    {
        "GROUP", "SERVER", "MACHINE_ALIAS", "PCR_POLICY_SERVER", "DOWNLOAD_USER", "DOWNLOAD_PASSWORD",
        "FLATCAR_RELEASE_VERSION", "FLATCAR_RELEASE_BOARD", "FLATCAR_RELEASE_APPID",
    }
)  # fmt: skip  # omaha_request_params.cc Init(): every GetConfValue key (update.conf, then release)
_SAFE_UNQUOTED = re.compile(r"[A-Za-z0-9_.,:/@%+=-]*")


class UpdateConfError(ValueError):
    """A value that cannot be written (a key that is not a shell identifier, a newline in a value,
    a value update_engine and systemd would read differently)."""


@dataclass
class _Line:
    raw: bytes  # the line as in the file, without its "\n"
    where: str  # "<file>:<line number>"
    engine: tuple[str, str] | None = None  # update_engine's (key, value)
    systemd: list[tuple[str, str]] = field(default_factory=list)  # systemd's, one per "\r" part


class UpdateConf:
    def __init__(self, lines: list[_Line], source: str, warnings: list[str], final_newline: bool) -> None:
        self._lines = lines
        self.source = source
        self.warnings = warnings
        self._final_newline = final_newline

    _path: Path | None = None

    # ----- reading -----------------------------------------------------------------------
    @classmethod
    def parse(cls, data: bytes | str, source: str = "<update.conf>") -> UpdateConf:
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        chunks = data.split(b"\n")
        final_newline = chunks[-1] == b""
        if final_newline:
            chunks.pop()
        conf = cls([], source, [], final_newline)
        for number, raw in enumerate(chunks, start=1):
            conf._lines.append(conf._read_line(raw, f"{source}:{number}"))
        return conf

    def _warn(self, where: str, message: str) -> None:
        warning = f"{where}: {message}"
        log.debug("%s", warning)  # callers log `warnings` (the reporter once, not every read)
        self.warnings.append(warning)

    def _read_line(self, raw: bytes, where: str) -> _Line:
        line = _Line(raw, where, engine_reading(raw))
        try:
            text: str | None = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        readable = text if text is not None else raw.decode("utf-8", "replace")
        parts = readable.split("\r")
        if len(parts) == 2 and parts[1] == "":
            parts = parts[:1]  # a CRLF line end: one line for systemd too
        split = len(parts) > 1
        if split:
            self._warn(
                where,
                f"carriage return inside {shown(readable)}: update_engine reads one line, "
                f"systemd's EnvironmentFile= (locksmithd) {len(parts)}",
            )
        for part in parts:
            try:
                assignment = systemd_assignment(part)
            except ValueError as exc:
                self._warn(where, f"ignoring malformed line {shown(part)}: {exc}")
                continue
            if assignment is None:
                continue
            if text is None:
                self._warn(
                    where, f"{assignment[0]}= is not UTF-8: systemd refuses the whole file; line ignored"
                )
                continue
            line.systemd.append(assignment)
        if not split:
            self._compare_readings(line, where)
        return line

    def _compare_readings(self, line: _Line, where: str) -> None:
        """A warning when update_engine and systemd disagree about a key update_engine reads."""
        engine = line.engine if line.engine is not None and line.engine[0] in UPDATE_ENGINE_KEYS else None
        named = [(k, v) for k, v in line.systemd if k in UPDATE_ENGINE_KEYS]
        if engine is None and not named:
            return
        if named and engine is not None and named[-1] == engine and len(line.systemd) == 1:
            return
        engine_says = f"{engine[0]}={shown(engine[1])}" if engine else "none of its keys"
        systemd_says = ", ".join(f"{k}={shown(v)}" for k, v in line.systemd) or "nothing"
        self._warn(
            where,
            f"update_engine reads {engine_says} here, systemd {systemd_says}; "
            "coreroll takes update_engine's reading for its keys",
        )

    @classmethod
    def load(cls, path: Path | str) -> UpdateConf:
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        conf = cls.parse(data, str(path))
        conf._path = path
        return conf

    @classmethod
    def merged(cls, layers: Iterable[UpdateConf], source: str = "update.conf (merged)") -> UpdateConf:
        """One read-only view of several files, lowest first; warnings are the layers' own."""
        conf = cls([], source, [], True)
        for layer in layers:
            conf._lines.extend(layer._lines)
            conf.warnings.extend(layer.warnings)
        return conf

    # ----- access ------------------------------------------------------------------------
    def _assignments(self, line: _Line, key: str) -> list[str]:
        """The values `line` gives `key`, in the reading of the program that uses `key`."""
        if key in UPDATE_ENGINE_KEYS:
            return [line.engine[1]] if line.engine is not None and line.engine[0] == key else []
        return [v for k, v in line.systemd if k == key]

    def _last(self, key: str) -> tuple[_Line, str] | None:
        for line in reversed(self._lines):
            values = self._assignments(line, key)
            if values:
                return line, values[-1]
        return None

    def get(self, key: str, default: str | None = None) -> str | None:
        found = self._last(key)
        return default if found is None else found[1]

    def where(self, key: str) -> str:
        """The "<file>:<line>" of the line giving `key` its value, or the source when none does."""
        found = self._last(key)
        return self.source if found is None else found[0].where

    def keys(self) -> list[str]:
        found: dict[str, None] = {}
        for line in self._lines:
            if line.engine is not None and line.engine[0] in UPDATE_ENGINE_KEYS:
                found[line.engine[0]] = None
            for key, _ in line.systemd:
                if key not in UPDATE_ENGINE_KEYS:
                    found[key] = None
        return list(found)

    # ----- changing ----------------------------------------------------------------------
    def _encoded(self, key: str, value: str, quoted: bool) -> bytes:
        """`KEY=value` that the program using `key` reads back as `value`, and the other one too."""
        if not KEY.fullmatch(key):
            raise UpdateConfError(f"{key!r} is not a valid update.conf key")
        if any(c in value for c in "\n\r\x00"):
            raise UpdateConfError(f"the value for {key} contains a newline or NUL")
        if not quoted and _SAFE_UNQUOTED.fullmatch(value):
            return f"{key}={value}".encode()
        if key in UPDATE_ENGINE_KEYS:
            # update_engine drops the quotes and keeps everything between; systemd agrees when
            # nothing inside needs a backslash
            if any(c in value for c in DQ_ESCAPABLE) or not value.isprintable():
                raise UpdateConfError(
                    f"the value for {key} {shown(value)} cannot be written so that update_engine "
                    "and systemd read it alike"
                )
            return f'{key}="{value}"'.encode()
        return f"{key}={double_quoted(value)}".encode()

    def set(self, key: str, value: str) -> None:
        """Rewrite the last line that gives `key` its value (keeping its double quotes), or append
        one. A line that holds more than this one assignment (a carriage return inside) is left as
        it is and the new line appended: the last one wins for both programs."""
        for index in range(len(self._lines) - 1, -1, -1):
            line = self._lines[index]
            if not self._assignments(line, key):
                continue
            if b"\r" in line.raw.rstrip(b"\r") or len(line.systemd) > 1:
                break
            old_value = line.raw.partition(b"=")[2].strip(b" \t\r")
            quoted = len(old_value) >= 2 and old_value[:1] == old_value[-1:] == b'"'
            self._lines[index] = self._read_line(self._encoded(key, value, quoted), line.where)
            return
        # appended; a last line without its "\n" gets one first
        where = f"{self.source}:{len(self._lines) + 1}"
        self._lines.append(self._read_line(self._encoded(key, value, False), where))
        self._final_newline = True

    def unset(self, key: str) -> None:
        self._lines = [line for line in self._lines if not self._assignments(line, key)]

    def render(self) -> bytes:
        body = b"\n".join(line.raw for line in self._lines)
        return body + b"\n" if self._lines and self._final_newline else body

    def save(self, path: Path | str | None = None) -> None:
        """Atomically; the file replaced keeps its mode and owner, a new one is 0644."""
        target = Path(path) if path is not None else self._path
        if target is None:
            raise UpdateConfError("no path to save to")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            old = os.stat(target)
        except FileNotFoundError:
            mode, owner = CREATED_MODE, None
        else:
            mode, owner = old.st_mode & 0o7777, (old.st_uid, old.st_gid)
        atomic_write(target, self.render(), mode=mode, owner=owner)
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
