"""Saved filters (filters.toml): kept under a name, edited a line at a time, never written over
when the file cannot be read; a bad entry is reported with its line and the rest still load."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from coreroll.watch.query import QueryError
from tui.saved_filters import HEADER, FilterStore, SavedFilter
from tui.user_config import ConfigError


def test_saving_creates_the_file_and_loading_lists_it(own_config_folder: Path) -> None:
    store = FilterStore()
    assert store.path == own_config_folder / "filters.toml"
    assert store.load().filters == []
    store.save("beta errors", "channel:beta status:error")
    store.save("stuck", "lock:stale")
    assert (
        store.path.read_text()
        == HEADER + '"beta errors" = "channel:beta status:error"\n"stuck" = "lock:stale"\n'
    )
    loaded = store.load()
    assert loaded.filters == [
        SavedFilter("beta errors", "channel:beta status:error", 2),
        SavedFilter("stuck", "lock:stale", 3),
    ]
    assert loaded.problems == []


def test_replacing_and_forgetting_touch_only_that_line(tmp_path: Path) -> None:
    path = tmp_path / "filters.toml"
    path.write_text('# mine, keep me\nold   =   "status:error"   # a note\n\n"beta" = "channel:beta"\n')
    store = FilterStore(path)
    store.save("old", "status:error online:no")
    assert (
        path.read_text() == '# mine, keep me\n"old" = "status:error online:no"\n\n"beta" = "channel:beta"\n'
    )
    store.forget("beta")
    assert path.read_text() == '# mine, keep me\n"old" = "status:error online:no"\n\n'
    store.forget("not there")
    assert [f.name for f in store.load().filters] == ["old"]


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ('say "hi"', "text"),
        ("back\\slash", "a\\b"),
        ("tab\there", "x"),
        ("bell\x07", "x"),
        ("ünïcode 🚀", "node-1"),
    ],
)
def test_any_name_and_filter_come_back_as_saved(tmp_path: Path, name: str, query: str) -> None:
    store = FilterStore(tmp_path / "filters.toml")
    store.save(name, query)
    store.save("other", "channel:beta")
    assert [(f.name, f.query) for f in store.load().filters] == [(name, query), ("other", "channel:beta")]


def test_a_file_that_is_not_toml_names_its_line_and_is_never_written_over(tmp_path: Path) -> None:
    path = tmp_path / "filters.toml"
    original = b'"ok" = "channel:beta"\nbroken = channel:alpha\n'
    path.write_bytes(original)
    store = FilterStore(path)
    with pytest.raises(ConfigError, match=rf"^{path} line 2: not TOML: Invalid value \(column 10\)$"):
        store.load()
    with pytest.raises(ConfigError, match="line 2"):
        store.save("new", "status:error")
    with pytest.raises(ConfigError, match="line 2"):
        store.forget("ok")
    assert path.read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == ["filters.toml"]  # no temporary file left behind


def test_a_bad_entry_is_reported_with_its_line_and_the_rest_load(tmp_path: Path) -> None:
    path = tmp_path / "filters.toml"
    path.write_text('good = "channel:beta"\nnumber = 3\nbad = "colour:red"\n[group]\nx = "y"\n')
    loaded = FilterStore(path).load()
    assert loaded.filters == [SavedFilter("good", "channel:beta", 1)]
    assert loaded.problems == [
        f'{path} line 2: \'number\' is not a filter: write "name" = "filter"',
        f"{path} line 3: 'bad': unknown filter field 'colour' in 'colour:red' (known: channel, group, host, id,"
        " lock, online, server, state, status, unreadable, usr, version)",
        f'{path} line 4: \'group\' is not a filter: write "name" = "filter"',
    ]


def test_an_edit_that_would_change_more_than_its_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "filters.toml"
    original = '"a" = "channel:beta"\n[later]\nx = "y"\n'  # appending would land inside [later]
    path.write_text(original)
    with pytest.raises(ConfigError, match="cannot change 'b' without disturbing the rest; edit it by hand"):
        FilterStore(path).save("b", "status:error")
    assert path.read_text() == original


def test_only_a_valid_filter_with_a_name_is_saved(tmp_path: Path) -> None:
    store = FilterStore(tmp_path / "filters.toml")
    with pytest.raises(QueryError, match="unknown filter field 'colour'"):
        store.save("x", "colour:red")
    with pytest.raises(ConfigError, match="needs a name"):
        store.save("  ", "channel:beta")
    assert not store.path.exists()
