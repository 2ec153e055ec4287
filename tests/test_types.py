"""The type checker (basedpyright, configured in pyproject.toml [tool.basedpyright]) finds no error in
coreroll, tui and widgets, and every comment that silences it names one rule and says why."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("coreroll", "tui", "widgets")
# `# pyright: ignore[rule, ...]  # why`: the rule list, then a comment giving the reason
_REASONED = re.compile(r"#\s*pyright:\s*ignore\[[A-Za-z, ]+\]\s+#\s*\S")
_SILENCER = re.compile(r"#\s*(type|pyright):\s*ignore")


@pytest.mark.slow
def test_the_type_checker_finds_no_error() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "basedpyright",
            "--outputjson",
            "--pythonpath",
            sys.executable,
            "--project",
            str(ROOT),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        pytest.fail(
            f"basedpyright gave no JSON report (exit {done.returncode}): {done.stdout}{done.stderr}"[:4000]
        )
    errors = [
        f"{Path(d['file']).relative_to(ROOT)}:{d['range']['start']['line'] + 1}: {d['message']} ({d.get('rule', '')})"
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    ]
    assert report["summary"]["filesAnalyzed"] > 100  # the packages were found, not an empty run
    assert errors == [], f"{len(errors)} type errors:\n" + "\n".join(errors)


def test_each_silenced_check_names_its_rule_and_reason() -> None:
    # `# type: ignore` is off in the checker's settings (it silences every rule on its line), so
    # one in package code would silence nothing and only mislead
    unreasoned = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _SILENCER.search(line) and not _REASONED.search(line)
    ]
    assert unreasoned == [], "write `# pyright: ignore[rule]  # why` instead:\n" + "\n".join(unreasoned)
