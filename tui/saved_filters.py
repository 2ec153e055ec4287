"""Saved filters: a filter line kept under a name in `$XDG_CONFIG_HOME/coreroll/filters.toml`, listed
in the command palette (`filter: <name>` applies it). Plain Python (no Textual).

    store = FilterStore()                        # or FilterStore(path)
    loaded = store.load()                        # loaded.filters: [SavedFilter], loaded.problems: [str]
    store.save("beta errors", "channel:beta status:error")
    store.forget("beta errors")

The file is TOML, one filter a line, written by the palette's "save filter as" and editable by
hand:

    "beta errors" = "channel:beta status:error"
    stuck = "lock:stale"

A file that is not TOML raises `ConfigError` naming the line, and is never written over: saving
refuses until it is mended. An entry that is not a string or not a valid filter is left out and
reported (`problems`, each naming its line); the others still load. Saving changes only the line
of that name (or appends one), so comments and the operator's own layout stay; the result is
parsed again before it replaces the file, and the read-modify-write holds a lock on the folder so
two dashboards saving at once lose neither change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from coreroll.atomicfile import atomic_write
from coreroll.watch.query import QueryError, parse_query
from tui.user_config import (
    ConfigError,
    config_dir,
    folder_locked,
    key_lines,
    parse_toml,
    read_toml,
    toml_string,
)

HEADER = '# coreroll saved filters: "name" = "filter" (the syntax of the filter line, /)\n'


@dataclass(frozen=True)
class SavedFilter:
    name: str
    query: str
    line: int | None = None


@dataclass(frozen=True)
class LoadedFilters:
    filters: list[SavedFilter]
    problems: list[str]


class FilterStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else config_dir() / "filters.toml"

    def load(self) -> LoadedFilters:
        """Every usable filter (no file: none); raises ConfigError if the file is not TOML or not
        readable."""
        try:
            data, lines = read_toml(self.path)
        except FileNotFoundError:
            return LoadedFilters([], [])
        except OSError as exc:
            raise ConfigError(f"{self.path}: {exc.strerror or exc}") from None
        filters: list[SavedFilter] = []
        problems: list[str] = []
        for name, query in data.items():
            line = lines.get((name,))
            where = f"{self.path} line {line}" if line else str(self.path)
            if not isinstance(query, str):
                problems.append(f'{where}: {name!r} is not a filter: write "name" = "filter"')
                continue
            try:
                parse_query(query)
            except QueryError as exc:
                problems.append(f"{where}: {name!r}: {exc}")
                continue
            filters.append(SavedFilter(name, query, line))
        return LoadedFilters(filters, problems)

    def save(self, name: str, query: str) -> None:
        """Keep `query` under `name` (replacing a filter of that name); raises ConfigError (the
        file cannot be read as TOML: it is left as it is) or QueryError (not a filter)."""
        if not name.strip():
            raise ConfigError("a saved filter needs a name")
        parse_query(query)
        self._change(name, query)

    def forget(self, name: str) -> None:
        self._change(name, None)

    def _change(self, name: str, query: str | None) -> None:
        with folder_locked(self.path.parent):
            try:
                text = self.path.read_text(encoding="utf-8")
            except FileNotFoundError:
                text = HEADER
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{self.path}: cannot read it, left as it is: {exc}") from None
            data, lines = parse_toml(text, str(self.path)), key_lines(text)
            expected = dict(data)
            if query is None:
                expected.pop(name, None)
            else:
                expected[name] = query
            new_text = _edited(text, lines.get((name,)), name, query)
            if parse_toml(new_text, str(self.path)) != expected:
                raise ConfigError(
                    f"{self.path}: cannot change {name!r} without disturbing the rest; edit it by hand"
                )
            atomic_write(self.path, new_text.encode("utf-8"))


def _edited(text: str, line: int | None, name: str, query: str | None) -> str:
    """`text` with `name`'s line replaced (or removed, for query None), else a line appended."""
    entry = f"{toml_string(name)} = {toml_string(query)}\n" if query is not None else ""
    if line is None:
        if not entry:
            return text
        return text + ("" if not text or text.endswith("\n") else "\n") + entry
    kept = text.splitlines(keepends=True)
    kept[line - 1] = entry
    return "".join(kept)
