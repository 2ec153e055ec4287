"""What the import-linter contracts (pyproject.toml, run by test_foundation.py) cannot see: modules
loaded at run time. The update server starts without the CLI, building the CLI's parser loads
none of the dashboard's wiring, and the commands reach the UI by one name only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code` (sys.modules: `-X importtime`
    misses modules loaded with importlib, as the CLI loads its commands)."""
    script = f"import sys\ntry:\n{indent(code)}\nexcept SystemExit:\n    pass\nprint(*sorted(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return set(result.stdout.split())


def indent(code: str) -> str:
    return "\n".join("    " + line for line in code.splitlines())


def test_python_m_coreroll_server_runs_without_the_cli() -> None:
    modules = loaded_after(
        "import runpy\nsys.argv = ['coreroll.server', '--help']\nrunpy.run_module('coreroll.server', run_name='__main__')"
    )
    assert "coreroll.server.command" in modules
    assert not {m for m in modules if m == "coreroll.cli" or m.startswith("coreroll.commands")}


def test_the_cli_parser_loads_no_dashboard_wiring() -> None:
    modules = loaded_after("from coreroll.cli import build_parser\nbuild_parser()")
    assert "coreroll.commands.dash" in modules
    assert not {m for m in modules if m.startswith(("coreroll.commands.dashboard.", "tui", "textual"))}


def test_a_missing_ui_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from coreroll.commands.dashboard import ui

    monkeypatch.setattr(ui, "UI_PACKAGE", "no_such_ui_package")
    with pytest.raises(
        ui.UIUnavailable, match="the dashboard is not available: No module named 'no_such_ui_package'"
    ):
        ui.ui_module("run")


def test_the_commands_reach_the_ui_only_through_ui_module() -> None:
    """No other module of coreroll names the UI package to importlib (or anything else)."""
    offenders = []
    for path in (ROOT / "coreroll").rglob("*.py"):
        if path.name == "ui.py" and path.parent.name == "dashboard":
            continue
        text = path.read_text()
        if 'import_module("tui' in text or "import_module('tui" in text or '"tui.' in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
