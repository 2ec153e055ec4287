"""ParseMemo: a body is remembered from its second sighting on, the memo stays bounded, and a stream
of bodies that never come back (a fleet bigger than the memo) leaves it alone."""

from __future__ import annotations

from coreroll.server.parse_memo import ParseMemo


def sighted(memo: ParseMemo[str], body: bytes) -> str | None:
    """What a server does with each body: look it up, else parse it and offer the result."""
    found = memo.get(body)
    if found is None:
        memo.offer(body, body.decode())
    return found


def test_a_body_is_remembered_from_its_second_sighting() -> None:
    memo: ParseMemo[str] = ParseMemo(size=4, max_body=100)
    assert sighted(memo, b"<a/>") is None
    assert len(memo) == 0  # once is not enough
    assert sighted(memo, b"<a/>") is None  # parsed again, now kept
    assert sighted(memo, b"<a/>") == "<a/>"
    assert len(memo) == 1


def test_bodies_that_never_come_back_never_enter_or_evict() -> None:
    memo: ParseMemo[str] = ParseMemo(size=4, max_body=100)
    for body in (b"<a/>", b"<b/>", b"<a/>", b"<b/>"):
        sighted(memo, body)
    for n in range(1000):  # a large fleet: each body once
        assert sighted(memo, b"<n%d/>" % n) is None
    assert len(memo) == 2
    assert sighted(memo, b"<a/>") == "<a/>" and sighted(memo, b"<b/>") == "<b/>"


def test_the_memo_stays_bounded_oldest_out_first() -> None:
    memo: ParseMemo[str] = ParseMemo(size=3, max_body=100)
    bodies = [b"<%d/>" % n for n in range(5)]
    for body in bodies:
        sighted(memo, body)
        sighted(memo, body)
    assert len(memo) == 3
    assert [memo.get(body) for body in bodies] == [None, None, "<2/>", "<3/>", "<4/>"]


def test_a_body_over_the_size_bound_is_never_kept() -> None:
    memo: ParseMemo[str] = ParseMemo(size=4, max_body=8)
    big = b"<x>" + b" " * 10 + b"</x>"
    for _ in range(3):
        assert sighted(memo, big) is None
    assert len(memo) == 0
