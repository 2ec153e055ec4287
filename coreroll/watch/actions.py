"""The operator's interventions, the only place the dashboard writes anything.

    actions = Actions(etcd_config, server_url, token, read_only=False)
    result = await actions.check(["9ce7..."])          # ActionResult(ok, message)

- `check(ids)`: queue `{action: "check", args: {}, by, at}` at `coreroll/v1/commands/<id>/<sortable-id>`
  for each node (the agent runs it and deletes the key).
- `set_channel(ids, channel)`: refused, before anything is written, unless `channel` is a
  channel name (`coreroll.wire.channel`) and the server lists it (`GET /api/v1/channels`); then
  queues `{action: "set-channel", args: {channel}}`.
- `unlock(group, holder, api=None)`: removes `holder` from the reboot-lock semaphore (CAS, via
  coreroll.locks). A holder that released meanwhile gives `ok=False` and a clear message, not an
  exception.
- `set_max(group, n, api=None)`: the semaphore's max (available moves by the difference, as
  locksmith does).
  `api` is the etcd API the semaphore lives on ("v2"/"v3": the lock panel knows it); None uses the
  configured `--etcd-api` (auto: where that group's semaphore is, `coreroll.locks.auto`). An
  airlock (FleetLock) semaphore is refused: coreroll never writes airlock's keys.
- `pause_group(group)` / `resume_group(group)`: the server's admin API with the bearer token.

Every attempted change writes an audit record (`coreroll.audit.append_audit`: action, target,
result) and returns `ActionResult(ok, message)` with a message fit for a notification. Failures
(etcd or server unreachable, token refused) are results, not exceptions. `read_only=True` makes every
method raise `ReadOnlyError` before anything is read or written: the UI hides the keys, and this is
the guarantee behind that. No Textual here.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence

import httpx

from coreroll.audit import append_audit, current_user, new_sortable_id
from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.port import EtcdKV, open_kv
from coreroll.locks import (
    HolderNotFoundError,
    LockError,
    LockStore,
    audit_target,
    group_label,
    open_chosen_store,
    open_lock_store,
    set_max_result,
)
from coreroll.watch.outcome import ActionResult, ReadOnlyError
from coreroll.wire.channel import channel_problem
from coreroll.wire.keys import command_key
from coreroll.wire.records import CommandRecord


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _nodes_target(ids: Sequence[str]) -> str:
    return f"node {ids[0]}" if len(ids) == 1 else f"{len(ids)} nodes: {', '.join(ids)}"


class Actions:
    """See the module docstring. `by` defaults to `user@host`."""

    def __init__(
        self,
        etcd_config: EtcdConfig | None,
        server_url: str | None,
        token: str | None,
        read_only: bool = False,
        *,
        by: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.etcd_config = etcd_config
        self.server_url = server_url.rstrip("/") if server_url else None
        self.token = token
        self.read_only = read_only
        self.by = by or current_user()
        self.timeout = timeout

    def _guard(self, action: str) -> None:
        if self.read_only:
            raise ReadOnlyError(action)

    async def _audit(self, action: str, target: str, result: str, kv: EtcdKV | None) -> str | None:
        """Write the audit record (through the action's v3 connection `kv` when it has one);
        returns a problem to append to the message, or None."""
        if self.etcd_config is None:
            return "no etcd configured, audit record not written"
        try:
            await append_audit(self.etcd_config, action, target, result, by=self.by, kv=kv)
        except Exception as exc:
            return f"audit record not written: {_short(exc)}"
        return None

    async def _finish(
        self, action: str, target: str, ok: bool, message: str, result: str, kv: EtcdKV | None = None
    ) -> ActionResult:
        problem = await self._audit(action, target, result, kv)
        return ActionResult(ok, f"{message} ({problem})" if problem else message)

    async def _with_v3(self, step: Callable[[EtcdKV | None], Awaitable[ActionResult]]) -> ActionResult:
        """Run `step` with the action's one v3 connection (commands, v3 locks and the audit record
        share it), closed afterwards; None when etcd cannot be reached now (the part that needs
        it then reports why)."""
        assert self.etcd_config is not None
        try:
            v3: EtcdKV | None = await open_kv(self.etcd_config, "v3")
        except Exception:
            v3 = None
        try:
            return await step(v3)
        finally:
            if v3 is not None:
                await v3.close()

    # --- node commands -------------------------------------------------------------------------

    async def _queue(
        self, action: str, ids: Sequence[str], args: dict[str, object], kv: EtcdKV | None
    ) -> list[str]:
        """Write one command per node through `kv`; returns the keys written."""
        assert self.etcd_config is not None
        if kv is None:  # not reachable a moment ago: one more try, for the error it gives
            await (await open_kv(self.etcd_config, "v3")).close()
            raise ConnectionError("etcd did not answer")
        value = CommandRecord(action, args, self.by).encode()
        keys = [command_key(mid, new_sortable_id()) for mid in ids]
        # many marked nodes: keep a few dozen writes in flight rather than one at a time
        for start in range(0, len(keys), 64):
            await asyncio.gather(*(kv.put(k, value) for k in keys[start : start + 64]))
        return keys

    async def _queue_and_audit(self, action: str, ids: list[str], args: dict[str, object], target: str,
                               failed: str, done: str) -> ActionResult:  # fmt: skip
        async def step(kv: EtcdKV | None) -> ActionResult:
            try:
                await self._queue(action, ids, args, kv)
            except Exception as exc:
                return await self._finish(
                    action, target, False, f"{failed}: {_short(exc)}", f"failed: {_short(exc)}", kv
                )
            return await self._finish(action, target, True, done, "ok", kv)

        return await self._with_v3(step)

    async def check(self, ids: Sequence[str]) -> ActionResult:
        self._guard("check")
        ids = list(dict.fromkeys(ids))
        if not ids:
            return ActionResult(False, "no node selected")
        if self.etcd_config is None:
            return ActionResult(False, "cannot queue a check: no etcd configured")
        what = f"{len(ids)} nodes" if len(ids) > 1 else ids[0]
        return await self._queue_and_audit(
            "check", ids, {}, _nodes_target(ids), "check not queued", f"update check queued for {what}"
        )

    async def server_channels(self) -> list[str]:
        """Channel names the server knows (raises httpx errors when it cannot tell)."""
        if self.server_url is None:
            raise RuntimeError("no update server configured")
        async with httpx.AsyncClient(base_url=self.server_url, timeout=self.timeout) as http:
            reply = await http.get("/api/v1/channels")
            reply.raise_for_status()
            data = reply.json()
        items = data.get("channels", []) if isinstance(data, dict) else data
        return [str(c["name"]) for c in items if isinstance(c, dict) and c.get("name")]

    async def set_channel(self, ids: Sequence[str], channel: str) -> ActionResult:
        self._guard("set-channel")
        ids = list(dict.fromkeys(ids))
        if not ids:
            return ActionResult(False, "no node selected")
        # refuse before anything is written (no command, no audit record); the name is checked
        # first: a server may list a channel no node should be sent (control characters, `$(...)`)
        problem = channel_problem(channel)
        if problem is not None:
            return ActionResult(False, f"channel not switched: {problem}")
        try:
            known = await self.server_channels()
        except Exception as exc:
            return ActionResult(
                False, f"channel not switched: cannot ask the server which channels exist ({_short(exc)})"
            )
        if channel not in known:
            return ActionResult(
                False,
                f"channel not switched: the server does not know channel {channel!r} (known: {', '.join(known) or 'none'})",
            )
        if self.etcd_config is None:
            return ActionResult(False, "channel not switched: no etcd configured")
        what = f"{len(ids)} nodes" if len(ids) > 1 else ids[0]
        return await self._queue_and_audit(
            "set-channel",
            ids,
            {"channel": channel},
            f"{_nodes_target(ids)} -> channel {channel}",
            "channel not switched",
            f"{what}: switch to channel {channel} queued",
        )

    # --- reboot locks --------------------------------------------------------------------------

    async def _lock_store(self, group: str, api: str | None, v3: EtcdKV | None) -> LockStore:
        """The store of `group`'s semaphore on `api` (None: as configured; auto resolves); a v3
        store shares the action's v3 connection `v3` when there is one."""
        assert self.etcd_config is not None
        config = dataclasses.replace(self.etcd_config, api=api) if api in ("v2", "v3") else self.etcd_config
        if config.api == "v2":
            return open_lock_store(config)
        store, _ = await open_chosen_store(config, group, v3_kv=v3)
        return store

    async def unlock(self, group: str, holder: str, api: str | None = None) -> ActionResult:
        self._guard("unlock")
        if api == "airlock":
            return ActionResult(
                False, f"cannot unlock {holder}: coreroll never writes airlock's (FleetLock) keys"
            )
        if self.etcd_config is None:
            return ActionResult(False, "cannot unlock: no etcd configured")
        return await self._with_v3(lambda v3: self._unlock(group, holder, api, v3))

    async def _unlock(self, group: str, holder: str, api: str | None, v3: EtcdKV | None) -> ActionResult:
        target = audit_target(group, holder)
        name = group_label(group)
        try:
            async with await self._lock_store(group, api, v3) as store:
                await store.unlock(group, holder)
        except HolderNotFoundError:
            message = f"{holder} no longer holds lock group {name} (released meanwhile); nothing changed"
            return await self._finish("unlock", target, False, message, "not held: nothing changed", v3)
        except LockError as exc:
            return await self._finish(
                "unlock", target, False, f"unlock refused: {exc}", f"refused: {exc}", v3
            )
        except Exception as exc:
            return await self._finish(
                "unlock", target, False, f"unlock failed: {_short(exc)}", f"failed: {_short(exc)}", v3
            )
        return await self._finish("unlock", target, True, f"unlocked {holder} in lock group {name}", "ok", v3)

    async def set_max(self, group: str, new_max: int, api: str | None = None) -> ActionResult:
        self._guard("set-max")
        if api == "airlock":
            return ActionResult(False, "cannot set max: coreroll never writes airlock's (FleetLock) keys")
        if self.etcd_config is None:
            return ActionResult(False, "cannot set max: no etcd configured")
        if new_max < 0:
            return ActionResult(False, f"max must be 0 or more, not {new_max}")
        return await self._with_v3(lambda v3: self._set_max(group, new_max, api, v3))

    async def _set_max(self, group: str, new_max: int, api: str | None, v3: EtcdKV | None) -> ActionResult:
        target = audit_target(group)
        name = group_label(group)
        try:
            async with await self._lock_store(group, api, v3) as store:
                old, new = await store.set_max(group, new_max)
        except LockError as exc:
            return await self._finish(
                "set-max", target, False, f"max not changed: {exc}", f"refused: {exc}", v3
            )
        except Exception as exc:
            return await self._finish(
                "set-max", target, False, f"max not changed: {_short(exc)}", f"failed: {_short(exc)}", v3
            )
        return await self._finish(
            "set-max", target, True, f"lock group {name}: max {old} -> {new}", set_max_result(old, new), v3
        )

    # --- server groups -------------------------------------------------------------------------

    async def pause_group(self, group: str) -> ActionResult:
        self._guard("pause")
        return await self._group_call(group, "pause")

    async def resume_group(self, group: str) -> ActionResult:
        self._guard("resume")
        return await self._group_call(group, "resume")

    async def _group_call(self, group: str, verb: str) -> ActionResult:
        target = f"group {group}"
        if self.server_url is None:
            return ActionResult(False, f"cannot {verb} {target}: no update server configured")
        if not self.token:
            return ActionResult(
                False, f"cannot {verb} {target}: no admin token (pass --token or set COREROLL_TOKEN)"
            )
        try:
            async with httpx.AsyncClient(base_url=self.server_url, timeout=self.timeout) as http:
                reply = await http.post(
                    f"/api/v1/groups/{group}/{verb}", headers={"Authorization": f"Bearer {self.token}"}
                )
        except httpx.HTTPError as exc:
            return await self._finish(
                verb,
                target,
                False,
                f"{verb} failed: server unreachable ({_short(exc)})",
                "failed: server unreachable",
            )
        if reply.status_code == 200:
            done = "paused" if verb == "pause" else "resumed"
            return await self._finish(verb, target, True, f"{target} {done}", "ok")
        try:
            reason = str(reply.json().get("error") or reply.text)
        except ValueError:
            reason = reply.text.strip()[:200]
        if reply.status_code == 401:
            reason = "the server refused the admin token"
        elif reply.status_code == 404:
            reason = f"the server has no group {group!r}"
        message = f"{verb} of {target} refused: {reason}"
        return await self._finish(verb, target, False, message, f"refused: HTTP {reply.status_code}")
