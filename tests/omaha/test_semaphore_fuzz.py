"""Property tests for locksmith semaphore parsing: any stored value yields a Semaphore or a
SemaphoreFormatError naming the key, never another exception (etcd values are written by anyone)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coreroll.locks.semaphore import Semaphore, SemaphoreFormatError, parse_semaphore
from coreroll.wire.keys import lock_group_key
from tests.omaha.fixtures import edit_lists, mutate

KEY = lock_group_key("a%2Fb")
VALID = b'{"semaphore":0,"max":2,"holders":["69d27b356a94476da859461d3a3bc6fd","9ce7a919806c4f3785eb6d260345ac4a"]}'
FUZZ = settings(
    max_examples=150,
    deadline=timedelta(milliseconds=500),
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)


def _check(raw: bytes | str) -> Semaphore | None:
    started = time.perf_counter()
    try:
        result = parse_semaphore(raw, KEY)
    except SemaphoreFormatError as err:
        assert KEY in str(err)
        result = None
    else:
        assert isinstance(result, Semaphore)
        assert isinstance(result.semaphore, int) and isinstance(result.max, int)
        assert all(isinstance(h, str) for h in result.holders)
    assert time.perf_counter() - started < 0.25
    return result


JSON_TOKENS = [b"{", b"}", b"[", b"]", b'"', b",", b":", b"-", b"1e999", b"null", b"\xff", b"\\u00"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(raw: bytes) -> None:
    _check(raw)


@FUZZ
@given(json_values)
def test_any_json_document(value: object) -> None:
    _check(json.dumps(value).encode())


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["semaphore", "max", "holders", "Semaphore", "MAX", "Holders", "other"]),
        json_values,
        max_size=5,
    )
)
def test_objects_with_semaphore_like_fields(doc: dict[str, object]) -> None:
    _check(json.dumps(doc).encode())


@FUZZ
@given(edit_lists(len(VALID), JSON_TOKENS, chunk_size=6, max_edits=5))
def test_mutated_semaphore(ops: list[tuple[str, int, bytes]]) -> None:
    _check(mutate(VALID, ops))


holder_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@FUZZ
@given(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.lists(holder_text, max_size=5),
)
def test_written_bytes_parse_back_to_the_same_semaphore(
    available: int, maximum: int, holders: list[str]
) -> None:
    sem = Semaphore(available, maximum, holders, holders_null=not holders)
    parsed = _check(sem.to_json())
    assert parsed == sem
    assert parsed is not None and parsed.to_json() == sem.to_json()


def test_deeply_nested_json_is_a_format_error() -> None:
    _check(b"[" * 100_000)
