"""Which etcd API a lock store talks to: `--etcd-api v2|v3`, or `auto`, which finds the API holding
locksmith's semaphores and picks the one to use.

- `open_lock_store(config)`: the store for `config.api` ("v3" or "v2"), connecting lazily; only the
  chosen backend's client library is imported (aetcd for v3). "auto" must go through
  `open_chosen_store`: which API to use depends on what etcd holds.

Flatcar's locksmithd keeps its semaphores in the v2 keys API only (flatcar/locksmith lock/etcd.go,
`go.etcd.io/etcd/client` KeysAPI); coreroll's own agents, and locksmith's unmerged v3 port, keep
them in v3. The two keyspaces are separate: a v2 key is invisible through v3 and the other way.

- `await survey_lock_apis(stores)`: lists `coreos.com/updateengine/rebootlock/` through the "v2"
  and "v3" `LockStore`s given and returns a `LockApiSurvey`. A v2 API that is not served
  (etcd 3.4/3.5 without `--enable-v2`, 3.6) or an API that does not answer counts as holding
  nothing; when neither answers, the v3 error is raised, as is any other v3 error (credentials,
  TLS). Any other v2 error, with v3 answering, leaves v2 out and is kept in `v2_problem`.
- `LockApiSurvey.api_for(group)`: where a command on `group` goes: the API holding that group's
  semaphore (v2 when both do: that is the one locksmithd reads); else the API holding any
  semaphore (v2 when both do); else v2 when it answers (locksmithd creates its semaphores there
  on its first start), else v3.
- `LockApiSurvey.both_note(used)`: the warning shown when both APIs hold semaphores, or None.
- `await open_chosen_store(config, group, v3_kv=None)` -> (the store to use, the survey or None):
  with an explicit `config.api` just `open_lock_store(config)`, no survey; `v3_kv` is an open v3
  connection the v3 store shares (the dashboard's actions write the audit record through it too).
- `v2_missing(exc, origin)`: the one-line error for an explicit v2 on an etcd without it, naming
  how it was asked for (`origin`: "--etcd-api v2" or "LOCKSMITHCTL_ETCD_API=v2").
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.errors import EtcdError, EtcdUnavailableError, V2ApiMissingError
from coreroll.etcd.port import EtcdKV
from coreroll.locks.keys import group_label
from coreroll.locks.store import GroupState, LockStore

LOCK_APIS = ("v2", "v3")  # "v2" first: where locksmithd keeps its semaphores wins a tie


@dataclass(frozen=True)
class LockApiSurvey:
    """What `survey_lock_apis` found: each answering API's semaphores (by group)."""

    states: Mapping[str, Mapping[str, GroupState]]  # api -> group -> state, answering APIs only
    v2_answers: bool
    v3_answers: bool
    v2_problem: str | None = None  # v2 failed otherwise than by being absent or unreachable

    @property
    def holding(self) -> tuple[str, ...]:
        """The APIs with at least one semaphore key (readable or not), v2 first."""
        return tuple(api for api in LOCK_APIS if self.states.get(api))

    @property
    def both(self) -> bool:
        return len(self.holding) == 2

    def api_for(self, group: str = "") -> str:
        with_group = [api for api in LOCK_APIS if group in self.states.get(api, {})]
        if with_group:
            return with_group[0]
        if self.holding:
            return self.holding[0]
        return "v2" if self.v2_answers else "v3"

    def both_note(self, used: str | None = None) -> str | None:
        """One line for stderr when both APIs hold semaphores (None otherwise)."""
        if not self.both:
            return None
        where = "; ".join(
            f"{api}: {', '.join(group_label(g) for g in self.states[api])}" for api in self.holding
        )
        what = f"this command uses {used}" if used else "both are shown, marked v2/v3"
        return (
            f"note: reboot-lock semaphores exist in both etcd APIs ({where}); Flatcar's locksmithd "
            f"reads only v2; {what}; choose one with --etcd-api v2 or --etcd-api v3"
        )


