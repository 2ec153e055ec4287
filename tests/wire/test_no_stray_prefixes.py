"""No module but coreroll/wire spells an etcd key prefix: code, widgets, tests (other than
tests/wire) and benchmarks import them from coreroll.wire.keys. Docstrings and comments may name
keys for the reader; string and bytes literals in code may not."""

from __future__ import annotations

import ast
from pathlib import Path

from coreroll.wire import keys

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("coreroll", "tui", "widgets", "tests", "bench")
EXEMPT = (ROOT / "coreroll" / "wire", ROOT / "tests" / "wire")
# the namespaces every key lives under: a literal containing one is a key spelled by hand
STEMS = (
    keys.NODES_PREFIX.split("/nodes/")[0] + "/",  # coreroll/v1/
    keys.LOCK_PREFIX.rstrip("/"),
    keys.AIRLOCK_PREFIX.split("/")[0],
)


def _docstrings(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def stray_prefixes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in skip:
            value = node.value
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            if isinstance(text, str) and any(stem in text for stem in STEMS):
                where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                found.append(f"{where}:{node.lineno}: {text[:70]!r}")
    return sorted(found)


def test_no_module_outside_wire_spells_a_key_prefix() -> None:
    files = [
        path
        for top in SCANNED
        for path in sorted((ROOT / top).rglob("*.py"))
        if not any(path.is_relative_to(exempt) for exempt in EXEMPT)
    ]
    assert len(files) > 100  # the scan found the tree
    found = [hit for path in files for hit in stray_prefixes(path)]
    assert found == [], "use coreroll.wire.keys instead:\n" + "\n".join(found)


def test_the_rule_sees_code_but_not_docstrings(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Keys live at `coreroll/v1/nodes/<id>/status`."""\n'
        'KEY = f"coreroll/v1/nodes/{1}/status"  # spelled by hand\n'
        'LOCK = b"coreos.com/updateengine/rebootlock/semaphore"\n'
        'AIR = "com.coreos.airlock/groups/x/v1/semaphore"\n'
    )
    assert [hit.split(":")[1] for hit in stray_prefixes(sample)] == ["2", "3", "4"]
