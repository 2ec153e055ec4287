"""`--etcd-api auto` (the default): `coreroll lock` finds the semaphores where Flatcar's locksmithd
keeps them (etcd's v2 keyspace), where coreroll's own agents keep them (v3), or both; and an
explicit v2 on an etcd without the v2 API is one clear line, not a traceback."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from coreroll.locks.auto import LockApiSurvey
from coreroll.locks.keys import LOCK_PREFIX, semaphore_key
from coreroll.locks.store import GroupState
from tests.locks.conftest import MID, Result
from tests.locks.rawetcd import (
    LOCKSMITHD_INITIAL,
    locksmithd_lock,
    raw_get,
    raw_keys,
    raw_put,
)

OTHER = "0123456789abcdef0123456789abcdef"


def survey(v2: list[str] | None, v3: list[str] | None) -> LockApiSurvey:
    """A survey where each API holds the groups listed (None: the API did not answer)."""
    states = {
        api: {g: GroupState(g, None, None, 1) for g in groups}
        for api, groups in (("v2", v2), ("v3", v3))
        if groups is not None
    }
    return LockApiSurvey(states, v2_answers=v2 is not None, v3_answers=v3 is not None)


@pytest.mark.parametrize(
    ("v2", "v3", "group", "api"),
    [
        (["", "lb"], [], "lb", "v2"),  # only locksmithd's semaphores: v2
        ([], ["lb"], "lb", "v3"),  # only coreroll's: v3
        ([], ["lb"], "db", "v3"),  # a new group goes where the others are
        (["lb"], ["db"], "db", "v3"),  # both hold some: the one holding this group
        (["lb"], ["lb"], "lb", "v2"),  # both hold this group: what locksmithd reads
        (["lb"], ["db"], "web", "v2"),  # both hold others: what locksmithd reads
        ([], [], "", "v2"),  # none yet, v2 served: where locksmithd will create them
        (None, [], "", "v3"),  # none yet, no v2 API (etcd 3.4+ default, 3.6)
        (["lb"], None, "lb", "v2"),  # v3 not answering
    ],
)
def test_api_for_a_group(v2: list[str] | None, v3: list[str] | None, group: str, api: str) -> None:
    assert survey(v2, v3).api_for(group) == api


def test_note_only_when_both_apis_hold_semaphores() -> None:
    assert survey(["lb"], []).both_note("v2") is None
    note = survey(["", "lb"], ["db"]).both_note("v2")
    assert note is not None
    assert "both etcd APIs (v2: (default), lb; v3: db)" in note and "this command uses v2" in note
    assert "--etcd-api v2 or --etcd-api v3" in note


@pytest.fixture
def auto_cli(clean_etcd: str, lock_cli: Callable[..., Result]) -> Callable[..., Result]:
    """`coreroll lock` with the session etcd's endpoint and no API flag (v2 is served there)."""
    return lambda *argv: lock_cli(*argv, "--endpoint", clean_etcd)


@pytest.mark.slow
def test_status_and_unlock_of_a_semaphore_locksmithd_wrote_over_v2(
    auto_cli: Callable[..., Result], clean_etcd: str
) -> None:
    written = locksmithd_lock(clean_etcd, MID)
    assert written == b'{"semaphore":0,"max":1,"holders":["69d27b356a94476da859461d3a3bc6fd"]}'
    assert auto_cli("status") == Result(0, f"Available: 0\nMax: 1\n\nMACHINE ID\n{MID}\n", "")
    assert auto_cli("lock", OTHER) == Result(1, "", "Error locking: semaphore is at 0\n")
    assert auto_cli("unlock") == Result(0, "", "")  # MID, from the machine-id file
    assert raw_get(clean_etcd, "v2", semaphore_key()) == b'{"semaphore":1,"max":1,"holders":[]}'
    assert raw_keys(clean_etcd, "v3", LOCK_PREFIX) == []  # nothing went to the v3 keyspace


@pytest.mark.slow
def test_a_group_locksmithd_uses_and_groups_lists_it(
    auto_cli: Callable[..., Result], clean_etcd: str
) -> None:
    locksmithd_lock(clean_etcd, MID, group="web servers")
    assert auto_cli("--group", "web servers", "set-max", "2") == Result(0, "Old-Max: 1\nMax: 2\n", "")
    assert raw_get(clean_etcd, "v2", semaphore_key("web servers")) == (
        b'{"semaphore":1,"max":2,"holders":["69d27b356a94476da859461d3a3bc6fd"]}'
    )
    assert auto_cli("groups") == Result(
        0, f"GROUP        AVAILABLE  MAX  HOLDERS\nweb servers  1          2    {MID}\n", ""
    )


