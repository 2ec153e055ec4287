"""The lock panel's lines for a holder that is rebooting (offline within the model's grace) and for
one that stayed down past it (pure: no app)."""

from __future__ import annotations

from coreroll.watch import updates as u
from coreroll.watch.model import FleetModel
from coreroll.wire.keys import status_key
from tests.watch.helpers import FakeClock, status_bytes
from widgets.lock_panel import group_options


def panel_lines(model: FleetModel, now: float) -> list[str]:
    return [str(option.prompt) for option in group_options(model.lock_groups(), now)]


def test_rebooting_holder_is_shown_rebooting_then_stale_once_the_grace_is_over() -> None:
    clock = FakeClock()
    model = FleetModel(clock=clock, stale_offline_grace=180)
    model.apply(u.NodeStatus("n1", status_key("n1"), status_bytes("n1")))
    model.apply(u.NodeAlive("n1", True))
    model.apply(u.LockState("", "v3", "k", 0, 1, ("n1",)))
    model.apply(u.NodeAlive("n1", False))
    clock.now += 120
    head, holder = panel_lines(model, clock.now)
    assert "stale" not in head
    assert holder.split() == ["n1", "2m", "rebooting"]
    clock.now += 61
    head, holder = panel_lines(model, clock.now)
    assert head.endswith("0/1 free  1 stale")
    assert holder.split()[:3] == ["n1", "3m", "STALE:"] and holder.endswith("offline for 3m")


def test_dash_flag_sets_the_offline_grace() -> None:
    import argparse

    from coreroll.commands.dash import add_arguments
    from tui.run import build_app

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = ["--etcd", "http://127.0.0.1:9", "--server", "http://127.0.0.1:9"]
    assert build_app(parser.parse_args(base)).model.stale_offline_grace == 300.0
    args = parser.parse_args([*base, "--stale-offline-grace", "900"])
    assert build_app(args).model.stale_offline_grace == 900.0
