"""Go to node: fuzzy over hostnames and machine ids, best first, any node of a big fleet found by
its name, and hostile names matched as they are shown (tui.node_search, plain Python)."""

from __future__ import annotations

import random

import pytest

from tui.node_search import HOSTNAME, MACHINE_ID, NodeIndex, match_one
from tui.sample import machine_id


def fleet(n: int) -> list[tuple[str, str | None]]:
    return [(machine_id(i), f"web-{i:05d}.dc{i % 3}.example.com") for i in range(n)]


def names(index: NodeIndex, query: str, limit: int = 10) -> list[str]:
    return [match.name for match in index.search(query, limit)]


def test_any_node_of_a_10000_node_fleet_is_found_first_by_its_hostname_or_machine_id() -> None:
    nodes = fleet(10_000)
    index = NodeIndex(nodes)
    for mid, host in nodes:
        assert host is not None
        [by_host] = index.search(host, 1)
        [by_id] = index.search(mid, 1)
        assert (by_host.machine_id, by_host.by, by_host.score) == (mid, HOSTNAME, 1.0)
        assert (by_id.machine_id, by_id.by, by_id.score) == (mid, MACHINE_ID, 1.0)
    for mid, host in random.Random(17).sample(nodes, 200):  # with the palette's own limit
        assert host is not None
        assert index.search(host.upper(), 40)[0].machine_id == mid


def test_tiers_whole_name_then_prefix_then_word_then_substring_then_letters_in_order() -> None:
    index = NodeIndex(
        [
            ("0" * 32, "db-1"),
            ("1" * 32, "db-10"),
            ("2" * 32, "old-db-1"),
            ("3" * 32, "mydb-1x"),
            ("4" * 32, "d-zz-b-1"),
            ("5" * 32, "web-1"),
        ]
    )
    found = index.search("db-1", 10)
    assert [(m.name, m.score) for m in found[:4]] == [
        ("db-1", 1.0),
        ("db-10", 0.9),
        ("old-db-1", 0.8),
        ("mydb-1x", 0.7),
    ]
    assert found[4].name == "d-zz-b-1" and 0.3 < found[4].score < 0.6
    assert found[4].offsets == (0, 5, 6, 7)  # d, b, -, 1: what the palette highlights
    assert len(found) == 5


def test_a_node_is_listed_once_by_its_best_name() -> None:
    index = NodeIndex([("ab12" + "0" * 28, "ab12-host"), ("ff" * 16, None), ("0ab12" + "0" * 27, "zz-ab12")])
    found = index.search("ab12", 10)
    # a tie goes to the hostname, the name the table shows
    assert [(m.name, m.by) for m in found] == [("ab12-host", HOSTNAME), ("zz-ab12", HOSTNAME)]
    assert [m.name for m in index.search("ab120", 10)] == ["ab12" + "0" * 28, "0ab12" + "0" * 27]
    assert [m.name for m in index.search("ffff", 10)] == ["ff" * 16]  # no hostname: by machine id


def test_machine_ids_are_not_matched_with_gaps_hostnames_are() -> None:
    index = NodeIndex([("a1b2c3" + "0" * 26, "worker-7")])
    assert names(index, "abc") == []  # letters of a hex id with gaps: noise, not what anyone types
    assert names(index, "wkr7") == ["worker-7"]


def test_before_typing_hostnames_come_in_name_order() -> None:
    index = NodeIndex([("b" * 32, "zeta"), ("a" * 32, "alpha"), ("c" * 32, None)])
    assert [m.name for m in index.first(10)] == ["alpha", "zeta", "c" * 32]
    assert [m.name for m in index.search("  ", 2)] == ["alpha", "zeta"]


def test_the_limit_is_kept_and_nothing_found_is_an_empty_list() -> None:
    index = NodeIndex(fleet(1000))
    assert len(index.search("web", 8)) == 8
    assert names(index, "no-such-thing") == []


@pytest.mark.parametrize(
    ("hostname", "typed", "shown"),
    [
        ("\x1b]0;pwned\x07", "\\x1b]0;pw", "\\x1b]0;pwned\\x07"),
        ("[bold red]x[/]", "[bold", "[bold red]x[/]"),
        ("evil\nname", "evil\\nn", "evil\\nname"),
    ],
)
def test_hostile_names_are_matched_and_shown_as_the_screen_shows_them(
    hostname: str, typed: str, shown: str
) -> None:
    index = NodeIndex([("e" * 32, hostname), ("f" * 32, "plain")])
    [found] = index.search(typed, 10)
    assert (found.name, found.machine_id) == (shown, "e" * 32)


def test_a_name_that_changes_length_when_lowercased_is_found_without_highlight() -> None:
    index = NodeIndex([("a" * 32, "İstanbul-1")])  # "İ".lower() is two characters
    [found] = index.search("stanbul", 10)
    assert found.name == "İstanbul-1" and found.offsets == ()


@pytest.mark.timeout(20)
def test_a_long_hostile_name_costs_linear_time() -> None:
    """Textual's fuzzy matcher (textual.fuzzy, get_offsets) enumerates every way the letters
    fit: on this 253-character name "aaab" takes 9 s there, "aaaab" minutes. Here: one pass."""
    hostile = ("a" * 20 + "-") * 12 + "b"
    index = NodeIndex([(f"{i:032x}", hostile) for i in range(2000)])
    assert len(index.search("a" * 12 + "b", 5)) == 5
    assert names(index, "a" * 12 + "c") == []
    assert match_one("a" * 12 + "b", hostile) is not None


def test_one_name_is_matched_as_the_index_matches() -> None:
    assert match_one("sort", "sort by the next column") == (0.9, (0, 1, 2, 3))
    assert match_one("next", "sort by the next column") == (0.8, (12, 13, 14, 15))
    assert match_one("ort", "sort by the next column") == (0.7, (1, 2, 3))
    score_offsets = match_one("sbnc", "sort by the next column")
    assert score_offsets is not None and score_offsets[1] == (0, 5, 12, 17)
    assert match_one("zz", "sort by the next column") is None
    assert match_one("", "anything") is None
