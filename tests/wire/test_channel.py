"""The channel-name rule (`coreroll.wire.channel`): what Flatcar and Nebraska ship passes, what
would change meaning in update.conf, a shell, XML or a terminal does not."""

from __future__ import annotations

import pytest

from coreroll.omaha.widths import MAX_TRACK
from coreroll.wire.channel import CHANNEL_MAX, channel_problem, is_channel_name


def test_the_bound_is_the_omaha_parsers() -> None:
    assert CHANNEL_MAX == MAX_TRACK


@pytest.mark.parametrize(
    "name",
    ["stable", "beta", "alpha", "edge", "lts", "lts-2024", "9a2deb70-37be-4026-853f-bfdd6b347bbe", "a" * 255],
)
def test_real_channel_names_pass(name: str) -> None:
    assert is_channel_name(name) and channel_problem(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "",
        " beta",
        "beta\n",
        "beta\x00",
        "\x1b[2J",
        "$(reboot)",
        "`id`",
        "a;b",
        "bêta",
        "-beta",
        ".",
        "a" * 256,
        None,
        7,
    ],
)
def test_anything_else_is_refused_with_the_value_shown_safely(name: object) -> None:
    assert not is_channel_name(name)
    problem = channel_problem(name)
    assert problem is not None and "is not a channel name" in problem
    assert problem.isprintable() and len(problem) < 200
