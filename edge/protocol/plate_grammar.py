"""Chinese licence plate grammar: what a read may be, normalised and validated.

Ordinary plates (blue, yellow, black, white): province character, issuing-office letter, then 5
characters (letters without I and O, digits); the last may be a suffix character (学 警 港 澳 挂
使 领). New-energy (green) plates have 6 characters after the letter, with D or F first or last.
"""

from __future__ import annotations

import re

PROVINCES = "京津沪渝冀晋蒙辽吉黑苏浙皖闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新"
SUFFIXES = "学警港澳挂使领"
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # I and O are not used
SERIAL = LETTERS + "0123456789"
ALPHABET = PROVINCES + SUFFIXES + "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"  # what the reader may output

_ORDINARY = re.compile(f"^[{PROVINCES}][A-Z][{SERIAL}]{{4}}[{SERIAL}{SUFFIXES}]$")
_NEW_ENERGY = re.compile(f"^[{PROVINCES}][A-Z](?:[DF][{SERIAL}]{{5}}|[{SERIAL}]{{5}}[DF])$")


def normalise(text: str) -> str:
    """Upper case, without separators (spaces, dots, middle dots, dashes)."""
    return "".join(ch for ch in text.upper() if ch.isalnum())


def plate_kind(text: str) -> str | None:
    """`ordinary` or `new_energy` when `text` (normalised) is a valid plate; None otherwise."""
    if _NEW_ENERGY.match(text):
        return "new_energy"
    if _ORDINARY.match(text):
        return "ordinary"
    return None


# Look-alikes the recogniser confuses, by what the grammar allows at a position.
_AS_LETTER = {"0": "D", "2": "Z", "4": "A", "5": "S", "6": "G", "8": "B"}
_AS_SERIAL = {"I": "1", "O": "0"}


def repair(text: str) -> str:
    """Fix look-alike characters the grammar rules out at their position (the issuing-office letter
    read as a digit, I or O in the serial); returns `text` unchanged when that does not make it valid."""
    if len(text) < 3 or plate_kind(text):
        return text
    fixed = text[0] + _AS_LETTER.get(text[1], text[1]) + "".join(_AS_SERIAL.get(c, c) for c in text[2:])
    return fixed if plate_kind(fixed) else text
