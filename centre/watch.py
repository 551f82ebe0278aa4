"""`gatebox centre watch`: the command centre's live view of alerts, panics, alert states, device
notices and box availability: a line of text each, or with `--json` one JSON object per line on stdout
(`{"type", "site", "box_id", "message"}`; `message` is the box's message as its model reads it, or
`{"state": "online"}` for availability), for scripts and integrations. Stderr carries only logs and
warnings.

It is also the centre's receiver: every alert it gets is confirmed to its box with a receipt (the
box keeps re-sending until then), and alerts seen before (same box and `event_id`) are not shown
again. What a box sends is bounded and validated first, must name the box whose topic it came on,
and reaches the terminal only as printable text: no escape sequences.
"""

from __future__ import annotations

import base64
import json
import queue
import re
import sys
import time
from pathlib import Path
from typing import TextIO, TypeVar

import paho.mqtt.client as mqtt
from pydantic import BaseModel, ValidationError

from edge.protocol import topics
from edge.protocol.alert import Alert
from edge.protocol.messages import AlertState, receipt_for
from edge.protocol.mqtt import BrokerConfig, connect, disconnect
from edge.protocol.panic import DeviceNotice, PanicEvent
from edge.protocol.wire import DEFAULT_MAX_MESSAGE_BYTES, Refusals, Refused, load_json

# Control characters (C0, DEL, C1) and direction overrides: a box's text could otherwise move the
# cursor, recolour or retitle the operator's terminal, or reorder what a line seems to say.
UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
# A snapshot's file name: an id as the models allow it, never `.`, `..` or a path.
FILE_NAME = re.compile(r"^[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,63}$")


def printable(text: str) -> str:
    """`text` with each control or direction character written as its `\\uXXXX` escape (which is
    still valid inside a JSON string)."""
    return UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# A message model `_parse` validates against; the parsed message keeps its type.
M = TypeVar("M", bound=BaseModel)


def state_line(box: str, state: AlertState) -> str:
    return f"STATE {box} event={state.event_id} {state.state} by={state.by}"


def device_line(box: str, notice: DeviceNotice) -> str:
    return f"DEVICE {box} {notice.kind} device={notice.device_id} {notice.detail}"


def format_alert(alert: Alert) -> str:
    return (
        f"ALERT {alert.ts.isoformat(timespec='seconds')} {alert.site}/{alert.box_id}/{alert.camera} "
        f"list={alert.list} subject={alert.subject_id} score={alert.score:.2f} "
        f"frame={alert.frame} track={alert.track_id} event={alert.event_id}"
    )


