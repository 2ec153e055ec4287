"""`coreroll` starts fast: only the command named is imported, and `coreroll lock` loads nothing of
the server, the dashboard, gRPC or httpx (checked with `python -X importtime`, as a user runs it).
The time itself is measured in bench/cli_startup.py."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import subprocess
import sys

import pytest

from coreroll import commands

pytestmark = pytest.mark.slow  # real etcd / one process per case: several seconds together
HEAVY = ("grpc", "aetcd", "httpx", "fastapi", "uvicorn", "sqlalchemy", "textual", "tui", "widgets",
         "coreroll.server", "coreroll.watch", "coreroll.fleet", "coreroll.node", "coreroll.demo")  # fmt: skip
DEAD = "http://127.0.0.1:9"


def imported_by(*argv: str) -> set[str]:
    # importtime lists what `import` statements load; modules loaded by importlib.import_module
    # (the chosen command, the etcd backend) are missing there, so sys.modules is listed too
    code = (
        "import sys\nfrom coreroll.cli import main\ntry:\n    main(sys.argv[1:])\nfinally:\n"
        "    print('MODULES', *sorted(sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *argv],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "LOCKSMITHCTL_ENDPOINT": DEAD},
        check=False,
    )
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
        elif line.startswith("MODULES "):
            names.update(line.split()[1:])
    assert names, done.stderr[-500:]
    return names


@pytest.mark.parametrize(
    "argv", [("lock", "status"), ("lock", "--help"), ("--help",), ("lock", "help"), ("lock", "-version")]
)
def test_lock_commands_load_nothing_heavy(argv: tuple[str, ...]) -> None:
    names = imported_by(*argv)
    loaded = sorted(n for n in names if n.split(".")[0] in HEAVY or n.startswith(HEAVY))
    assert loaded == []


def test_other_commands_stay_unimported_for_lock() -> None:
    names = imported_by("lock", "status")
    assert "coreroll.commands.lock" in names
    mine = ("coreroll.commands.lock", "coreroll.commands.lock_ops")
    others = sorted(n for n in names if n.startswith("coreroll.commands.") and n not in mine)
    assert others == []


def test_summaries_are_what_each_module_registers() -> None:
    modules = sorted(
        info.name for info in pkgutil.iter_modules(commands.__path__) if hasattr(
            importlib.import_module(f"coreroll.commands.{info.name}"), "register"
        )
    )  # fmt: skip
    assert sorted(commands.SUMMARIES) == modules
    for name, summary in commands.SUMMARIES.items():
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(f"coreroll.commands.{name}").register(sub)
        (action,) = [a for a in sub._choices_actions if a.dest == name]
        assert action.help == summary, name
