"""`coreroll lock help [COMMAND]` and `coreroll lock -version`, laid out as locksmithctl prints them
(flatcar/locksmith locksmithctl/help.go:53-84, locksmithctl.go:145)."""

from __future__ import annotations

from collections.abc import Callable

from coreroll import __version__
from tests.locks.conftest import Result


def test_version_line(lock_cli: Callable[..., Result]) -> None:
    assert lock_cli("-version") == Result(0, f"coreroll lock version {__version__}\n", "")
    assert lock_cli("--version", "status") == Result(0, f"coreroll lock version {__version__}\n", "")


def test_help_lists_commands_and_flags_in_locksmithctl_sections(lock_cli: Callable[..., Result]) -> None:
    result = lock_cli("help")
    assert result.code == 0 and result.err == ""
    lines = result.out.splitlines()
    sections = [line for line in lines if line and not line.startswith("\t") and line.endswith((":", ": "))]
    assert sections == ["NAME:", "USAGE: ", "VERSION:", "COMMANDS:", "GLOBAL OPTIONS:"]
    assert "\tcoreroll lock - Manage the cluster wide reboot lock." in lines
    assert f"\t{__version__}" in lines
    commands = lines[lines.index("COMMANDS:") + 1 : lines.index("GLOBAL OPTIONS:") - 1]
    assert [c.split("\t")[1] for c in commands] == ["help", "lock", "set-max", "status", "unlock", "groups"]
    options = lines[lines.index("GLOBAL OPTIONS:") + 1 : -2]
    names = [o.split("\t")[1].split("=")[0] for o in options]
    assert names == sorted(names) and "--endpoint" in names and "--etcd-cafile" in names
    assert "\t--endpoint=http://127.0.0.1:2379,http://127.0.0.1:4001\t" in result.out
    assert lines[-1] == 'Run "coreroll lock help <command>" for more details on a specific command.'


def test_help_pads_columns_with_tabs_to_one_tab_stop(lock_cli: Callable[..., Result]) -> None:
    # Go's tabwriter with tab padding: every summary starts at the same tab stop
    lines = lock_cli("help").out.splitlines()
    commands = lines[lines.index("COMMANDS:") + 1 : lines.index("GLOBAL OPTIONS:") - 1]
    starts = {len((line.rsplit("\t", 1)[0] + "\t").expandtabs(8)) for line in commands}
    assert len(starts) == 1
    options = lines[lines.index("GLOBAL OPTIONS:") + 1 : -2]
    assert len({len((line.rsplit("\t", 1)[0] + "\t").expandtabs(8)) for line in options}) == 1


def test_help_for_one_command_and_an_unknown_one(lock_cli: Callable[..., Result]) -> None:
    result = lock_cli("help", "set-max")
    assert result.code == 0
    assert result.out.startswith("NAME:\n\tset-max - Set the maximum number of lock holders\n\nUSAGE:\n")
    assert "\tcoreroll lock set-max N\n" in result.out
    assert result.out.endswith('For help on global options run "coreroll lock help"\n')
    assert lock_cli("help", "reboot\x1b[2J") == Result(1, "Unrecognized command: reboot\\x1b[2J\n", "")
