"""Keys are one enum (tui.keymap.DashAction): bindings, `?`, the read-only set and the handlers
follow from it; screens ask the app with typed messages; the handler runner and `call_action`
report outcomes (no live sources here: tests/tui/test_live.py runs the handlers against etcd and
the server)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from textual.message import Message

from coreroll.watch.actions import ActionResult, ReadOnlyError
from coreroll.watch.model import FleetModel
from tests.tui.helpers import wait_for
from tests.tui.test_screen import RecordingActions, make_app
from tui import interventions
from tui.app import DashApp
from tui.keymap import APP_BINDINGS, MAIN_BINDINGS, MUTATING, DashAction, action_allowed
from tui.messages import InterventionRequested, Selection, SortRequested
from tui.screens.main import MainScreen

ROOT = Path(__file__).resolve().parents[2]


def test_every_binding_comes_from_the_enum() -> None:
    assert [b.id for b in MAIN_BINDINGS + APP_BINDINGS] == [a.id for a in DashAction]
    assert [b.key for b in MAIN_BINDINGS + APP_BINDINGS] == [a.key for a in DashAction]
    assert len({a.id for a in DashAction}) == len(DashAction)
    assert MUTATING == {"check", "switch_channel", "unlock", "set_max", "pause"}
    shown = [b.description for b in MAIN_BINDINGS + APP_BINDINGS if b.show]
    assert shown == ["Check", "Chan", "Unlock", "Max", "Pause", "Filter", "Freeze", "Palette", "Help", "Quit"]


def test_every_mutating_key_has_a_handler_and_every_other_key_its_action() -> None:
    assert set(interventions.HANDLERS) == {a for a in DashAction if a.mutating}
    for action in DashAction:
        if not action.mutating:
            owner = DashApp if action.value.app_wide else MainScreen
            assert callable(getattr(owner, f"action_{action.id}", None)), action


def test_a_mutating_key_is_spelled_only_in_the_enum_and_its_handler() -> None:
    """Adding a mutating key touches tui/keymap.py and tui/interventions.py, nothing else."""
    allowed = {ROOT / "tui" / "keymap.py", ROOT / "tui" / "interventions.py"}
    for path in sorted([*(ROOT / "tui").rglob("*.py"), *(ROOT / "widgets").rglob("*.py")]):
        if path in allowed:
            continue
        text = path.read_text()
        for action in DashAction:
            if action.mutating:
                assert f"DashAction.{action.name}" not in text, (path, action)
                assert not re.search(rf"""["']{action.id}["']""", text), (path, action)


def test_a_handler_only_for_a_mutating_key() -> None:
    with pytest.raises(ValueError, match="not a mutating key"):
        interventions.handles(DashAction.SORT)
    with pytest.raises(ValueError, match="two handlers"):
        interventions.handles(DashAction.CHECK)(interventions.check)


def test_read_only_refuses_exactly_the_mutating_keys() -> None:
    for action in DashAction:
        name = "intervene" if action.mutating else action.id
        parameters = (action.id,) if action.mutating else ()
        assert action_allowed(name, parameters, read_only=True) is not action.mutating, action
        assert action_allowed(name, parameters, read_only=False) is True


async def test_keys_reach_the_app_as_typed_messages() -> None:
    actions = RecordingActions()
    app = make_app(actions=actions)
    posted: list[Message] = []
    async with app.run_test(size=(120, 40), message_hook=posted.append) as pilot:
        await pilot.pause()
        await pilot.press("space", "down", "down", "space", "c")
        await wait_for(lambda: actions.calls == ["check"], what="the check handler")
        requests = [m for m in posted if isinstance(m, InterventionRequested)]
        assert [r.action for r in requests] == [DashAction.CHECK]
        rows = app.main_screen.table.rows
        assert requests[0].selection.nodes == (rows[0].machine_id, rows[2].machine_id)
        assert requests[0].selection.cursor is rows[2]
        await pilot.press("O")
        await wait_for(lambda: app.sort_reverse, what="reversed sort")
        assert [m.reverse_only for m in posted if isinstance(m, SortRequested)] == [True]


class FakeHost:
    """What a handler may use of the app (tui.interventions.Host), recording what it shows."""

    def __init__(self, actions: Any, read_only: bool = False) -> None:
        self.model = FleetModel()
        self.actions = actions
        self.read_only = read_only
        self.notes: list[tuple[str, str]] = []

    def notify(self, message: str, *, severity: str = "information", **_: object) -> None:
        self.notes.append((severity, message))

    async def push_screen_wait(self, screen: object) -> object:
        raise AssertionError(f"no dialog expected, got {screen!r}")

    def flush(self) -> None:
        pass

    def logged(self) -> list[str]:
        return [entry.message for _, entry in self.model.activity_after(0)]


class FailingActions(RecordingActions):
    def __init__(self, error: Exception | None = None, result: ActionResult | None = None) -> None:
        super().__init__()
        self.error = error
        self.result = result

    async def check(self, ids: Sequence[str]) -> ActionResult:
        await super().check(ids)
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


async def test_read_only_is_refused_before_the_handler_runs() -> None:
    actions = RecordingActions()
    host = FakeHost(actions, read_only=True)
    await interventions.run(host, DashAction.CHECK, Selection(nodes=("a",)))  # type: ignore[arg-type]
    assert actions.calls == []
    assert host.notes == [("error", "check: refused, the dashboard is read-only")]


@pytest.mark.parametrize(
    ("actions", "severity", "shown"),
    [
        (FailingActions(error=ReadOnlyError("check")), "error", "check a: refused (read-only mode: check is"),
        (FailingActions(error=RuntimeError("etcd gone")), "error", "check a failed: etcd gone"),
        (FailingActions(result=ActionResult(False, "holder released")), "warning", "holder released"),
    ],
)
async def test_a_failed_intervention_is_shown_and_logged(
    actions: FailingActions, severity: str, shown: str
) -> None:
    host = FakeHost(actions)
    await interventions.run(host, DashAction.CHECK, Selection(nodes=("a",)))  # type: ignore[arg-type]
    assert actions.calls == ["check"]
    assert len(host.notes) == 1 and host.notes[0][0] == severity and shown in host.notes[0][1]
    assert any(shown in line for line in host.logged())


async def test_a_succeeded_intervention_is_shown() -> None:
    host = FakeHost(RecordingActions())
    await interventions.run(host, DashAction.CHECK, Selection(nodes=("a",)))  # type: ignore[arg-type]
    assert host.notes == [("information", "check recorded")]
    assert host.logged() == []
