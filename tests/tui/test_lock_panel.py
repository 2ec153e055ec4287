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
    assert holder.split() == ["host-n1", "2m", "rebooting", "n1"]  # the view names the host
    clock.now += 61
    head, holder = panel_lines(model, clock.now)
    assert head.endswith("0/1 free  1 stale")
    assert holder.split()[:3] == ["host-n1", "3m", "STALE:"] and holder.endswith("offline for 3m  n1")


def test_dash_flag_sets_the_offline_grace() -> None:
    import argparse

    from coreroll.commands.dash import add_arguments
    from coreroll.commands.dashboard.wiring import dashboard_setup

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = ["--etcd", "http://127.0.0.1:9", "--server", "http://127.0.0.1:9"]
    assert dashboard_setup(parser.parse_args(base)).model.stale_offline_grace == 300.0
    args = parser.parse_args([*base, "--stale-offline-grace", "900"])
    assert dashboard_setup(args).model.stale_offline_grace == 900.0


def test_a_group_on_both_apis_is_two_marked_entries_and_each_release_counts() -> None:
    model = FleetModel(clock=FakeClock())
    model.apply(u.LockState("lb", "v2", "/v2key", 0, 1, ("n1",)))
    assert panel_lines(model, 0)[0] == "lb (v2)  0/1 free  1 stale"  # a v2 group is always marked
    model.apply(u.LockState("lb", "v3", "v3key", 0, 2, ("n1", "n2")))
    heads = [line for line in panel_lines(model, 0) if not line.startswith(" ")]
    assert heads == ["lb (v2)  0/1 free  1 stale", "lb (v3)  0/2 free  2 stale"]  # unknown to the fleet
    assert [v.ref for v in model.lock_groups()] == [("v2", "lb"), ("v3", "lb")]
    model.apply(u.LockState("lb", "v3", "v3key", 2, 2, ()))  # n1 released its v3 slot only
    assert model.locks.held_idents("n1") == {"lb"} and model.locks.held_idents("n2") is None
    assert panel_lines(model, 0)[0].startswith("lb (v2)  0/1 free")
    assert panel_lines(model, 0)[2].startswith("lb (v3)  2/2 free")
