"""Running a `coreroll lock` subcommand against etcd (parsing and flags: coreroll/commands/lock.py).

`await run_action(action, extra, config, group, as_json, explicit, origin) -> exit status`:
status, lock, unlock, set-max and groups, with locksmithctl's output and error lines; each lock
change writes an audit record (`coreroll.audit`) through the same v3 connection when the store
is v3.
"""

from __future__ import annotations

import json
import unicodedata

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.errors import EtcdError, EtcdUnavailableError, V2ApiMissingError
from coreroll.locks import (
    LockApiSurvey,
    LockError,
    LockStore,
    audit_target,
    group_label,
    open_chosen_store,
    semaphore_key,
    set_max_result,
    survey_lock_apis,
)
from coreroll.locks.auto import close_stores, stores_for, v2_missing
from coreroll.locks.store import GroupState
from coreroll.textsafe import print_error as _err
from coreroll.textsafe import visible


def _unavailable(exc: EtcdUnavailableError, explicit: bool) -> str:
    if explicit:
        return f"Error initializing etcd client: {exc}"
    return (
        f"Error initializing etcd client: no etcd endpoints available, tried: {','.join(exc.endpoints)} "
        "(nothing listens there: give --endpoint URL or LOCKSMITHCTL_ENDPOINT, "
        "or try `coreroll etcd -- coreroll lock status` for an embedded etcd)"
    )


async def run_action(
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
    except Exception as exc:  # client library errors mid-call: one line, not a traceback
        if type(exc).__module__.startswith(("aetcd", "grpc", "httpx", "ssl")):
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
    await _audit(store, config, "set-max", audit_target(group), set_max_result(old, new))
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
    from coreroll.audit import append_audit  # only a change writes: status need not load it

    kv = await store.v3_kv()
    try:
        await append_audit(config, action, target, result, kv=kv)
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