class Skipped(Exception):
    """A message not shown: `kind` for the counters, the text for the warning line."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


class _Watcher:
    """What `watch` shows of each message, one at a time."""

    def __init__(self, client: mqtt.Client, out: TextIO, as_json: bool, receipts: bool,
                 snapshots_dir: Path | None, max_message_bytes: int) -> None:  # fmt: skip
        self.client, self.out = client, out
        self.as_json, self.receipts, self.snapshots_dir = as_json, receipts, snapshots_dir
        self.max_message_bytes = max_message_bytes
        self.seen: set[tuple[str, str]] = set()  # (box, event_id) of alerts shown
        self.seen_panics: set[tuple[str, str]] = set()  # (box, message_id)

    def show(self, message: mqtt.MQTTMessage) -> None:
        """Raises Skipped for a message not shown."""
        parts = message.topic.split("/")
        if len(parts) != 4:
            return
        box, leaf = "/".join(parts[1:3]), parts[-1]
        if leaf == topics.AVAILABILITY:
            state = message.payload[:64].decode("utf-8", "replace")
            self.say(parts, f"BOX {box} {state}", {"state": state})
            return
        if leaf == topics.PANIC:
            self._panic(message, parts, box)
        elif leaf == topics.ALERT_STATE:
            alert_state = self._parse(message, AlertState, parts)
            self.say(parts, state_line(box, alert_state), alert_state)
        elif leaf == topics.DEVICE:
            notice = self._parse(message, DeviceNotice, parts)
            self.say(parts, device_line(box, notice), notice)
        elif leaf == topics.ALERT:
            self._alert(message, parts, box)

    def _parse(self, message: mqtt.MQTTMessage, model: type[M], parts: list[str]) -> M:
        leaf = parts[-1]
        what = "alert" if leaf == topics.ALERT else leaf
        try:
            parsed = model.model_validate(load_json(bytes(message.payload), self.max_message_bytes))
        except Refused as e:
            raise Skipped(f"{leaf}:{e.reason}", f"skipped malformed {what} on {message.topic}: {e}") from None
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(body)"
            raise Skipped(f"{leaf}:invalid:{where}", f"skipped malformed {what} on {message.topic}: {e.error_count()} "
                          f"invalid field(s); first: {where}: {first['msg'][:100]}") from None  # fmt: skip
        claimed = (getattr(parsed, "site", parts[1]), getattr(parsed, "box_id", parts[2]))
        if claimed != (parts[1], parts[2]):
            raise Skipped(f"{leaf}:wrong_box", f"skipped {what} on {message.topic}: it names {claimed[0]}/{claimed[1]}")
        return parsed

    def _alert(self, message: mqtt.MQTTMessage, parts: list[str], box: str) -> None:
        alert = self._parse(message, Alert, parts)
        if self.receipts:  # confirm even a duplicate: the box re-sent it because it missed our receipt
            self._receipt(parts, alert.event_id)
        if (box, alert.event_id) in self.seen:
            return
        self.seen.add((box, alert.event_id))
        self.say(parts, format_alert(alert), alert)
        self._save(alert.event_id, alert.snapshot_jpeg_b64, message.topic)

    def _panic(self, message: mqtt.MQTTMessage, parts: list[str], box: str) -> None:
        """Panics stand out; each message (an event and its updates) is shown once and confirmed."""
        panic = self._parse(message, PanicEvent, parts)
        if self.receipts:
            self._receipt(parts, panic.message_id)
        if (box, panic.message_id) in self.seen_panics:
            return
        self.seen_panics.add((box, panic.message_id))
        label = {"panic": "PANIC", "long_press": "PANIC-LONG", "cancel": "PANIC-CANCEL"}[panic.kind]
        self.say(
            parts,
            f"!!! {label} {panic.pressed_at.isoformat(timespec='seconds')} {panic.site}/{panic.box_id} "
            f"device={panic.device_id} household={panic.household or '-'} address={panic.address or '-'} "
            f"presses={panic.presses} seq={panic.sequence} "
            f"battery={panic.battery if panic.battery is not None else '-'} event={panic.event_id}",
            panic,
        )
        if panic.snapshot_jpeg_b64:  # the nearest camera's view
            self._save(panic.event_id, panic.snapshot_jpeg_b64, message.topic)

    def _receipt(self, parts: list[str], receipt_id: str) -> None:
        self.client.publish(*receipt_for("/".join(parts), receipt_id), qos=1)

    def _save(self, event_id: str, jpeg_b64: str, topic: str) -> None:
        """`<event_id>.jpg` in the snapshots folder: the name only from a validated id, and never
        outside the folder."""
        if self.snapshots_dir is None:
            return
        if not FILE_NAME.match(event_id):
            raise Skipped("snapshot:bad_name", f"snapshot of {topic} not saved: unusable event id")
        path = self.snapshots_dir / f"{event_id}.jpg"
        if path.resolve().parent != self.snapshots_dir.resolve():
            raise Skipped("snapshot:bad_name", f"snapshot of {topic} not saved: unusable event id")
        try:
            path.write_bytes(base64.b64decode(jpeg_b64, validate=True))
        except (ValueError, OSError) as e:
            raise Skipped("snapshot:not_saved", f"snapshot of {topic} not saved: {e}") from None

    def say(self, parts: list[str], line: str, message: BaseModel | dict[str, str]) -> None:
        """Show one message: its line of text, or with `--json` one JSON object (the same for every kind,
        so a script reads one format: what came, from which box, and the message)."""
        if self.as_json:
            body = message.model_dump(mode="json", by_alias=True) if isinstance(message, BaseModel) else message
            line = json.dumps({"type": parts[-1], "site": parts[1], "box_id": parts[2], "message": body},
                              ensure_ascii=False, separators=(",", ":"))  # fmt: skip
        print(printable(line), file=self.out, flush=True)


def watch(
    broker: BrokerConfig,
    out: TextIO = sys.stdout,
    as_json: bool = False,
    count: int | None = None,
    timeout: float | None = None,
    snapshots_dir: Path | None = None,
    receipts: bool = True,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> int:
    """Print alerts, panics, alert states, device notices and availability changes as they arrive (with
    `as_json`, one JSON object per line, every kind on `out`); returns the number of
    distinct alerts seen. Stops after `count` distinct alerts or `timeout` seconds when given.
    A malformed payload is reported on stderr (each kind at most once a minute) and skipped;
    nothing one message holds stops the watch."""
    prefix = broker.topic_prefix
    leaves = (topics.ALERT, topics.AVAILABILITY, topics.ALERT_STATE, topics.PANIC, topics.DEVICE)
    client, inbox = connect(broker, [topics.centre_topic(prefix, leaf) for leaf in leaves])
    if snapshots_dir:
        snapshots_dir.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    watcher = _Watcher(client, out, as_json, receipts, snapshots_dir, max_message_bytes)
    warnings = Refusals(say=lambda line: print(f"warning: {printable(line)}", file=sys.stderr, flush=True))
    try:
        while count is None or len(watcher.seen) < count:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                message = inbox.get(timeout=min(left, 1.0) if left is not None else 1.0)
            except queue.Empty:
                continue
            try:
                watcher.show(message)
            except Skipped as e:
                warnings.note(e.kind, str(e))
            except Exception as e:  # a bug must not end the operator's watch: say so, and carry on
                warnings.note("error", f"could not show a message on {message.topic}: {e!r}")
    finally:
        time.sleep(0.2)  # let the last receipts leave
        disconnect(client)
    return len(watcher.seen)