@pytest.mark.slow
def test_with_no_semaphore_yet_a_lock_goes_where_locksmithd_will_look(
    auto_cli: Callable[..., Result], clean_etcd: str
) -> None:
    assert auto_cli("lock", OTHER) == Result(0, "", "")
    assert (
        raw_get(clean_etcd, "v2", semaphore_key())
        == b'{"semaphore":0,"max":1,"holders":["%s"]}' % OTHER.encode()
    )
    assert raw_keys(clean_etcd, "v3", LOCK_PREFIX) == []


@pytest.mark.slow
def test_coreroll_fleets_on_v3_stay_on_v3(auto_cli: Callable[..., Result], clean_etcd: str) -> None:
    raw_put(clean_etcd, "v3", semaphore_key("db"), b'{"semaphore":1,"max":1,"holders":null}')
    assert auto_cli("--group", "db", "lock", OTHER) == Result(0, "", "")
    assert auto_cli("--group", "lb", "set-max", "3") == Result(0, "Old-Max: 1\nMax: 3\n", "")
    assert raw_keys(clean_etcd, "v3", LOCK_PREFIX) == [semaphore_key("db"), semaphore_key("lb")]
    assert raw_keys(clean_etcd, "v2", LOCK_PREFIX) == []


@pytest.mark.slow
def test_both_apis_holding_semaphores_are_both_listed_and_noted(
    auto_cli: Callable[..., Result], clean_etcd: str
) -> None:
    locksmithd_lock(clean_etcd, MID)
    raw_put(clean_etcd, "v3", semaphore_key(""), LOCKSMITHD_INITIAL)
    raw_put(clean_etcd, "v3", semaphore_key("db"), LOCKSMITHD_INITIAL)
    note = (
        "note: reboot-lock semaphores exist in both etcd APIs (v2: (default); v3: (default), db); "
        "Flatcar's locksmithd reads only v2; {}; choose one with --etcd-api v2 or --etcd-api v3\n"
    )
    # the default group is on both: locksmithd's (v2) is the one that matters to its reboots
    status = auto_cli("status")
    assert status == Result(
        0, f"Available: 0\nMax: 1\n\nMACHINE ID\n{MID}\n", note.format("this command uses v2")
    )
    assert auto_cli("--group", "db", "lock", OTHER).err == note.format("this command uses v3")
    groups = auto_cli("groups")
    assert groups.out.splitlines() == [
        "GROUP      API  AVAILABLE  MAX  HOLDERS",
        f"(default)  v2   0          1    {MID}",
        "(default)  v3   1          1",
        f"db         v3   0          1    {OTHER}",
    ]
    assert groups.err == note.format("both are shown, marked v2/v3")
    assert auto_cli("--etcd-api", "v3", "status") == Result(0, "Available: 1\nMax: 1\n", "")  # no note


@pytest.mark.slow
def test_explicit_v2_on_an_etcd_without_it_names_the_flag(
    lock_cli: Callable[..., Result], clean_etcd_without_v2: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = (
        f"etcd at {clean_etcd_without_v2} does not serve the v2 keys API (HTTP 404 on /v2/keys: etcd 3.4 and 3.5 serve it "
        "only when started with --enable-v2, 3.6 removed it); use --etcd-api auto (or v3)\n"
    )
    for action in (["status"], ["lock", OTHER], ["groups"], ["set-max", "2"]):
        result = lock_cli(*action, "--endpoint", clean_etcd_without_v2, "--etcd-api", "v2")
        assert result.err.endswith(missing) and "--etcd-api v2 cannot work here" in result.err, action
        assert (result.code, result.out) == (1, ""), action
    monkeypatch.setenv("LOCKSMITHCTL_ETCD_API", "v2")
    result = lock_cli("status", "--endpoint", clean_etcd_without_v2)
    assert result == Result(
        1, "", "Error initializing etcd client: LOCKSMITHCTL_ETCD_API=v2 cannot work here: " + missing
    )


@pytest.mark.slow
def test_auto_on_an_etcd_without_v2_uses_v3(
    lock_cli: Callable[..., Result], clean_etcd_without_v2: str
) -> None:
    group = "lb"
    assert lock_cli("--group", group, "lock", OTHER, "--endpoint", clean_etcd_without_v2) == Result(0, "", "")
    assert (
        raw_get(clean_etcd_without_v2, "v3", semaphore_key(group))
        == b'{"semaphore":0,"max":1,"holders":["%s"]}' % OTHER.encode()
    )
    assert lock_cli("--group", group, "unlock", OTHER, "--endpoint", clean_etcd_without_v2) == Result(
        0, "", ""
    )
