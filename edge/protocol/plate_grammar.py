"""Chinese licence plate grammar: what a read may be, per plate type, normalised and validated.

Each kind is a sequence of positions, each with the characters it may hold (GA 36-2018, and the
armed police's own WJ plates), written left to right and, on double-row plates, upper row first:

| kind | plates | example |
|---|---|---|
| ordinary | blue small car, yellow large vehicle (single or double row), motorcycle | 京A12345 |
| new_energy | green small car (D/F or the 2022 letters first), yellow-green large (D/F last) | 沪AD12345, 沪A12345D |
| police | white, red 警 last | 京A1234警 |
| learner | yellow, 学 last | 京A1234学 |
| trailer | yellow double row, 挂 last | 京A1234挂 |
| hk_macau | black Guangdong-Hong Kong/Macau, 粤Z, 港/澳 last | 粤Z1234港 |
| consulate | black, red 领 last | 沪A1234领 |
| embassy | black, red 使 first, country code and number | 使123456 |
| armed_police | white WJ: 2012 (small province character) or 2007 (two small digits) | WJ京1234X, WJ0112345 |
| military | white, two letters (the first red), five digits | VA12345 |

Letters exclude I and O except as an issuing-office letter (kept as read, as before).
"""

from __future__ import annotations

from dataclasses import dataclass

PROVINCES = "京津沪渝冀晋蒙辽吉黑苏浙皖闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新"
SUFFIXES = "学警港澳挂使领"  # the type characters; 使 comes first on an embassy plate, the others last
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # I and O are not used
DIGITS = "0123456789"
SERIAL = LETTERS + DIGITS
OFFICE = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # the issuing-office letter after the province
ALPHABET = PROVINCES + SUFFIXES + OFFICE + DIGITS  # what the reader may output
NEW_ENERGY_SMALL_FIRST = "DABCEFGHJK"  # D A B C E: electric; F G H J K: hybrid (2022 extension of D/F)
NEW_ENERGY_LARGE_LAST = "DF"
WJ_LAST = DIGITS + "XBTSHDJ"  # a WJ serial may end in its service letter (fire, border, traffic, ...)
MILITARY_FIRST = "VKHBSLJNGCZ"  # service or theatre letter


@dataclass(frozen=True)
class PlateKind:
    """One plate type's grammar: the characters each position may hold."""

    name: str
    positions: tuple[str, ...]

    def matches(self, text: str) -> bool:
        if len(text) != len(self.positions):
            return False
        return all(ch in allowed for ch, allowed in zip(text, self.positions, strict=True))


def _kind(name: str, *positions: str) -> PlateKind:
    return PlateKind(name, positions)


# Tried in this order: the first kind a text fits names it (an 8-character text is only new-energy).
KINDS: tuple[PlateKind, ...] = (
    _kind("ordinary", PROVINCES, OFFICE, *[SERIAL] * 5),
    _kind("new_energy", PROVINCES, OFFICE, NEW_ENERGY_SMALL_FIRST, SERIAL, *[DIGITS] * 4),
    _kind("new_energy", PROVINCES, OFFICE, *[DIGITS] * 5, NEW_ENERGY_LARGE_LAST),
    _kind("police", PROVINCES, OFFICE, *[SERIAL] * 4, "警"),
    _kind("learner", PROVINCES, OFFICE, *[SERIAL] * 4, "学"),
    _kind("trailer", PROVINCES, OFFICE, *[SERIAL] * 4, "挂"),
    _kind("hk_macau", "粤", "Z", *[SERIAL] * 4, "港澳"),
    _kind("consulate", PROVINCES, OFFICE, *[DIGITS] * 4, "领"),
    _kind("embassy", "使", *[DIGITS] * 6),
    _kind("armed_police", "W", "J", PROVINCES, *[DIGITS] * 4, WJ_LAST),
    _kind("armed_police", "W", "J", DIGITS, DIGITS, *[DIGITS] * 4, WJ_LAST),
    _kind("military", MILITARY_FIRST, LETTERS, *[DIGITS] * 5),
)
KIND_NAMES = tuple(dict.fromkeys(kind.name for kind in KINDS))


def normalise(text: str) -> str:
    """Upper case, without separators (spaces, dots, middle dots, dashes)."""
    return "".join(ch for ch in text.upper() if ch.isalnum())


def plate_kind(text: str) -> str | None:
    """The kind (a name in `KIND_NAMES`) when `text` (normalised) is a valid plate; None otherwise."""
    return next((kind.name for kind in KINDS if kind.matches(text)), None)


# Look-alikes the recogniser confuses, by what the grammar allows at a position.
_AS_LETTER = {"0": "D", "1": "J", "2": "Z", "4": "A", "5": "S", "6": "G", "8": "B"}
_AS_DIGIT = {"I": "1", "O": "0", "D": "0", "Q": "0", "Z": "2", "S": "5", "G": "6", "B": "8"}
MAX_REPAIRS = 2  # more would let the grammar turn a wrong read into some other valid plate


def _repaired(text: str, kind: PlateKind) -> str | None:
    """`text` with look-alikes swapped where `kind` rules them out, or None when that does not fit it."""
    if len(text) != len(kind.positions):
        return None
    out, swaps = [], 0
    for ch, allowed in zip(text, kind.positions, strict=True):
        if ch not in allowed:
            ch = _AS_LETTER.get(ch, ch) if ch in DIGITS else _AS_DIGIT.get(ch, ch)
            swaps += 1
        if ch not in allowed:
            return None
        out.append(ch)
    return "".join(out) if swaps <= MAX_REPAIRS else None


def repair(text: str) -> str:
    """Fix look-alike characters the grammar rules out at their position (the issuing-office letter
    read as a digit, I or O in the serial, a letter among digits); returns `text` unchanged when no
    kind accepts it after at most `MAX_REPAIRS` swaps."""
    if len(text) < 3 or plate_kind(text):
        return text
    return next((fixed for kind in KINDS if (fixed := _repaired(text, kind))), text)
