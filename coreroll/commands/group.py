"""`coreroll group list|set-policy|pause|resume`: server groups and their rollout policy."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from coreroll.durations import duration
from coreroll.server.api_client import ApiClient, ApiError, add_connection_flags


def on_off(text: str) -> bool:
    if text.lower() in ("on", "true", "yes", "1"):
        return True
    if text.lower() in ("off", "false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r}: expected on or off")


POLICY_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--updates-enabled", "updates_enabled", on_off, "on|off"),
    ("--max-updates-per-period", "max_updates_per_period", int, "N"),
    ("--period", "period_seconds", duration, "DURATION"),
    ("--max-concurrent", "max_concurrent", int, "N"),
    ("--update-timeout", "update_timeout_seconds", duration, "DURATION"),
    ("--safe-mode", "safe_mode", on_off, "on|off"),
    ("--office-hours", "office_hours", on_off, "on|off"),
    ("--timezone", "timezone", str, "TZ"),
]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("group", help="list server groups, change rollout policy, pause/resume")
    add_connection_flags(parser, top_level=True)
    sub = parser.add_subparsers(dest="group_command", metavar="SUBCOMMAND", required=True)
    listing = sub.add_parser("list", help="groups with their policy and rollout state")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_list)
    policy = sub.add_parser("set-policy", help="change a group's rollout policy (only the flags given)")
    policy.add_argument("group")
    for flag, dest, kind, metavar in POLICY_FLAGS:
        policy.add_argument(flag, dest=f"policy_{dest}", type=kind, metavar=metavar)
    policy.set_defaults(handler=run_set_policy)
    children = [listing, policy]
    for name, verb in (
        ("pause", "stop granting updates in"),
        ("resume", "grant updates again in (clears a halt)"),
    ):
        child = sub.add_parser(name, help=f"{verb} a group")
        child.add_argument("group")
        child.set_defaults(handler=run_pause if name == "pause" else run_resume)
        children.append(child)
    for child in children:
        add_connection_flags(child)


def _fail(exc: ApiError) -> int:
    print(f"coreroll group: {exc}", file=sys.stderr)
    return 1


def describe(group: dict[str, Any]) -> str:
    p = group["policy"]
    parts = ["enabled" if p["updates_enabled"] else "PAUSED"]
    if p["max_updates_per_period"] < 900_000:
        parts.append(f"{p['max_updates_per_period']}/{p['period_seconds']}s")
    if p["max_concurrent"] < 900_000:
        parts.append(f"max {p['max_concurrent']} at once")
    if p["safe_mode"]:
        parts.append("safe mode")
    if p["office_hours"]:
        parts.append(f"office hours {p['timezone']}")
    parts.append(f"timeout {p['update_timeout_seconds']}s")
    return ", ".join(parts)


def run_list(args: argparse.Namespace) -> int:
    try:
        with ApiClient.from_args(args) as api:
            groups = api.get("/api/v1/groups")["groups"]
    except ApiError as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps(groups, indent=2))
        return 0
    print(f"{'GROUP':<12} {'TRACK':<12} {'CHANNEL':<9} {'ROLLOUT':<8} POLICY")
    for g in groups:
        rollout = "active" if g["rollout_in_progress"] else "-"
        print(f"{g['id']:<12} {g['track']:<12} {g['channel']:<9} {rollout:<8} {describe(g)}")
        if g["halted_reason"]:
            print(f"{'':<12} halted: {g['halted_reason']}")
    return 0


def run_set_policy(args: argparse.Namespace) -> int:
    changes = {dest: getattr(args, f"policy_{dest}") for _f, dest, _k, _m in POLICY_FLAGS}
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        print("coreroll group set-policy: give at least one policy flag (see --help)", file=sys.stderr)
        return 2
    try:
        with ApiClient.from_args(args) as api:
            group = api.send("PUT", f"/api/v1/groups/{args.group}/policy", changes)
    except ApiError as exc:
        return _fail(exc)
    print(f"group {group['id']}: {describe(group)}")
    return 0


def _toggle(args: argparse.Namespace, action: str) -> int:
    try:
        with ApiClient.from_args(args) as api:
            group = api.send("POST", f"/api/v1/groups/{args.group}/{action}")
    except ApiError as exc:
        return _fail(exc)
    print(f"group {group['id']}: {describe(group)}")
    return 0


def run_pause(args: argparse.Namespace) -> int:
    return _toggle(args, "pause")


def run_resume(args: argparse.Namespace) -> int:
    return _toggle(args, "resume")
