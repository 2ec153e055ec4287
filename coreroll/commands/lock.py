"""`coreroll lock`: locksmithctl's reboot-lock commands, with the same output and exit codes.

    coreroll lock [flags] status | lock [id] | unlock [id] | set-max N | groups | help [COMMAND]
    coreroll lock -version

Flags may come before or after the subcommand, with one dash or two (Go's flag package accepts
both): --endpoint (repeatable or comma-separated; alias --etcd), --group, --etcd-api auto|v2|v3,
--etcd-cafile, --etcd-certfile, --etcd-keyfile, --etcd-username, --etcd-password, --json.
Each flag not given is read from LOCKSMITHCTL_<FLAG> (e.g. LOCKSMITHCTL_ETCD_CAFILE); the endpoint
then falls back to COREROLL_ETCD and to locksmithctl's defaults. The machine id defaults to
/etc/machine-id (COREROLL_MACHINE_ID_FILE names another file). `set-max` takes ASCII digits, refuses
negative values and values beyond Go's int64 (what locksmith can read), and accepts 0, which stops
every new lock in the group (see README, "Reboot locks"). Text output and errors show what etcd
holds (holders, group names, values in errors) with control characters made visible
(`coreroll.textsafe.visible`), so a crafted holder cannot drive the terminal; `--json` is JSON.

--etcd-api auto (the default) looks for semaphores on both APIs (`coreroll.locks.auto`): a command
on a group uses the API that holds it, else the one holding any semaphore, else v2 when etcd serves
it (where locksmithd creates them), else v3. When both APIs hold semaphores a note on stderr says
so and which one the command used; `groups` lists both with an API column. Asking for v2 on an
etcd that does not serve it is one line naming the flag, exit 1.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from coreroll.etcd.config import DEFAULT_ENDPOINTS, EtcdConfig, split_endpoints
from coreroll.locks.semaphore import INT64_MAX, in_int64
from coreroll.textsafe import print_error, visible

# Only what parsing needs is imported here (`coreroll lock --help` must start fast); running a
# subcommand loads coreroll/commands/lock_ops.py, which talks to etcd.

ACTIONS = ("status", "lock", "unlock", "set-max", "groups", "help")
ENV_PREFIX = "LOCKSMITHCTL_"
MACHINE_ID_FILE = "/etc/machine-id"
# (flag, help); each is also read from LOCKSMITHCTL_<FLAG>.
STRING_FLAGS = (
    ("group", "locksmith group (default: the default group)"),
    ("etcd-api", "API of the reboot locks: auto (default: where they are), v2 (locksmithd's) or v3"),
    ("etcd-cafile", "CA file to verify etcd's certificate (works alone, unlike locksmithctl)"),
    ("etcd-certfile", "client certificate file (with --etcd-keyfile)"),
    ("etcd-keyfile", "client key file"),
    ("etcd-username", "etcd user"),
    ("etcd-password", "etcd password"),
)
GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
# What Go's strconv.Atoi takes: ASCII digits with an optional sign (Python's int() also takes
# "١٢", "1_0" and surrounding spaces).
GO_INT = re.compile(r"[+-]?0*([0-9]+)")


class _IntermixedParser(argparse.ArgumentParser):
    """Accepts flags anywhere among the positionals (`lock --group g lock ID --json`)."""

    _intermixing = False

    def parse_known_args(self, args: Iterable[str] | None = None, namespace: Any = None) -> Any:  # pyright: ignore[reportIncompatibleMethodOverride]  # one signature for the stub's three overloads
        if self._intermixing:
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lock",
        help="locksmith reboot locks: status, lock, unlock, set-max, groups",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.__class__ = _IntermixedParser
    parser.add_argument(
        "--endpoint",
        "-endpoint",
        "--etcd",
        action="append",
        metavar="URL",
        help="etcd endpoint, repeatable or comma-separated (default http://127.0.0.1:2379,http://127.0.0.1:4001)",
    )
    for name, text in STRING_FLAGS:
        parser.add_argument(f"--{name}", f"-{name}", dest=name.replace("-", "_"), help=text)
    parser.add_argument("--json", "-json", action="store_true", default=None, help="print JSON")
    parser.add_argument("--version", "-version", action="store_true", help="print the version and exit")
    parser.add_argument("action", nargs="?", metavar="SUBCOMMAND", help=" | ".join(ACTIONS))
    parser.add_argument("args", nargs="*", metavar="ARG", help="machine id (lock, unlock) or N (set-max)")
    parser.set_defaults(handler=run)


_err = print_error


def _env(name: str) -> str | None:
    value = os.environ.get(ENV_PREFIX + name.upper().replace("-", "_"), "")
    return value or None  # like Go's flagsFromEnv, an empty variable counts as unset


def resolve(args: argparse.Namespace) -> tuple[EtcdConfig, str, bool, bool]:
    """(config, group, json, endpoints_explicit): command line, then LOCKSMITHCTL_*, then defaults."""
    if args.endpoint:
        endpoints, explicit = split_endpoints(args.endpoint), True
    elif _env("endpoint") or os.environ.get("COREROLL_ETCD"):
        endpoints, explicit = split_endpoints([_env("endpoint") or os.environ["COREROLL_ETCD"]]), True
    else:
        endpoints, explicit = DEFAULT_ENDPOINTS, False
    values = {}
    for name, _ in STRING_FLAGS:
        attr = name.replace("-", "_")
        values[attr] = getattr(args, attr) if getattr(args, attr) is not None else _env(name)
    as_json = args.json
    if as_json is None:
        raw = _env("json")
        if raw is not None and raw not in GO_TRUE | GO_FALSE:
            raise ValueError(f"invalid boolean value {raw!r} for {ENV_PREFIX}JSON")
        as_json = raw in GO_TRUE
    config = EtcdConfig(
        endpoints=endpoints,
        api=values["etcd_api"] or "auto",
        cafile=values["etcd_cafile"],
        certfile=values["etcd_certfile"],
        keyfile=values["etcd_keyfile"],
        username=values["etcd_username"],
        password=values["etcd_password"],
    )
    return config, values["group"] or "", as_json, explicit


def api_origin(args: argparse.Namespace) -> str:
    """How the etcd API was asked for, for an error naming it: `--etcd-api v2` or the variable."""
    if getattr(args, "etcd_api", None):
        return f"--etcd-api {args.etcd_api}"
    from_env = _env("etcd-api")
    return f"{ENV_PREFIX}ETCD_API={from_env}" if from_env else "--etcd-api"


def read_machine_id() -> str:
    path = Path(os.environ.get("COREROLL_MACHINE_ID_FILE") or MACHINE_ID_FILE)
    try:
        machine_id = path.read_text().strip()
    except FileNotFoundError:
        raise LookupError(
            f"Cannot read machine-id: {path} does not exist (containers often have none); "
            "give the id as an argument"
        ) from None
    except OSError as exc:
        raise LookupError(f"Cannot read machine-id: {path}: {exc.strerror}") from None
    if not machine_id:
        raise LookupError(f"Cannot read machine-id: {path} is empty; give the id as an argument")
    return machine_id


PROGRAM = "coreroll lock"


def _usage_flags() -> list[tuple[str, str, str]]:
    """(name, default, usage) of every flag, for `help` laid out as locksmithctl's."""
    flags = [
        ("endpoint", ",".join(DEFAULT_ENDPOINTS), "etcd endpoint, repeatable or comma-separated"),
        ("json", "false", "print JSON"),
        ("version", "false", "print the version and exit"),
    ]
    return flags + [(name, "", text) for name, text in STRING_FLAGS]


