"""What the centre sends a box: receipts (plain JSON; only the centre may write that topic) and
signed commands. Every inbound payload is validated here; anything else is refused."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

EventId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class Receipt(BaseModel):
    """`<prefix>/<site>/<box>/receipt`: the centre has these events; the box may forget them."""

    model_config = ConfigDict(extra="forbid")
    event_ids: list[EventId] = Field(min_length=1, max_length=1000)


class AckAlert(BaseModel):
    """Signed command: an operator acknowledged (report → dispose) or closed an alert."""

    model_config = ConfigDict(extra="forbid")
    command: Literal["ack_alert"]
    event_id: EventId
    state: Literal["acked", "closed"]
    note: str | None = Field(None, max_length=1000)
    by: str | None = Field(None, max_length=100)
    issued_at: datetime


# Later commands join AckAlert here as a union discriminated by `command`.
Command = AckAlert
