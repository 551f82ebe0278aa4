"""Receiver adapters: each turns one kind of button hardware into `ButtonSignal`s for the service.

- GPIO (gpiozero): a button wired to an input pin; debounced, active-low with the pull-up.
- Serial (pyserial): a radio receiver writing one line per signal: `DEVICE_ID,EVENT[,BATTERY]`,
  EVENT one of PRESS, LONG, CANCEL, HB (heartbeat); BATTERY in percent. Example: `btn-0042,PRESS,87`.
- HTTP: `POST /panic` with `Authorization: Bearer <token>` and JSON
  `{"device_id": "...", "event": "press"|"long_press"|"cancel"|"heartbeat", "battery": 87}`;
  answers 202 accepted, 400 malformed, 401 bad token, 404 unknown device, 413 too large.
- MQTT: a local broker topic `<topic_prefix>/<DEVICE_ID>` with the same JSON (without device_id),
  for Zigbee or 433 MHz bridges that already publish there.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import GpioReceiverConfig, HttpReceiverConfig, MqttReceiverConfig, SerialReceiverConfig
from edge.errors import ConfigError
from edge.panic.models import ButtonSignal

log = logging.getLogger(__name__)

SERIAL_EVENTS = {"PRESS": "press", "LONG": "long_press", "CANCEL": "cancel", "HB": "heartbeat"}
JSON_EVENTS = {"press", "long_press", "cancel", "heartbeat"}
MAX_LINE = 256


class Sink(Protocol):
    def submit(self, signal: ButtonSignal) -> bool: ...

    def reject(self, reason: str, detail: str) -> None: ...


def _battery(value: object) -> int | None:
    if value is None or value == "":
        return None
    battery = int(value)  # ValueError for junk
    if not 0 <= battery <= 100:
        raise ValueError(f"battery {battery} outside 0-100")
    return battery


class GpioReceiver:
    def __init__(self, config: GpioReceiverConfig, sink: Sink) -> None:
        from gpiozero import Button

        self._button = Button(config.pin, pull_up=config.pull_up, bounce_time=config.bounce_s or None,
                              hold_time=config.hold_s)  # fmt: skip
        device = config.device_id
        last_edge = [-1e9]

        def pressed() -> None:
            # Software debounce as well: pin drivers differ in how (and whether) they apply bounce_time.
            now = time.monotonic()
            bouncing = now - last_edge[0] < config.bounce_s
            last_edge[0] = now
            if not bouncing:
                sink.submit(ButtonSignal(device, "press", time.time(), "gpio"))

        self._button.when_pressed = pressed
        self._button.when_released = lambda: last_edge.__setitem__(0, time.monotonic())
        self._button.when_held = lambda: sink.submit(ButtonSignal(device, "long_press", time.time(), "gpio"))

    def close(self) -> None:
        self._button.close()


def parse_serial_line(line: bytes) -> tuple[str, str, int | None]:
    text = line.decode("ascii").strip()
    parts = text.split(",")
    if len(parts) not in (2, 3) or not parts[0] or parts[1].upper() not in SERIAL_EVENTS:
        raise ValueError(f"expected DEVICE_ID,EVENT[,BATTERY], got {text!r}")
    return parts[0], SERIAL_EVENTS[parts[1].upper()], _battery(parts[2] if len(parts) == 3 else None)


class SerialReceiver:
    def __init__(self, config: SerialReceiverConfig, sink: Sink) -> None:
        import serial

        try:
            self._port = serial.serial_for_url(config.port, baudrate=config.baudrate, timeout=0.5)
        except (serial.SerialException, ValueError) as e:
            raise ConfigError(f"panic.serial: cannot open {config.port}: {e}") from None
        self._sink = sink
        self._name = config.port
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"panic-serial-{config.port}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import serial

        while not self._stop.is_set():
            try:
                line = self._port.readline(MAX_LINE + 1)
            except serial.SerialException as e:
                log.error("panic serial %s: %s; retrying", self._name, e)
                self._stop.wait(1.0)
                continue
            if not line:
                continue
            if len(line) > MAX_LINE or not line.endswith(b"\n"):
                self._sink.reject("malformed", f"serial {self._name}: over-long or unterminated line")
                continue
            try:
                device, event, battery = parse_serial_line(line)
            except (ValueError, UnicodeDecodeError) as e:
                self._sink.reject("malformed", f"serial {self._name}: {e}")
                continue
            self._sink.submit(ButtonSignal(device, event, time.time(), "serial", battery))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._port.close()


def parse_json_signal(body: bytes, device_id: str | None = None) -> tuple[str, str, int | None]:
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    unknown = set(data) - {"device_id", "event", "battery"}
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    device = device_id or data.get("device_id")
    event = data.get("event", "press")
    if not isinstance(device, str) or not device or event not in JSON_EVENTS:
        raise ValueError("device_id (text) and event (press, long_press, cancel, heartbeat) are required")
    return device, event, _battery(data.get("battery"))


class HttpReceiver:
    def __init__(self, config: HttpReceiverConfig, sink: Sink) -> None:
        try:
            token = config.token_file.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError(f"panic.http.token_file: cannot read {config.token_file}: {e.strerror}") from None
        if len(token) < 16:
            raise ConfigError("panic.http.token_file: the token must be at least 16 characters")
        expected = f"Bearer {token}".encode()
        limit = config.max_body_bytes

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != "/panic":
                    return self._answer(404, "unknown path")
                given = (self.headers.get("Authorization") or "").encode()
                if not hmac.compare_digest(given, expected):
                    sink.reject("bad_token", f"http from {self.client_address[0]}")
                    return self._answer(401, "bad token")
                length = int(self.headers.get("Content-Length") or 0)
                if length > limit:
                    sink.reject("oversized", f"http body of {length} bytes")
                    self.close_connection = True
                    return self._answer(413, "too large")
                try:
                    device, event, battery = parse_json_signal(self.rfile.read(length))
                except (ValueError, UnicodeDecodeError) as e:
                    sink.reject("malformed", f"http: {e}")
                    return self._answer(400, str(e))
                if not sink.submit(ButtonSignal(device, event, time.time(), "http", battery)):
                    return self._answer(404, "unknown device")
                return self._answer(202, "accepted")

            def _answer(self, status: int, text: str) -> None:
                body = json.dumps({"status": text}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("panic http: " + format, *args)

        try:
            self._server = ThreadingHTTPServer((config.host, config.port), Handler)
        except OSError as e:
            raise ConfigError(f"panic.http: cannot listen on {config.host}:{config.port}: {e.strerror}") from None
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="panic-http", daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class MqttReceiver:
    def __init__(self, config: MqttReceiverConfig, sink: Sink) -> None:
        prefix = config.topic_prefix.rstrip("/") + "/"
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="")
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe(prefix + "+", qos=1)

        def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
            if len(message.payload) > 4096:
                return sink.reject("oversized", f"mqtt {message.topic}: {len(message.payload)} bytes")
            try:
                device, event, battery = parse_json_signal(message.payload, message.topic[len(prefix) :])
            except (ValueError, UnicodeDecodeError) as e:
                return sink.reject("malformed", f"mqtt {message.topic}: {e}")
            sink.submit(ButtonSignal(device, event, time.time(), "mqtt", battery))
            return None

        self._client.on_message = on_message
        self._client.reconnect_delay_set(1, 10)
        self._client.connect_async(config.host, config.port)
        self._client.loop_start()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def start_receivers(config, sink: Sink) -> list:
    """Every receiver the config names, started; each has `close()`."""
    receivers: list = [GpioReceiver(c, sink) for c in config.gpio]
    receivers += [SerialReceiver(c, sink) for c in config.serial]
    if config.http:
        receivers.append(HttpReceiver(config.http, sink))
    if config.mqtt:
        receivers.append(MqttReceiver(config.mqtt, sink))
    return receivers
