"""The operator's key map: which keys the binding ids get, from a file and the environment, checked
before the dashboard starts.

    keymap = load_keymap(DashApp, file=Path("keys.toml"), file_wins=True, env="check=C")
    app.set_keymap(keymap.keys)          # binding id -> "key[,key]" (Textual's key names)

Sources, per binding id the most explicit one wins (command line > environment > config file):
`--keymap FILE` > `COREROLL_KEYMAP` > `$XDG_CONFIG_HOME/coreroll/keys.toml`. `--keymap FILE` is read
instead of keys.toml, not on top of it. The file is TOML, one binding id per line:

    check = "C"                 # a key, in Textual's names ("?" or "question_mark", "ctrl+k", "f5")
    freeze = ["F", "ctrl+f"]    # several keys (or "F,ctrl+f")
    table.up = "up,w"           # dotted ids as they are, or under a [table] / [list] header

COREROLL_KEYMAP is `id=key[,key];id=key` (or `id=key,id=key`). Everything is refused, with every
problem listed and each one naming where it was written (file and line, or COREROLL_KEYMAP): a
file that is not TOML, an id that no binding has, a key Textual has no name for, an empty key, and
a key two bindings would share where both are live at once (`key_scopes`: the main screen with
the app's keys and the focused list; each dialog and screen on top with the app's priority keys).
A conflict names both bindings and where each got the key. Only conflicts the key map creates are
refused: the built-in shadowing (`q` closes `?` instead of quitting) is by design.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.binding import Binding
from textual.dom import DOMNode
from textual.keys import REPLACED_KEYS, Keys, format_key, key_to_character

from tui.keymap import declared_bindings
from tui.screens.detail import NodeDetailScreen
from tui.screens.main import MainScreen
from tui.user_config import ConfigError, KeyPath, config_dir, read_toml
from widgets.dialogs import ChoiceDialog, ConfirmDialog, NumberDialog, TextDialog
from widgets.event_log import EventLog
from widgets.help import HelpScreen
from widgets.list_keys import NavOptionList, NavScroll
from widgets.lock_panel import LockPanel
from widgets.node_table import NodeTable

ENV = "COREROLL_KEYMAP"
DEFAULT = "default"  # the origin of a key nobody remapped
BUILT_IN = "built in, no id to remap"  # a binding of Textual's own (or ours) without an id

_MODIFIERS = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})
_NAMED_KEYS = frozenset(k.value for k in Keys if "+" not in k.value and not k.value.startswith("<"))


class KeymapError(ConfigError):
    """The key map cannot be used; the message lists every problem, one per line."""


@dataclass(frozen=True)
class KeyChoice:
    """Keys the operator gave one binding id, and where (for errors)."""

    binding_id: str
    keys: tuple[str, ...]  # Textual's key names
    origin: str  # "keys.toml line 3", "COREROLL_KEYMAP"


@dataclass(frozen=True)
class LoadedKeymap:
    keys: dict[str, str] = field(default_factory=dict)  # binding id -> "key,key" for App.set_keymap
    sources: tuple[str, ...] = ()  # what was read, for `?`
    origins: dict[str, str] = field(default_factory=dict)  # binding id -> where its keys come from


@dataclass(frozen=True)
class Scope:
    """Bindings that are live at the same time (one screen, with one widget focused)."""

    name: str
    layers: tuple[Sequence[Binding], ...]


def default_path() -> Path:
    return config_dir() / "keys.toml"


def normalize_key(key: str) -> str:
    """Textual's name for `key` ("?" -> "question_mark"); ValueError saying what is wrong."""
    key = key.strip()
    if not key:
        raise ValueError("no key given")
    if len(key) == 1:
        return _single(key)
    *modifiers, base = key.split("+")
    unknown = [m for m in modifiers if m not in _MODIFIERS]
    if unknown:
        raise ValueError(
            f"unknown modifier {unknown[0]!r} in {key!r} (modifiers: {', '.join(sorted(_MODIFIERS))})"
        )
    if not base:
        raise ValueError(f"no key after the modifier in {key!r}")
    if len(base) == 1:
        base = _single(base)
    elif base not in _NAMED_KEYS and _character_name(base) != base:
        near = difflib.get_close_matches(base.lower(), _NAMED_KEYS, n=1) or [_character_name(base)]
        hint = f" (did you mean {near[0]!r}?)" if near[0] else ""
        raise ValueError(f"no key is called {base!r}{hint}")
    return "+".join([*modifiers, base])