def _help(extra: list[str]) -> int:
    from coreroll import __version__
    from coreroll.locks.usage import command_usage, global_usage

    if not extra:
        print(global_usage(PROGRAM, __version__, _usage_flags()), end="", flush=True)
        return 0
    text = command_usage(PROGRAM, extra[0])
    if text is None:
        print(f"Unrecognized command: {visible(extra[0])}", flush=True)
        return 1
    print(text, end="", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.version:
        from coreroll import __version__
        from coreroll.locks.usage import version_line

        print(version_line(PROGRAM, __version__), flush=True)
        return 0
    action = args.action
    if action is None:
        _err(f"coreroll lock: missing subcommand (one of {', '.join(ACTIONS)}); see coreroll lock --help")
        return 2
    if action not in ACTIONS:
        _err(f'coreroll lock: unknown subcommand: "{action}" (one of {", ".join(ACTIONS)})')
        return 2
    extra = args.args
    if action == "help":
        return _help(extra)
    if action in ("status", "groups") and extra:
        _err(f"coreroll lock: {action} takes no arguments, got {' '.join(extra)}")
        return 2
    if action in ("lock", "unlock") and len(extra) > 1:
        _err(f"coreroll lock: {action} takes at most one machine id, got {' '.join(extra)}")
        return 2
    try:
        config, group, as_json, explicit = resolve(args)
    except ValueError as exc:
        _err(f"Error initializing etcd client: {exc}")
        return 1
    if action == "set-max":
        if len(extra) != 1:
            _err("New maximum value must be set.")
            return 1
        number = GO_INT.fullmatch(extra[0])
        if number is None:
            _err(f"Invalid maximum value: {extra[0]}")
            return 1
        # More than 19 significant digits is beyond int64 anyway: no int() of a huge string.
        sign = -1 if extra[0].startswith("-") else 1
        new_max = int(extra[0], 10) if len(number.group(1)) <= 19 else sign * (INT64_MAX + 1)
        if new_max < 0:
            _err(
                f"Invalid maximum value: {extra[0]} (must be 0 or more; 0 stops every new lock in the group)"
            )
            return 1
        if not in_int64(new_max):
            _err(
                f"Invalid maximum value: {extra[0]} (out of range: at most {INT64_MAX}, what locksmith can read)"
            )
            return 1
        extra = [str(new_max)]
    if action in ("lock", "unlock") and not extra:
        try:
            extra = [read_machine_id()]
        except LookupError as exc:
            _err(str(exc))
            return 1
    import asyncio
    import dataclasses

    from coreroll.commands.lock_ops import run_action

    # v3 through etcd's JSON gateway: importing gRPC alone would take longer than the command
    config = dataclasses.replace(config, v3_transport="gateway")
    return asyncio.run(run_action(action, extra, config, group, as_json, explicit, api_origin(args)))
