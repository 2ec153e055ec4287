"""locksmithd's reboot window format and Go durations (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from coreroll.node.window import RebootWindow, WindowError, parse_go_duration, window_from_settings

# 2026-11-26 is a Thursday
THU = datetime(2026, 11, 26, tzinfo=UTC)


def at(day_offset: int, hour: int, minute: int = 0) -> datetime:
    return THU + timedelta(days=day_offset, hours=hour, minutes=minute)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h30m", 5400), ("45m", 2700), ("90s", 90), ("1.5h", 5400), ("0", 0), ("300ms", 0.3), ("2h0m0s", 7200)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("10", 'time: missing unit in duration "10"'),
        ("h", 'time: invalid duration "h"'),
    ],
)
def test_go_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_go_duration(text)
    assert str(info.value) == message


def test_weekly_window() -> None:
    window = RebootWindow.parse("Thu 23:00", "1h30m")
    assert window.contains(at(0, 23, 0))
    assert window.contains(at(1, 0, 29))  # runs past midnight into Friday
    assert not window.contains(at(1, 0, 30))
    assert not window.contains(at(0, 22, 59))
    assert not window.contains(at(1, 23, 15))  # Friday 23:15: not the window's day
    assert window.next_start(at(0, 22, 0)) == at(0, 23, 0)
    assert window.next_start(at(0, 23, 10)) == at(7, 23, 0)
    assert window.seconds_until_open(at(0, 22, 0)) == 3600
    assert window.seconds_until_open(at(0, 23, 10)) == 0
    assert window.seconds_until_open(at(1, 1, 0)) == (6 * 24 + 22) * 3600


def test_daily_window_and_day_names_any_case() -> None:
    daily = RebootWindow.parse("04:00", "1h")
    assert daily.contains(at(3, 4, 30)) and not daily.contains(at(3, 5, 0))
    assert daily.next_start(at(3, 5, 0)) == at(4, 4, 0)
    sunday = RebootWindow.parse("SUN 02:00", "2h")
    assert sunday.next_start(THU) == at(3, 2, 0)  # 2026-11-29 is a Sunday


def test_window_uses_the_time_zone_of_the_clock() -> None:
    window = RebootWindow.parse("23:00", "1h")
    berlin = ZoneInfo("Europe/Berlin")
    assert window.contains(datetime(2026, 11, 26, 23, 30, tzinfo=berlin))
    assert not window.contains(datetime(2026, 11, 26, 23, 30, tzinfo=UTC).astimezone(berlin))


@pytest.mark.parametrize(
    ("start", "length", "message"),
    [
        ("Thx 23:00", "1h", 'unknown day "Thx"'),
        ("24:00", "1h", '"24:00" is not a 24-hour HH:MM time'),
        ("11pm", "1h", "is not a 24-hour HH:MM time"),
        ("Thu 23:00 UTC", "1h", 'expected "HH:MM" or "Ddd HH:MM"'),
        ("23:00", "24h", "a daily window must be shorter than 24h"),
        ("Thu 23:00", "168h", "a weekly window must be shorter than 7 days"),
        ("Thu 23:00", "1 hour", 'time: unknown unit " hour"'),
        ("23:00", "-1h", "cannot be negative"),
    ],
)
def test_invalid_windows(start: str, length: str, message: str) -> None:
    with pytest.raises(WindowError, match=message):
        RebootWindow.parse(start, length)


def test_weekly_window_may_exceed_a_day() -> None:
    assert RebootWindow.parse("Sat 00:00", "47h").length == 47 * 3600


def test_window_settings_need_both_or_neither() -> None:
    assert window_from_settings(None, None) is None
    assert window_from_settings("", "") is None
    assert window_from_settings("Thu 23:00", "1h30m") == RebootWindow.parse("Thu 23:00", "1h30m")
    with pytest.raises(WindowError, match="START is set but LOCKSMITHD_REBOOT_WINDOW_LENGTH is not"):
        window_from_settings("Thu 23:00", None)
    with pytest.raises(WindowError, match="LENGTH is set but LOCKSMITHD_REBOOT_WINDOW_START is not"):
        window_from_settings(None, "1h")