def _character_name(name: str) -> str:
    """The name Textual gives the character called `name` ("slash" for "solidus"), or ""."""
    character = key_to_character(REPLACED_KEYS.get(name, name))
    return _single(character) if character and len(character) == 1 and character.isprintable() else ""


def _single(character: str) -> str:
    if not character.isprintable() or character.isspace():
        raise ValueError(f"{character!r} is not a key name (write space, tab, ...)")
    return next(iter(Binding.make_bindings([Binding(character, "noop")]))).key


def _keys(value: Iterable[str], binding_id: str, origin: str) -> tuple[tuple[str, ...], list[str]]:
    keys: list[str] = []
    problems: list[str] = []
    for key in value:
        try:
            keys.append(normalize_key(key))
        except ValueError as exc:
            problems.append(f"{origin}: {binding_id}: {exc}")
    if not keys and not problems:
        problems.append(f"{origin}: {binding_id}: no key given")
    return tuple(keys), problems


def choices_from_env(value: str) -> tuple[list[KeyChoice], list[str]]:
    """COREROLL_KEYMAP: `id=key[,key];id=key`, where a piece without `=` adds a key to the id before it."""
    pieces: list[tuple[str, list[str]]] = []
    problems: list[str] = []
    for piece in value.replace(";", ",").split(","):
        piece = piece.strip()
        if not piece:
            continue
        if "=" in piece:
            binding_id, _, key = piece.partition("=")
            pieces.append((binding_id.strip(), [key]))
        elif pieces:
            pieces[-1][1].append(piece)
        else:
            problems.append(f"{ENV}: {piece!r} is not id=key")
    choices: list[KeyChoice] = []
    seen: set[str] = set()
    for binding_id, keys in pieces:
        if not binding_id:
            problems.append(f"{ENV}: a key without a binding id: ={','.join(keys)}")
            continue
        if binding_id in seen:
            problems.append(f"{ENV}: {binding_id} is given twice")
            continue
        seen.add(binding_id)
        normalized, bad = _keys(keys, binding_id, ENV)
        problems.extend(bad)
        if normalized and not bad:
            choices.append(KeyChoice(binding_id, normalized, ENV))
    return choices, problems


def choices_from_file(path: Path) -> tuple[list[KeyChoice], list[str]]:
    """A keys.toml; raises ConfigError if it is not TOML (naming the line), OSError if unreadable."""
    data, lines = read_toml(path)
    choices: list[KeyChoice] = []
    problems: list[str] = []
    for key_path, value in _flatten(data, ()):
        binding_id = ".".join(key_path)
        origin = _where(path, lines, key_path)
        if isinstance(value, str):
            keys: list[Any] = value.split(",")
        elif isinstance(value, list) and value and all(isinstance(k, str) for k in value):
            keys = value
        else:
            problems.append(f"{origin}: {binding_id}: expected a key or a list of keys, got {value!r}")
            continue
        normalized, bad = _keys(keys, binding_id, origin)
        problems.extend(bad)
        if normalized and not bad:
            choices.append(KeyChoice(binding_id, normalized, origin))
    return choices, problems


