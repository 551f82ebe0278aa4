"""`recognition.at_risk_hours`: both ends included, midnight wrapped (fast, no clock of the machine)."""

from __future__ import annotations

import time

import pytest

from edge.decision import _parse_hours, _within


def local_ts(hour: int, minute: int, second: int = 30) -> float:
    """A timestamp at that local time of an ordinary day (no DST change on 15 January)."""
    return time.mktime((2026, 1, 15, hour, minute, second, 0, 0, -1))


@pytest.mark.parametrize(
    ("hours", "at", "inside"),
    [
        ("00:00-23:59", (0, 0), True),
        ("00:00-23:59", (12, 0), True),
        ("00:00-23:59", (23, 59), True),  # the last minute of the day is in "all day"
        ("08:00-20:00", (7, 59), False),
        ("08:00-20:00", (8, 0), True),
        ("08:00-20:00", (20, 0), True),
        ("08:00-20:00", (20, 1), False),
        ("22:00-06:00", (21, 59), False),  # wraps midnight
        ("22:00-06:00", (22, 0), True),
        ("22:00-06:00", (23, 59), True),
        ("22:00-06:00", (0, 0), True),
        ("22:00-06:00", (6, 0), True),
        ("22:00-06:00", (6, 1), False),
        ("12:00-12:00", (12, 0), True),  # one minute
        ("12:00-12:00", (12, 1), False),
    ],
)
def test_at_risk_hours_include_both_ends_and_wrap_midnight(hours: str, at: tuple[int, int], inside: bool) -> None:
    parsed = _parse_hours(hours)
    assert parsed is not None
    assert _within(parsed, local_ts(*at)) is inside
