"""Semaphore keys: Go's url.QueryEscape for group names, and back."""

from __future__ import annotations

import pytest

from coreroll.locks import group_from_key, semaphore_key
from coreroll.locks.keys import query_escape

# Expected values are what Go's url.QueryEscape returns for these inputs.
GO_QUERY_ESCAPE = [
    ("lb", "lb"),
    ("a/b", "a%2Fb"),
    ("two words", "two+words"),
    ("100%", "100%25"),
    ("café", "caf%C3%A9"),
    ("日本", "%E6%97%A5%E6%9C%AC"),
    ("-_.~", "-_.~"),
    ("a+b=c&d?e#f", "a%2Bb%3Dc%26d%3Fe%23f"),
]


@pytest.mark.parametrize(("group", "escaped"), GO_QUERY_ESCAPE)
def test_query_escape_matches_go(group: str, escaped: str) -> None:
    assert query_escape(group) == escaped
    key = semaphore_key(group)
    assert key == f"coreos.com/updateengine/rebootlock/groups/{escaped}/semaphore"
    assert group_from_key(key) == group
    assert group_from_key("/" + key) == group  # v2 spelling


def test_default_group_key() -> None:
    assert semaphore_key("") == "coreos.com/updateengine/rebootlock/semaphore"
    assert group_from_key("/coreos.com/updateengine/rebootlock/semaphore") == ""


def test_non_semaphore_key_is_refused() -> None:
    with pytest.raises(ValueError, match="not a locksmith semaphore key"):
        group_from_key("coreos.com/updateengine/rebootlock/groups/x/other")