def _flatten(data: Mapping[str, Any], prefix: KeyPath) -> Iterable[tuple[KeyPath, Any]]:
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _flatten(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def _where(path: Path, lines: dict[KeyPath, int], key_path: KeyPath) -> str:
    line = lines.get(key_path)
    return f"{path} line {line}" if line is not None else str(path)


def key_scopes(app_class: type[DOMNode]) -> list[Scope]:
    """Which bindings are live together, per screen (and focused widget)."""
    app = declared_bindings(app_class)
    app_priority = [b for b in app if b.priority]
    main = declared_bindings(MainScreen)
    return [
        Scope("the main screen", (declared_bindings(NodeTable), main, app)),
        Scope("the main screen", (declared_bindings(LockPanel), main, app)),
        Scope("the main screen", (declared_bindings(EventLog), main, app)),
        Scope(
            "the node detail",
            (declared_bindings(NavScroll), declared_bindings(NodeDetailScreen), app_priority),
        ),
        Scope("the ? screen", (declared_bindings(NavScroll), declared_bindings(HelpScreen), app_priority)),
        Scope("confirm dialogs", (declared_bindings(ConfirmDialog), app_priority)),
        Scope(
            "the channel picker",
            (declared_bindings(NavOptionList), declared_bindings(ChoiceDialog), app_priority),
        ),
        Scope("number dialogs", (declared_bindings(NumberDialog), app_priority)),
        Scope("text dialogs", (declared_bindings(TextDialog), app_priority)),
    ]


def check_choices(choices: Mapping[str, KeyChoice], scopes: Sequence[Scope]) -> list[str]:
    """Every problem with `choices` (binding id -> keys) in `scopes`: unknown ids and conflicts."""
    known = {b.id for scope in scopes for layer in scope.layers for b in layer if b.id}
    problems: list[str] = []
    for choice in choices.values():
        if choice.binding_id not in known:
            near = difflib.get_close_matches(choice.binding_id, sorted(known), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else " (? lists the binding ids)"
            problems.append(f"{choice.origin}: no binding has the id {choice.binding_id!r}{hint}")
    reported: set[tuple[str, ...]] = set()
    for scope in scopes:
        by_key: dict[str, dict[str, str]] = {}  # key -> binding name -> origin
        for layer in scope.layers:
            for binding in layer:
                choice = choices.get(binding.id or "")
                if choice is not None:
                    for key in choice.keys:
                        by_key.setdefault(key, {})[choice.binding_id] = choice.origin
                elif binding.id is not None:
                    by_key.setdefault(binding.key, {}).setdefault(binding.id, DEFAULT)
                else:
                    by_key.setdefault(binding.key, {}).setdefault(binding.action, BUILT_IN)
        for key, names in by_key.items():
            if len(names) < 2 or all(origin in (DEFAULT, BUILT_IN) for origin in names.values()):
                continue
            pair = tuple(sorted(names))
            if (key, *pair) in reported:
                continue
            reported.add((key, *pair))
            who = " and ".join(f"{name} ({origin})" for name, origin in sorted(names.items()))
            problems.append(f"key {format_key(key)!r} is bound twice on {scope.name}: {who}")
    return problems


def load_keymap(
    app_class: type[DOMNode], *, file: Path | None = None, file_wins: bool = False, env: str | None = None
) -> LoadedKeymap:
    """The key map from `file` (None: none) and the COREROLL_KEYMAP value `env` (None: read the
    environment); `file_wins` when the file was named on the command line. Raises KeymapError
    listing every problem."""
    env = os.environ.get(ENV, "") if env is None else env
    problems: list[str] = []
    layers: list[list[KeyChoice]] = []
    sources: list[str] = []
    if file is not None:
        try:
            from_file, bad = choices_from_file(file)
        except OSError as exc:
            raise KeymapError(f"key map {file}: {exc.strerror or exc}") from None
        except ConfigError as exc:
            raise KeymapError(str(exc)) from None
        layers.append(from_file)
        problems.extend(bad)
        sources.append(str(file))
    if env.strip():
        from_env, bad = choices_from_env(env)
        layers.insert(0 if file_wins else len(layers), from_env)
        problems.extend(bad)
        sources.insert(0 if file_wins else len(sources), ENV)
    merged: dict[str, KeyChoice] = {}
    for layer in layers:
        merged.update({choice.binding_id: choice for choice in layer})
    problems.extend(check_choices(merged, key_scopes(app_class)))
    if problems:
        raise KeymapError("\n".join(problems))
    return LoadedKeymap(
        keys={i: ",".join(c.keys) for i, c in merged.items()},
        sources=tuple(sources),
        origins={i: c.origin for i, c in merged.items()},
    )


def keymap_file(named: str | None) -> tuple[Path | None, bool]:
    """(the key map file to read, whether it was named on the command line): `--keymap FILE`, else
    keys.toml in the config folder when there is one."""
    if named:
        return Path(named), True
    path = default_path()
    return (path, False) if path.is_file() else (None, False)
