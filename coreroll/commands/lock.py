"""`coreroll lock`: locksmithctl's reboot-lock commands, with the same output and exit codes.

    coreroll lock [flags] status | lock [id] | unlock [id] | set-max N | groups

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
import asyncio
import json
import os
import re
import sys
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from coreroll.audit import append_audit
from coreroll.etcd.config import DEFAULT_ENDPOINTS, EtcdConfig, split_endpoints
from coreroll.etcd.errors import EtcdError, EtcdUnavailableError, V2ApiMissingError
from coreroll.locks import (
    INT64_MAX,
    LockApiSurvey,
    LockError,
    LockStore,
    audit_target,
    group_label,
    in_int64,
    open_chosen_store,
    semaphore_key,
    survey_lock_apis,
)
from coreroll.locks.auto import close_stores, stores_for, v2_missing
from coreroll.locks.store import GroupState
from coreroll.textsafe import visible

ACTIONS = ("status", "lock", "unlock", "set-max", "groups")
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
    parser.add_argument("action", nargs="?", metavar="SUBCOMMAND", help=" | ".join(ACTIONS))
    parser.add_argument("args", nargs="*", metavar="ARG", help="machine id (lock, unlock) or N (set-max)")
    parser.set_defaults(handler=run)


def _err(text: str) -> None:
    print(visible(text), file=sys.stderr, flush=True)


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


def run(args: argparse.Namespace) -> int:
    action = args.action
    if action is None:
        _err(f"coreroll lock: missing subcommand (one of {', '.join(ACTIONS)}); see coreroll lock --help")
        return 2
    if action not in ACTIONS:
        _err(f'coreroll lock: unknown subcommand: "{action}" (one of {", ".join(ACTIONS)})')
        return 2
    extra = args.args
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
    return asyncio.run(_run(action, extra, config, group, as_json, explicit, api_origin(args)))


def _unavailable(exc: EtcdUnavailableError, explicit: bool) -> str:
    if explicit:
        return f"Error initializing etcd client: {exc}"
    return (
        f"Error initializing etcd client: no etcd endpoints available, tried: {','.join(exc.endpoints)} "
        "(nothing listens there: give --endpoint URL or LOCKSMITHCTL_ENDPOINT, "
        "or try `coreroll etcd -- coreroll lock status` for an embedded etcd)"
    )


async def _run(
    action: str, extra: list[str], config: EtcdConfig, group: str, as_json: bool, explicit: bool, origin: str
) -> int:
    store: LockStore | None = None
    try:
        if action == "groups":
            return await _groups(config, as_json)
        store, survey = await open_chosen_store(config, group)
        if survey is not None:
            _survey_notes(survey, _api_of(store))
        return await _dispatch(store, action, extra, config, group, as_json)
    except EtcdUnavailableError as exc:
        _err(_unavailable(exc, explicit))
        return 1
    except V2ApiMissingError as exc:
        _err(f"Error initializing etcd client: {v2_missing(exc, origin)}")
        return 1
    except (LockError, EtcdError) as exc:
        _err(f"{ERROR_PREFIX[action]} {exc}")
        return 1
    except Exception as exc:  # aetcd/gRPC errors mid-call: one line, not a traceback
        if type(exc).__module__.startswith(("aetcd", "grpc", "httpx")):
            _err(f"{ERROR_PREFIX[action]} {type(exc).__name__}: {exc}")
            return 1
        raise
    finally:
        if store is not None:
            await store.close()


def _survey_notes(survey: LockApiSurvey, used: str | None = None) -> None:
    """What --etcd-api auto found that the user should know: both APIs hold semaphores, or v2
    could not be read (so locksmithd's semaphores, if any, were not looked at)."""
    if survey.v2_problem:
        _err(f"note: etcd's v2 API could not be read ({survey.v2_problem}); only v3 was looked at")
    note = survey.both_note(used)
    if note:
        _err(note)


def _api_of(store: LockStore) -> str:
    return store.config.api


ERROR_PREFIX = {
    "status": "Error reading semaphore:",
    "lock": "Error locking:",
    "unlock": "Error unlocking:",
    "set-max": "Error setting value:",
    "groups": "Error listing groups:",
}


async def _dispatch(
    store: LockStore, action: str, extra: list[str], config: EtcdConfig, group: str, as_json: bool
) -> int:
    """status, lock, unlock or set-max on `store` (errors are reported by `_run`)."""
    api = _api_of(store)
    if action == "status":
        return await _status(store, group, as_json)
    if action in ("lock", "unlock"):
        holder = extra[0]
        if action == "lock":
            revision = await store.lock(group, holder)
        else:
            revision = await store.unlock(group, holder)
        await _audit(store, config, action, audit_target(group, holder), "ok")
        if as_json:
            _print_json(
                {"group": group, "holder": holder, "action": action, "api": api, "revision": revision}
            )
        return 0
    old, new = await store.set_max(group, int(extra[0]))
    await _audit(store, config, "set-max", audit_target(group), f"Old-Max {old} -> Max {new}")
    if as_json:
        _print_json({"group": group, "old_max": old, "max": new, "api": api})
    else:
        print(f"Old-Max: {old}\nMax: {new}", flush=True)
    if new == 0:
        _err(
            f"note: max is 0: no machine in group {group_label(group)} can take the reboot lock until set-max raises it"
        )
    return 0


async def _audit(store: LockStore, config: EtcdConfig, action: str, target: str, result: str) -> None:
    client = await store.v3_client()
    try:
        await append_audit(config, action, target, result, client=client)
    except Exception as exc:  # the lock change is done; a missing audit record must not hide that
        _err(f"warning: audit record not written: {exc}")


def _width(text: str) -> int:
    """Terminal columns: wide East Asian characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _print_json(doc: object) -> None:
    print(json.dumps(doc, ensure_ascii=False), flush=True)


async def _status(store: LockStore, group: str, as_json: bool) -> int:
    sem, revision = await store.get(group)
    if as_json:
        _print_json(
            {
                "group": group,
                "key": semaphore_key(group),
                "api": _api_of(store),
                "semaphore": sem.semaphore,
                "max": sem.max,
                "holders": sem.holders,
                "revision": revision,
            }
        )
        return 0
    lines = [f"Available: {sem.semaphore}", f"Max: {sem.max}"]
    if sem.holders:
        lines += ["", "MACHINE ID", *map(visible, sem.holders)]
    print("\n".join(lines), flush=True)
    return 0


async def _group_listing(config: EtcdConfig) -> tuple[list[tuple[str, GroupState]], LockApiSurvey | None]:
    """(api, state) of every semaphore, and the survey when the API was auto."""
    if config.api != "auto":
        store, _ = await open_chosen_store(config)
        try:
            return [(config.api, s) for s in (await store.group_states()).values()], None
        finally:
            await store.close()
    stores = stores_for(config)
    try:
        survey = await survey_lock_apis(stores)
    finally:
        await close_stores(stores)
    listing = [(api, s) for api in survey.holding for s in survey.states[api].values()]
    return sorted(listing, key=lambda item: (item[1].group, item[0])), survey


async def _groups(config: EtcdConfig, as_json: bool) -> int:
    listing, survey = await _group_listing(config)
    bad = [s for _, s in listing if s.error]
    both = survey is not None and survey.both
    if survey is not None:
        _survey_notes(survey)
    if as_json:
        _print_json(
            [
                {
                    "group": s.group,
                    "key": s.key,
                    "api": api,
                    "semaphore": s.semaphore.semaphore if s.semaphore else None,
                    "max": s.semaphore.max if s.semaphore else None,
                    "holders": s.semaphore.holders if s.semaphore else None,
                    "revision": s.revision,
                    "error": s.error,
                }
                for api, s in listing
            ]
        )
    else:
        rows = [("GROUP", "AVAILABLE", "MAX", "HOLDERS")]
        for _, s in listing:
            if s.semaphore is not None:
                sem = s.semaphore
                holders = visible(",".join(sem.holders))
                rows.append((visible(group_label(s.group)), str(sem.semaphore), str(sem.max), holders))
            else:
                rows.append((visible(group_label(s.group)), "?", "?", "(unreadable)"))
        if both:  # the same group name may be in both keyspaces: say which each row is
            rows = [(row[0], "API" if i == 0 else listing[i - 1][0], *row[1:]) for i, row in enumerate(rows)]
        widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            cells = [row[i] + " " * (widths[i] - _width(row[i])) for i in range(len(widths))] + [row[-1]]
            print("  ".join(cells).rstrip(), flush=True)
    for s in bad:
        _err(f"{ERROR_PREFIX['groups']} {s.error}")
    return 1 if bad else 0