def open_lock_store(config: EtcdConfig, *, conflict_deadline: float = 30.0) -> LockStore:
    """The store for `config.api` ("v3" or "v2"); see the module docstring."""
    if config.api == "auto":
        raise ValueError("open_lock_store needs --etcd-api v2 or v3; resolve auto with open_chosen_store")
    # Imported here: only the chosen backend's client library (aetcd for v3) is loaded.
    if config.api == "v2":
        from coreroll.locks.v2store import V2LockStore

        return V2LockStore(config, conflict_deadline=conflict_deadline)
    from coreroll.locks.v3store import V3LockStore

    return V3LockStore(config, conflict_deadline=conflict_deadline)


def v2_missing(exc: V2ApiMissingError, origin: str = "--etcd-api v2") -> str:
    return f"{origin} cannot work here: {exc}; use --etcd-api auto (or v3)"


async def _listing(store: LockStore | Exception) -> dict[str, GroupState] | Exception:
    if isinstance(store, Exception):
        return store
    try:
        return await store.group_states()
    except Exception as exc:  # judged by survey_lock_apis, which knows what the other API said
        return exc


async def survey_lock_apis(stores: Mapping[str, LockStore | Exception]) -> LockApiSurvey:
    """List the semaphores through the "v2" and "v3" stores at once (a store that could not even be
    built is its error); see the module docstring. v3's errors win: it is the API everything else
    coreroll keeps lives on, so its message (credentials, TLS files) is the one to show."""
    v2, v3 = await asyncio.gather(_listing(stores["v2"]), _listing(stores["v3"]))
    if isinstance(v3, Exception) and not (isinstance(v3, EtcdUnavailableError) and isinstance(v2, dict)):
        raise v3
    problem = None
    if isinstance(v2, Exception) and not isinstance(v2, V2ApiMissingError | EtcdUnavailableError):
        problem = str(v2).strip().splitlines()[0] if str(v2).strip() else type(v2).__name__
        problem = f"{type(v2).__name__}: {problem}" if type(v2).__module__.startswith("httpx") else problem
    return LockApiSurvey(
        {api: states for api, states in (("v2", v2), ("v3", v3)) if isinstance(states, dict)},
        v2_answers=isinstance(v2, dict),
        v3_answers=isinstance(v3, dict),
        v2_problem=problem,
    )


def stores_for(config: EtcdConfig, v3_kv: EtcdKV | None = None) -> dict[str, LockStore | Exception]:
    """One (unconnected) store per API, for a survey; a store that cannot be built (v2 reads its
    TLS files at once) is its error. `v3_kv`: an open v3 connection for the v3 store to share."""
    stores: dict[str, LockStore | Exception] = {}
    for api in LOCK_APIS:
        try:
            if api == "v3" and v3_kv is not None:
                from coreroll.locks.v3store import V3LockStore

                stores[api] = V3LockStore(dataclasses.replace(config, api=api), kv=v3_kv)
                continue
            stores[api] = open_lock_store(dataclasses.replace(config, api=api))
        except EtcdError as exc:
            stores[api] = exc
    return stores


async def close_stores(stores: Mapping[str, LockStore | Exception], keep: str | None = None) -> None:
    for api, store in stores.items():
        if api != keep and not isinstance(store, Exception):
            await store.close()


async def open_chosen_store(
    config: EtcdConfig, group: str = "", *, v3_kv: EtcdKV | None = None
) -> tuple[LockStore, LockApiSurvey | None]:
    """The store a command on `group` uses, and the survey behind the choice (None if explicit).
    `v3_kv`: an open v3 connection the v3 store shares (and leaves open)."""
    if config.api == "v3" and v3_kv is not None:
        from coreroll.locks.v3store import V3LockStore

        return V3LockStore(config, kv=v3_kv), None
    if config.api != "auto":
        return open_lock_store(config), None
    stores = stores_for(config, v3_kv)
    chosen: str | None = None
    try:
        survey = await survey_lock_apis(stores)
        chosen = survey.api_for(group)
        store = stores[chosen]
        assert not isinstance(store, Exception)  # the survey read through it
        return store, survey
    finally:
        await close_stores(stores, keep=chosen)
