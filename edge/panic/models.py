"""What a panic receiver hands the panic service: a button's raw signal. What the centre gets (a
`PanicEvent`, a `DeviceNotice`) is the protocol's: `edge.protocol.panic`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

SignalKind = Literal["press", "long_press", "cancel", "heartbeat"]
# Every receiver takes both spellings in any case: the HTTP/MQTT words and the serial receivers' short ones
# (`PRESS|LONG|CANCEL|HB`), so a bridge or a button configured with either set is understood everywhere.
SIGNAL_SPELLINGS: dict[str, SignalKind] = {
    "press": "press", "long_press": "long_press", "long": "long_press", "cancel": "cancel",
    "heartbeat": "heartbeat", "hb": "heartbeat",
}  # fmt: skip


def _spelled(value: object) -> object:
    """Either spelling, any case, to the one kind; anything else is left for the model to refuse."""
    return SIGNAL_SPELLINGS.get(value.lower(), value) if isinstance(value, str) else value


DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]  # as `panic.devices[].device_id`
MAX_SIGNAL_BYTES = 4096  # an MQTT signal larger than this is refused unread (HTTP: `max_body_bytes`)
MAX_SIGNAL_DEPTH = 4  # a signal is one flat object; deeper JSON is refused before it is parsed


class SignalMessage(BaseModel):
    """What an IP button (HTTP body) or a radio bridge (MQTT payload) sends: a flat JSON object,
    validated with these bounds before anything else reads it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    device_id: DeviceId | None = Field(
        None, description="The button (HTTP: required; MQTT: the topic's last level names it instead)."
    )
    event: Annotated[SignalKind, BeforeValidator(_spelled)] = Field(
        "press", description="What happened: press, long_press, cancel, heartbeat (or PRESS, LONG, CANCEL, HB)."
    )
    battery: int | None = Field(None, ge=0, le=100, strict=True, description="Battery level in percent.")


@dataclass(frozen=True)
class ButtonSignal:
    """One signal from a receiver adapter, before coalescing."""

    device_id: str
    kind: SignalKind
    pressed_at: float  # when the device (or the receiver, if the device has no clock) saw it
    source: str  # gpio, serial, http, mqtt
    battery: int | None = None  # percent
