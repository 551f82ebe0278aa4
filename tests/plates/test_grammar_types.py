"""The plate grammar per type (issue 16): what each GA 36-2018 kind (and the WJ plates) may read,
what it may not, and the look-alike repairs the grammar allows."""

from __future__ import annotations

import pytest

from edge.protocol.plate_grammar import KIND_NAMES, plate_kind, repair

VALID = [
    ("京A12345", "ordinary"),  # blue small car, yellow large vehicle, motorcycle
    ("苏E2X8Z1", "ordinary"),
    ("皖KD01833", "new_energy"),  # small car: D/F (or the 2022 letters) first, then a letter or digit, 4 digits
    ("沪AF12345", "new_energy"),
    ("粤BDA1234", "new_energy"),
    ("粤BA01234", "new_energy"),
    ("浙C12345D", "new_energy"),  # large vehicle: five digits, then D/F
    ("京A1234警", "police"),
    ("鄂G10A3警", "police"),
    ("粤B1234学", "learner"),
    ("津J1880挂", "trailer"),
    ("粤Z1234港", "hk_macau"),
    ("粤ZAB12澳", "hk_macau"),
    ("沪A1234领", "consulate"),
    ("使123456", "embassy"),
    ("WJ京1234X", "armed_police"),  # 2012: the small province character
    ("WJ粤88881", "armed_police"),
    ("WJ0212345", "armed_police"),  # 2007: two small corps digits
    ("VA12345", "military"),
    ("KJ09876", "military"),
]
INVALID = [
    "京A1234",  # too short
    "京AI2345",  # I is no serial character
    "XA12345",  # no province
    "京A123456",  # 8 characters without the new-energy letter
    "浙C1234DF",  # large new-energy: five digits before D/F
    "粤BD12A34",  # small new-energy: the last four are digits
    "京A12345警",  # a suffix plate has four serial characters
    "京Z1234港",  # Hong Kong / Macau plates are 粤Z
    "粤A1234港",
    "沪A12B4领",  # consulate serials are digits
    "使12345",  # embassy: six digits
    "使12345A",
    "京A使1234",  # 使 only comes first
    "WJ京12345A",  # one small character and five
    "WJ12345",  # WJ without its small characters
    "AA12345",  # military: the first letter names a service or theatre
    "V012345",
    "警A12345",
]


@pytest.mark.parametrize(("text", "kind"), VALID)
def test_valid_plates_of_each_kind(text: str, kind: str) -> None:
    assert plate_kind(text) == kind


def test_every_kind_has_an_example() -> None:
    assert {kind for _, kind in VALID} == set(KIND_NAMES)


@pytest.mark.parametrize("text", INVALID)
def test_near_misses_are_not_plates(text: str) -> None:
    assert plate_kind(text) is None


@pytest.mark.parametrize(
    ("raw", "fixed"),
    [
        ("皖429C52", "皖A29C52"),  # office letter read as a digit
        ("皖AAIR81", "皖AA1R81"),  # I in the serial
        ("沪AI234领", "沪A1234领"),  # a letter where a consulate serial has digits
        ("使12O456", "使120456"),
        ("WJ京I234X", "WJ京1234X"),
        ("VA1234S", "VA12345"),
        ("京A12345", "京A12345"),  # valid: unchanged
        ("使1234567", "使1234567"),  # no kind of this length: unchanged
        ("使IOQ456", "使IOQ456"),  # three swaps are more than a repair
    ],
)
def test_repair_per_kind(raw: str, fixed: str) -> None:
    assert repair(raw) == fixed
