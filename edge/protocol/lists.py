"""List kinds: what a list does when one of its subjects (or plates) is seen.

Both programs read them from their config's `lists` (name -> kind): the box to decide when a sighting
alerts and how urgently it is sent, the centre to know which lists take plates and which alerts the
console shows as urgent. A list's behaviour comes from its kind, never from its name: renaming a list
keeps its rule as long as it keeps its kind.
"""

from __future__ import annotations

from typing import Literal

# `alert`: any sighting alerts. `urgent`: any sighting alerts, ahead of `alert` lists. `leaving-only`:
# alerts, urgently, only when the person crosses the gate line outwards. `plates`: licence plates.
ListKind = Literal["alert", "urgent", "leaving-only", "plates"]

# The lists a box and a centre ship with. Their kinds were once implied by these names: a config that
# names them without a kind keeps that behaviour.
BUILT_IN_LIST_KINDS: dict[str, ListKind] = {
    "watchlist": "alert", "missing_elders": "urgent", "at_risk_elders": "leaving-only", "plate_watchlist": "plates",
}  # fmt: skip


def names_with_kinds(value: object) -> object:
    """A config's `lists` as a mapping of name to kind, for a pydantic before-validator.

    Configs from before list kinds name the lists only (`[watchlist, missing_elders]`): the shipped
    names take their built-in kinds and any other name `alert`. A mapping is left for the field's own
    validation (an unknown kind is an error naming `lists.<name>`)."""
    if not isinstance(value, list):
        return value
    if not all(isinstance(name, str) for name in value):
        raise ValueError("give list names (`[watchlist, missing_elders]`) or names with their kind "
                         "(`{watchlist: alert, missing_elders: urgent}`), not a mix")  # fmt: skip
    return {name: BUILT_IN_LIST_KINDS.get(name, "alert") for name in value}
