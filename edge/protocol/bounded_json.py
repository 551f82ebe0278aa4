"""JSON from untrusted senders, parsed only within bounds (size, nesting depth, finite numbers).

Python's `json` recurses once per nesting level: a few kB of `[[[[…` raises RecursionError (not a
ValueError), which the usual `except ValueError` lets through and which kills the thread that
parsed it. So the depth is counted first, by a linear scan that never recurses, and the text is
parsed only when it is within bounds. Every refusal is a `JsonRefused` (a ValueError) whose
`reason` is one of `oversized`, `too_deep` or `malformed`: callers count it under that name.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from itertools import accumulate
from typing import Any, Literal

RefusalReason = Literal["oversized", "too_deep", "malformed"]

# A JSON string, escapes included: its brackets are text, not nesting. Possessive quantifiers never
# backtrack, and an unterminated string runs to the end of the input (so a later quote is never
# tried as a new start): the scan stays linear on hostile input such as `"\"\"\"…` without a close.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
# Every byte but the four brackets is deleted; openers become +1 and closers -1 (0xFF as a signed byte).
_BRACKETS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class JsonRefused(ValueError):
    """Input refused before or while parsing; `reason` says which bound it broke."""

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        super().__init__(detail)
        self.reason: RefusalReason = reason


def json_depth(payload: bytes) -> int:
    """The deepest nesting of arrays and objects in `payload`, brackets inside strings not counted
    (0 for a scalar). Linear time, no recursion; malformed text gives a meaningless but finite number."""
    brackets = _STRING.sub(b"", payload).translate(_BRACKETS, _NOT_BRACKETS)
    return max(accumulate(array("b", brackets)), default=0)


def check_json_bounds(payload: bytes | str, max_bytes: int, max_depth: int) -> bytes:
    """`payload` as bytes if it is at most `max_bytes` long and nested at most `max_depth` deep;
    JsonRefused otherwise. For callers that hand the text on to a parser of their own (pydantic's
    `model_validate_json`, a signature check)."""
    data = payload.encode() if isinstance(payload, str) else bytes(payload)
    if len(data) > max_bytes:
        raise JsonRefused("oversized", f"{len(data)} bytes, at most {max_bytes} accepted")
    depth = json_depth(data)
    if depth > max_depth:
        raise JsonRefused("too_deep", f"nested {depth} deep, at most {max_depth} accepted")
    return data


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses as inf
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_bounded_json(payload: bytes | str, max_bytes: int, max_depth: int, max_int_digits: int = 64) -> Any:
    """The parsed JSON value of `payload`, or JsonRefused: `oversized` past `max_bytes`, `too_deep`
    past `max_depth` levels of arrays/objects, `malformed` for anything that is not strict JSON
    (bad syntax or UTF-8, NaN/Infinity, a number out of float range, an integer of more than
    `max_int_digits` digits). Ranges (a version fits 64 bits) are the protocol model's to check."""
    data = check_json_bounds(payload, max_bytes, max_depth)

    def bounded_int(text: str) -> int:
        if len(text.lstrip("-")) > max_int_digits:
            raise ValueError(f"integer of {len(text)} digits")
        return int(text)

    try:
        return json.loads(data, parse_float=_finite, parse_int=bounded_int, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:  # RecursionError cannot happen within max_depth; kept as a guard
        raise JsonRefused("malformed", f"not JSON: {e}") from None
