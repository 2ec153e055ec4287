"""`coreroll lock help [COMMAND]` and `coreroll lock -version`, laid out as locksmithctl prints them.

locksmithctl (flatcar/locksmith locksmithctl/help.go:53-84) prints the global usage as NAME,
USAGE, VERSION, COMMANDS and GLOBAL OPTIONS sections through a text/tabwriter (tab padding, tab
width 8, padding 1: locksmithctl.go:87), one `\\t--name=default\\tusage` line per flag in name
order (Go's flag.VisitAll); `help COMMAND` prints NAME, USAGE, DESCRIPTION and a pointer back to
`help`; an unknown command is `Unrecognized command: X`, exit 1. `-version` prints
`<program> version <version>` (locksmithctl.go:145). The words are coreroll's own.

- `global_usage(program, version, flags) -> str`; `flags`: (name, default, usage) triples.
- `command_usage(program, name) -> str | None` (None: no such command).
- `version_line(program, version) -> str`.
"""

from __future__ import annotations

from collections.abc import Sequence

DESCRIPTION = "Manage the cluster wide reboot lock."
TAB_WIDTH = 8

# (name, summary, usage, description)
COMMANDS = (
    ("help", "Show a list of commands or help for one command", "[COMMAND]",
     "Show every command, or the details of one command."),
    ("lock", "Lock this machine or a given machine-id for reboot.", "[machine-id]",
     "Take one slot of the group's reboot lock for the machine-id given, or for this machine\n"
     "(/etc/machine-id). Fails when no slot is free or the machine already holds one."),
    ("set-max", "Set the maximum number of lock holders", "N",
     "Set how many machines of the group may hold the reboot lock at once. The free slots move\n"
     "by the difference; 0 stops every new lock until the max is raised again."),
    ("status", "Get the status of the cluster wide reboot lock.", "",
     "Print the free slots, the max and the machines holding the group's reboot lock."),
    ("unlock", "Unlock this machine or a given machine-id for reboot.", "[machine-id]",
     "Release the reboot lock held by the machine-id given, or by this machine. Use it for a\n"
     "machine that died holding the lock."),
    ("groups", "List every reboot-lock group and its holders.", "",
     "Print each group's free slots, max and holders (coreroll's addition to locksmithctl);\n"
     "with --etcd-api auto, on both etcd APIs."),
)  # fmt: skip


def _aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of tab-terminated cells padded with tabs as Go's tabwriter does for one column
    block (minwidth 0, tabwidth 8, padding 1, padchar '\\t'); each row's last cell is free text."""
    columns = max(len(row) for row in rows) - 1
    widths = []
    for index in range(columns):
        width = max(len(row[index]) for row in rows if len(row) > index + 1) + 1
        widths.append(-(-width // TAB_WIDTH) * TAB_WIDTH)
    lines = []
    for row in rows:
        cells = [cell + "\t" * -(-(widths[i] - len(cell)) // TAB_WIDTH) for i, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + row[-1])
    return lines


def global_usage(program: str, version: str, flags: Sequence[tuple[str, str, str]]) -> str:
    lines = [
        "NAME:",
        *_aligned([["", f"{program} - {DESCRIPTION}"]]),
        "",
        "USAGE: ",
        *_aligned([["", f"{program} [global options] <command> [command options] [arguments...]"]]),
        "",
        "VERSION:",
        *_aligned([["", version]]),
        "",
        "COMMANDS:",
        *_aligned([["", name, summary] for name, summary, _, _ in COMMANDS]),
        "",
        "GLOBAL OPTIONS:",
        *_aligned([["", f"--{name}={default}", usage] for name, default, usage in sorted(flags)]),
        "",
        f'Run "{program} help <command>" for more details on a specific command.',
    ]
    return "\n".join(lines) + "\n"


def command_usage(program: str, name: str) -> str | None:
    for command, summary, usage, description in COMMANDS:
        if command == name:
            lines = [
                "NAME:",
                f"\t{command} - {summary}",
                "",
                "USAGE:",
                f"\t{program} {command} {usage}",
                "",
                "DESCRIPTION:",
                *(f"\t{line}" for line in description.strip().split("\n")),
                "",
                f'For help on global options run "{program} help"',
            ]
            return "\n".join(lines) + "\n"
    return None


def version_line(program: str, version: str) -> str:
    return f"{program} version {version}"
