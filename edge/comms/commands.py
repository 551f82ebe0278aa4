"""Signed commands from the centre (`<prefix>/<site>/<box>/cmd`), each handed to the part of the box that owns it.

A command is bounded before it is parsed, verified against the centre's Ed25519 key and validated
(`edge.protocol.messages.Command`) before any handler sees it; whatever fails is refused and counted in
the link's `bad_input` (`commands_disabled` without a key, `bad_signature`, `invalid_command`, or the
bound it broke). Owners register a handler per command (`register("ack_alert", alerts.apply_ack)`,
`register("preview", previews.request)`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal, overload

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from edge.comms.delivery import MAX_INBOUND_DEPTH, first_error
from edge.comms.link import Link, Refused
from edge.config import GateboxConfig
from edge.protocol import topics
from edge.protocol.bounded_json import JsonRefused, check_json_bounds
from edge.protocol.messages import COMMANDS, AckAlert, PreviewRequest
from edge.protocol.signing import BadSignature, open_sealed

log = logging.getLogger(__name__)


class CommandChannel:
    def __init__(self, config: GateboxConfig, centre_key: Ed25519PublicKey | None, link: Link) -> None:
        """`centre_key`: None refuses every command (`commands_disabled`)."""
        self._key = centre_key
        self._max_bytes = config.link.max_inbound_bytes
        self._handlers: dict[str, Callable[[Any], None]] = {}
        link.route(topics.box_topic(config.broker, config.box, topics.COMMAND), self.on_message)

    @overload
    def register(self, command: Literal["ack_alert"], handler: Callable[[AckAlert], None]) -> None: ...

    @overload
    def register(self, command: Literal["preview"], handler: Callable[[PreviewRequest], None]) -> None: ...

    def register(self, command: str, handler: Callable[[Any], None]) -> None:
        """`handler` runs (on the link's dispatch thread) for every valid, signed `command`, given that
        command's own model."""
        self._handlers[command] = handler

    def on_message(self, topic: str, payload: bytes) -> None:
        try:  # before any parser sees it: json recurses once per level and 30,000 levels raise RecursionError
            check_json_bounds(payload, self._max_bytes, MAX_INBOUND_DEPTH)
        except JsonRefused as e:
            raise Refused(e.reason, str(e)) from None
        if self._key is None:
            raise Refused("commands_disabled", "no centre public key configured")
        try:
            body = open_sealed(payload, self._key)
        except BadSignature as e:
            raise Refused("bad_signature", str(e)) from None
        try:
            command = COMMANDS.validate_python(body)
        except ValidationError as e:
            raise Refused("invalid_command", first_error(e)) from None
        log.info("command from the centre: %s %s", command.command,
                 command.event_id if isinstance(command, AckAlert) else command.camera or "every camera")  # fmt: skip
        handler = self._handlers.get(command.command)
        if handler is None:
            log.warning("command %s: nothing on this box handles it", command.command)
            return
        handler(command)
