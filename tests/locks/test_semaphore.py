"""The semaphore rules and bytes, exactly as locksmith's Go code has them."""

from __future__ import annotations

import json

import pytest

from coreroll.locks import (
    INT64_MAX,
    INT64_MIN,
    HolderExistsError,
    HolderNotFoundError,
    Semaphore,
    SemaphoreFormatError,
    SemaphoreFullError,
    SemaphoreRangeError,
    new_semaphore,
    parse_semaphore,
)
from coreroll.locks.semaphore import go_json_string
from coreroll.wire.keys import LOCK_DEFAULT_KEY

KEY = LOCK_DEFAULT_KEY


def test_fresh_semaphore_is_gos_initial_value() -> None:
    assert new_semaphore().to_json() == b'{"semaphore":1,"max":1,"holders":null}'


def test_lock_inserts_sorted_and_decrements() -> None:
    sem = Semaphore(3, 3, [])
    for holder in ("c", "a", "b"):
        sem.lock(holder)
    assert sem.holders == ["a", "b", "c"]
    assert sem.to_json() == b'{"semaphore":0,"max":3,"holders":["a","b","c"]}'


def test_full_semaphore_is_checked_before_holder_exists() -> None:
    sem = new_semaphore()
    sem.lock("69d27b356a94476da859461d3a3bc6fd")
    assert sem.to_json() == b'{"semaphore":0,"max":1,"holders":["69d27b356a94476da859461d3a3bc6fd"]}'
    with pytest.raises(SemaphoreFullError, match=r"^semaphore is at 0$"):
        sem.lock("69d27b356a94476da859461d3a3bc6fd")
    sem.set_max(2)
    with pytest.raises(HolderExistsError, match=r"^holder exists$"):
        sem.lock("69d27b356a94476da859461d3a3bc6fd")


def test_unlock_of_non_holder_changes_nothing() -> None:
    sem = Semaphore(0, 1, ["a"], holders_null=False)
    with pytest.raises(HolderNotFoundError, match=r"^holder does not exist$"):
        sem.unlock("b")
    assert sem == Semaphore(0, 1, ["a"])


def test_last_unlock_writes_empty_list_like_go() -> None:
    # Go's removeHolder leaves an empty, non-nil slice: locksmith then stores "holders":[].
    sem = new_semaphore()
    sem.lock("a")
    sem.unlock("a")
    assert sem.to_json() == b'{"semaphore":1,"max":1,"holders":[]}'


def test_set_max_below_holders_goes_negative() -> None:
    sem = Semaphore(0, 3, ["a", "b", "c"], holders_null=False)
    assert sem.set_max(1) == 3
    assert (sem.semaphore, sem.max, sem.holders) == (-2, 1, ["a", "b", "c"])
    with pytest.raises(SemaphoreFullError, match=r"^semaphore is at -2$"):
        sem.lock("d")
    sem.unlock("a")
    assert sem.semaphore == -1


@pytest.mark.parametrize(
    "raw",
    [
        b'{"semaphore":1,"max":1,"holders":null}',
        b'{"semaphore":0,"max":1,"holders":["69d27b356a94476da859461d3a3bc6fd"]}',
        b'{"semaphore":1,"max":1,"holders":[]}',
        b'{"semaphore":-2,"max":1,"holders":["a","b","c"]}',
    ],
)
def test_go_bytes_round_trip(raw: bytes) -> None:
    assert parse_semaphore(raw, KEY).to_json() == raw


def test_go_string_escaping() -> None:
    # encoding/json: HTML-safe escapes, lowercase hex, UTF-8 passed through.
    assert go_json_string('a<b>&"\\\n\x01é\u2028') == '"a\\u003cb\\u003e\\u0026\\"\\\\\\n\\u0001é\\u2028"'
    assert json.loads(go_json_string('a<b>&"\\\n\x01é\u2028')) == 'a<b>&"\\\n\x01é\u2028'


def test_parse_accepts_what_go_accepts() -> None:
    sem = parse_semaphore(b'{"Semaphore":2,"MAX":2,"extra":true}', KEY)
    assert (sem.semaphore, sem.max, sem.holders) == (2, 2, [])


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"hello", "invalid JSON"),
        (b"[1,2]", "expected a JSON object"),
        (b'{"max":1,"holders":null}', '"semaphore" missing'),
        (b'{"semaphore":"1","max":1}', '"semaphore" "1" is not an integer'),
        (b'{"semaphore":1,"max":1.5}', '"max" 1.5 is not an integer'),
        (b'{"semaphore":1,"max":1,"holders":[1]}', '"holders" must be a list'),
    ],
)
def test_parse_errors_name_the_key_and_problem(raw: bytes, problem: str) -> None:
    with pytest.raises(SemaphoreFormatError) as caught:
        parse_semaphore(raw, KEY)
    assert str(caught.value).startswith(f"{KEY}: not a locksmith semaphore: ")
    assert problem in str(caught.value)


def test_deep_nesting_and_numbers_beyond_int64_are_format_errors() -> None:
    key = LOCK_DEFAULT_KEY
    with pytest.raises(SemaphoreFormatError, match="nested too deeply"):
        parse_semaphore(b"[" * 100_000, key)
    with pytest.raises(SemaphoreFormatError, match="int64"):
        parse_semaphore(b'{"semaphore":9223372036854775808,"max":1,"holders":null}', key)


@pytest.mark.parametrize(
    ("start", "change", "name"),
    [
        (Semaphore(1, 1, []), lambda s: s.set_max(INT64_MAX + 1), "max"),
        (Semaphore(1, 1, []), lambda s: s.set_max(INT64_MIN - 1), "max"),
        # more free slots than max (another writer's doing): raising max pushes semaphore past int64
        (Semaphore(2, 1, []), lambda s: s.set_max(INT64_MAX), "semaphore"),
        (Semaphore(INT64_MIN, 1, ["a"]), lambda s: s.set_max(0), "semaphore"),
        (Semaphore(INT64_MAX, INT64_MAX, ["a"]), lambda s: s.unlock("a"), "semaphore"),
    ],
)
def test_changes_leaving_int64_are_refused_and_change_nothing(start: Semaphore, change, name: str) -> None:
    sem = start.copy()
    with pytest.raises(SemaphoreRangeError, match=rf"^{name} would be -?\d+, outside the int64 range"):
        change(sem)
    assert sem == start and sem.to_json() == start.to_json()


def test_int64_edges_are_allowed() -> None:
    sem = Semaphore(1, 1, [])
    assert sem.set_max(INT64_MAX) == 1
    assert (sem.semaphore, sem.max) == (INT64_MAX, INT64_MAX)
    assert parse_semaphore(sem.to_json(), KEY) == sem
