"""Docstrings and comments name only files and modules that exist in the repository.

A reader follows `coreroll/locks/store.py` or `coreroll.demo.plan` from a docstring; a name left
behind by a rename sends them nowhere. What counts as a repository path:
- `dir/.../name` whose first part is a top-level directory of the repo (`coreroll/`, `docs/`,
  `deploy/`, `bench/`, ...), with an extension, a trailing `/`, or three parts or more (a two-part
  `bench/test` without an extension is prose);
- any `.../name.py` (`...` and `DIR` are placeholders);
- a bare `name.md`, `name.py` or `name.tcss`: some file of the repo has that name (notes kept outside
  the repository, such as a design document, are not there for a reader of the code);
- a dotted `coreroll.x.y` (or `tui.`, `widgets.`, `bench.`): a module, or up to two attributes of one.
Not repository paths: etcd keys (`coreroll/v1/nodes/...`), placeholders (`DIR/update_engine.json`),
absolute paths and URLs, and the upstream files listed in `OUTSIDE`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from coreroll.wire.keys import NODES_PREFIX

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("coreroll", "tui", "widgets", "bench", "tests")
TOP_DIRS = frozenset(p.name for p in ROOT.iterdir() if p.is_dir() and p.name not in {".git", ".venv"})
# Not preceded by a path, URL, placeholder or glob character: `/etc/x.conf`, `http://h/p`, `<id>/x`.
PATH = re.compile(r"(?<![\w./:~<>$*{-])((?:[\w.*-]+/)+[\w.*-]*)")
DOTTED = re.compile(r"(?<![\w./])((?:coreroll|tui|widgets|bench)(?:\.\w+)+)")
EXTENSION = re.compile(r"\.[a-z]{1,7}$")
BARE_NAME = re.compile(r"(?<![\w./-])([\w-]+\.(?:md|py|tcss))\b")


def repo_file_names() -> frozenset[str]:
    """The name of every file in the repository (not in .git, .venv or caches)."""
    names: set[str] = set()
    for _, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in {".git", ".venv", "__pycache__", ".pytest_cache"}]
        names.update(files)
    return frozenset(names)


REPO_FILE_NAMES = repo_file_names()
FILE_NAME_ENDINGS = (".py", ".md", ".json", ".toml", ".tcss", ".txt")  # `tui.py` names a file
TRIPLE_QUOTED = re.compile(r'("""|\'\'\')(.*?)\1', re.DOTALL)
ETCD_KEY = re.compile(r"^coreroll/v\d+/")
# Files of other projects the code cites, with where they live.
OUTSIDE = {
    "build_library/disk_layout.json": "flatcar/scripts",
}


def texts(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every comment and triple-quoted string (docstrings) in `source`.

    Regular expressions, not tokenize and ast: ten times faster, and a `#` or a triple quote inside
    a string only adds text to check.
    """
    for match in TRIPLE_QUOTED.finditer(source):
        first = source.count("\n", 0, match.start()) + 1
        for offset, line in enumerate(match.group(2).split("\n")):
            yield first + offset, line
    for number, line in enumerate(source.splitlines(), 1):
        if "#" in line:
            yield number, line[line.index("#") :]


def path_names(text: str) -> Iterator[str]:
    for match in PATH.finditer(text):
        name = match.group(1).rstrip(".")
        parts = name.rstrip("/").split("/")
        placeholder = any(part.isupper() or part.strip(".") == "" for part in parts)
        if ETCD_KEY.match(name) or placeholder or name in OUTSIDE:
            continue
        in_repo_dir = parts[0] in TOP_DIRS and (
            EXTENSION.search(name) or name.endswith("/") or len(parts) >= 3
        )
        if in_repo_dir or name.endswith(".py"):
            yield name


def path_exists(name: str) -> bool:
    return any(ROOT.glob(name)) if "*" in name else (ROOT / name).exists()


def module_exists(dotted: str) -> bool:
    """A module, or a module and a name it defines (then maybe one attribute of that)."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:n])
        for source in (base.with_suffix(".py"), base / "__init__.py"):
            if source.exists():
                rest = parts[n:]
                return not rest or (
                    len(rest) <= 2 and re.search(rf"\b{rest[0]}\b", source.read_text()) is not None
                )
    return False


def missing_names(source: str) -> list[tuple[int, str]]:
    """(line, name) of each repository path or module named in `source` that does not exist."""
    found = []
    for line, text in texts(source):
        found += [(line, name) for name in path_names(text) if not path_exists(name)]
        found += [(line, name) for name in BARE_NAME.findall(text) if name not in REPO_FILE_NAMES]
        for match in DOTTED.finditer(text):
            dotted = match.group(1).rstrip(".")
            if not dotted.endswith(FILE_NAME_ENDINGS) and not module_exists(dotted):
                found.append((line, dotted))
    return found


def test_docstrings_and_comments_name_only_existing_files() -> None:
    this_file = Path(__file__).resolve()  # its examples name missing files on purpose
    sources = [
        p
        for d in SCANNED
        for p in sorted((ROOT / d).rglob("*.py"))
        if "__snapshots__" not in p.parts and p != this_file
    ]
    assert len(sources) > 100
    missing = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in sources
        for line, name in missing_names(path.read_text())
    ]
    assert missing == [], "\n".join(missing)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("see `coreroll/locks/store.py` and docs/api.md.", ["coreroll/locks/store.py", "docs/api.md"]),
        ("results in bench/results/<name>.json", ["bench/results/"]),
        (f"the key `{NODES_PREFIX}<id>` and /etc/coreos/update.conf", []),
        ("http://127.0.0.1/coreroll/x.py, DIR/update_engine.json, a bench/test hook", []),
        ("screens/main.py", ["screens/main.py"]),
    ],
)
def test_what_counts_as_a_repository_path(text: str, names: list[str]) -> None:
    assert list(path_names(text)) == names


def test_a_missing_file_or_module_is_reported() -> None:
    source = '"""Uses coreroll/gone.py, coreroll/locks/store.py and coreroll.locks.gone.x."""\n# docs/gone.md, DESIGN.md\n'
    assert sorted(missing_names(source)) == [
        (1, "coreroll.locks.gone.x"),
        (1, "coreroll/gone.py"),
        (2, "DESIGN.md"),
        (2, "docs/gone.md"),
    ]
