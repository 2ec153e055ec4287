"""The key map (keys.toml, --keymap FILE, COREROLL_KEYMAP) is checked before the dashboard starts:
every problem is refused, named with where it was written; conflicts name both bindings."""

from __future__ import annotations

import io
from contextlib import redirect_stderr
from pathlib import Path

import pytest

from coreroll.cli import main as cli_main
from tui.app import DashApp
from tui.keymap import DashAction
from tui.keymap_config import KeymapError, check_choices, key_scopes, keymap_file, load_keymap, normalize_key

ETCD = ["--etcd", "http://127.0.0.1:9"]  # never contacted: each run ends at the configuration check


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def refused(**kwargs: object) -> str:
    with pytest.raises(KeymapError) as caught:
        load_keymap(DashApp, **kwargs)  # type: ignore[arg-type]
    return str(caught.value)


def test_the_default_keys_do_not_conflict() -> None:
    assert check_choices({}, key_scopes(DashApp)) == []
    assert load_keymap(DashApp, env="").keys == {}


def test_a_key_taken_by_another_binding_is_refused_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 17: `quit=q,check=q` made q queue a check instead of quitting."""
    monkeypatch.setenv("COREROLL_KEYMAP", "quit=q,check=q")
    with pytest.raises(
        ValueError,
        match=r"key 'q' is bound twice on the main screen: check \(COREROLL_KEYMAP\) and quit \(COREROLL_KEYMAP\)",
    ):
        DashApp(watch_tty=False)
    monkeypatch.setenv("COREROLL_KEYMAP", "check=q")  # quit keeps its default q
    with pytest.raises(ValueError, match=r"check \(COREROLL_KEYMAP\) and quit \(default\)"):
        DashApp(watch_tty=False)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("check=", "COREROLL_KEYMAP: check: no key given"),
        ("chek=C", "COREROLL_KEYMAP: no binding has the id 'chek' (did you mean 'check'?)"),
        ("check=Escape", "COREROLL_KEYMAP: check: no key is called 'Escape' (did you mean 'escape'?)"),
        ("check=ctrl+", "COREROLL_KEYMAP: check: no key after the modifier in 'ctrl+'"),
        ("check=cmd+c", "COREROLL_KEYMAP: check: unknown modifier 'cmd'"),
        ("C", "COREROLL_KEYMAP: 'C' is not id=key"),
        ("check=C;check=D", "COREROLL_KEYMAP: check is given twice"),
    ],
)
def test_an_unusable_environment_value_is_refused_not_dropped(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    """Issue 17: unusable values were dropped silently (check= left check on c, chek=C did nothing)."""
    monkeypatch.setenv("COREROLL_KEYMAP", value)
    with pytest.raises(ValueError) as caught:
        DashApp(watch_tty=False)
    assert message in str(caught.value)


def test_every_problem_is_listed_at_once() -> None:
    message = refused(env="check=,chek=C,freeze=j")
    assert message.splitlines() == [
        "COREROLL_KEYMAP: check: no key given",
        "COREROLL_KEYMAP: no binding has the id 'chek' (did you mean 'check'?)",
        "key 'j' is bound twice on the main screen: freeze (COREROLL_KEYMAP) and table.down (default)",
        "key 'j' is bound twice on the main screen: freeze (COREROLL_KEYMAP) and list.down (default)",
    ]


def test_textual_key_names_and_characters_are_the_same_key() -> None:
    assert normalize_key("?") == "question_mark" == normalize_key("question_mark")
    assert normalize_key("/") == "slash" == normalize_key("slash")
    assert normalize_key("ctrl+k") == "ctrl+k"
    assert normalize_key("f5") == "f5"
    with pytest.raises(ValueError, match="did you mean 'slash'"):
        normalize_key("solidus")  # Unicode's name for /, which Textual never reports
    assert refused(env="check=?").startswith("key '?' is bound twice on the main screen: check")


def test_the_file_maps_ids_in_any_toml_spelling(tmp_path: Path) -> None:
    path = write(
        tmp_path / "keys.toml",
        '# mine\ncheck = "C"\nfreeze = ["F", "ctrl+f"]\n"list.up" = "up,w"\n\n[table]\ndown = "down,n"\n',
    )
    keymap = load_keymap(DashApp, file=path, env="")
    assert keymap.keys == {"check": "C", "freeze": "F,ctrl+f", "list.up": "up,w", "table.down": "down,n"}
    assert keymap.origins["table.down"] == f"{path} line 7"
    assert keymap.sources == (str(path),)


def test_a_file_that_is_not_toml_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.toml", 'check = "C"\nfreeze = F\n')
    assert refused(file=path, env="") == f"{path} line 2: not TOML: Invalid value (column 10)"
    path.write_bytes(b'check = "C"\n# caf\xe9\n')
    assert refused(file=path, env="") == f"{path} line 2: not UTF-8 text"


def test_problems_in_the_file_name_their_line(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.toml", 'check = "C"\n\nfreez = "F"\n[list]\ndown = ""\nup = 3\n')
    assert refused(file=path, env="").splitlines() == [
        f"{path} line 5: list.down: no key given",
        f"{path} line 6: list.up: expected a key or a list of keys, got 3",
        f"{path} line 3: no binding has the id 'freez' (did you mean 'freeze'?)",
    ]


def test_a_conflict_between_file_and_environment_names_where_each_key_came_from(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.toml", '\nsort = "x"\n')
    assert refused(file=path, env="freeze=x") == (
        f"key 'x' is bound twice on the main screen: freeze (COREROLL_KEYMAP) and sort ({path} line 2)"
    )


def test_per_id_the_command_line_beats_the_environment_beats_keys_toml(tmp_path: Path) -> None:
    path = write(tmp_path / "keys.toml", 'check = "C"\nfreeze = "F"\n')
    from_default_file = load_keymap(DashApp, file=path, file_wins=False, env="check=K")
    assert from_default_file.keys == {"check": "K", "freeze": "F"}
    assert from_default_file.sources == (str(path), "COREROLL_KEYMAP")
    named = load_keymap(DashApp, file=path, file_wins=True, env="check=K,sort=x")
    assert named.keys == {"check": "C", "freeze": "F", "sort": "x"}
    assert named.sources == ("COREROLL_KEYMAP", str(path))


def test_keys_toml_is_read_from_the_config_folder_unless_a_file_is_named(
    own_config_folder: Path, tmp_path: Path
) -> None:
    assert keymap_file(None) == (None, False)
    default = write(own_config_folder / "keys.toml", 'check = "C"\n')
    assert keymap_file(None) == (default, False)
    assert keymap_file(str(tmp_path / "other.toml")) == (tmp_path / "other.toml", True)


def test_only_conflicts_the_key_map_makes_are_refused() -> None:
    # `q` closes `?` (its own binding) instead of quitting: built in, not a conflict. A dialog's
    # own keys shadow the app's on purpose, so quit=y does not clash with a dialog's y.
    assert load_keymap(DashApp, env="quit=y").keys == {"quit": "y"}
    # a dialog's key against its own other binding is a conflict
    assert refused(env="dialog.confirm=n") == (
        "key 'n' is bound twice on confirm dialogs: dialog.cancel (default) and dialog.confirm (COREROLL_KEYMAP)"
    )
    # Textual's own ctrl+c (no id to remap) wins everywhere
    assert "help_quit (built in, no id to remap)" in refused(env="check=ctrl+c")


def test_every_key_of_the_enum_is_known_to_the_check() -> None:
    known = {b.id for scope in key_scopes(DashApp) for layer in scope.layers for b in layer}
    assert {a.id for a in DashAction} <= known
    assert {"table.down", "list.down", "dialog.confirm", "help.close", "detail.close"} <= known


SERVE = ["--serve", "127.0.0.1:0"]  # refused before listening, not in every browser tab


@pytest.mark.timeout(20)  # before the check, --serve listened and waited for Ctrl+C
@pytest.mark.parametrize("serve", [[], SERVE], ids=["terminal", "serve"])
@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (
            ["--keymap", "/nonexistent/keys.toml"],
            "",
            "coreroll dash: key map /nonexistent/keys.toml: No such file",
        ),
        ([], "quit=q,check=q", "coreroll dash: key 'q' is bound twice on the main screen: check"),
        (["--theme", "solarised"], "", "coreroll dash: no theme 'solarised'; the themes: ansi-dark, "),
    ],
)
def test_the_dashboard_command_exits_1_naming_the_problem(
    monkeypatch: pytest.MonkeyPatch, serve: list[str], argv: list[str], env: str, message: str
) -> None:
    monkeypatch.setenv("COREROLL_KEYMAP", env)
    stderr = io.StringIO()
    with redirect_stderr(stderr):
        assert cli_main(["dash", *ETCD, *serve, *argv]) == 1
    assert stderr.getvalue().startswith(message), stderr.getvalue()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("serve", [[], SERVE], ids=["terminal", "serve"])
def test_each_problem_is_its_own_line_on_stderr(monkeypatch: pytest.MonkeyPatch, serve: list[str]) -> None:
    monkeypatch.setenv("COREROLL_KEYMAP", "check=,chek=C")
    stderr = io.StringIO()
    with redirect_stderr(stderr):
        assert cli_main(["dash", *ETCD, *serve]) == 1
    assert stderr.getvalue().splitlines() == [
        "coreroll dash: COREROLL_KEYMAP: check: no key given",
        "coreroll dash: COREROLL_KEYMAP: no binding has the id 'chek' (did you mean 'check'?)",
    ]
