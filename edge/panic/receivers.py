"""Receiver adapters: each turns one kind of button hardware into `ButtonSignal`s for the service.

- GPIO (gpiozero): a button wired to an input pin; debounced, active-low with the pull-up.
- Serial (pyserial): a radio receiver writing one line per signal: `DEVICE_ID,EVENT[,BATTERY]`,
  EVENT one of PRESS, LONG, CANCEL, HB (heartbeat); BATTERY in percent. Example: `btn-0042,PRESS,87`.
- HTTP: `POST /panic` with `Authorization: Bearer <token>`, a Content-Length and JSON
  `{"device_id": "...", "event": "press"|"long_press"|"cancel"|"heartbeat", "battery": 87}`;
  answers 202 accepted, 400 malformed, 401 bad token, 404 unknown device, 408 too slow,
  411 no Content-Length, 413 too large. One request per connection; connections and idle time bounded.
- MQTT: a local broker topic `<topic_prefix>/<DEVICE_ID>` with the same JSON (without device_id),
  for Zigbee or 433 MHz bridges that already publish there; login and TLS as for the centre's broker.

Serial, HTTP and MQTT all take either set of event words (`press|long_press|cancel|heartbeat` or
`PRESS|LONG|CANCEL|HB`), in any case (`edge.panic.models.SIGNAL_SPELLINGS`).

HTTP and MQTT signals are parsed with bounds (`SignalMessage`: size, depth, types, ranges) before
anything reads them; whatever is refused is counted and never ends a receiver.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from edge.config import (
    GpioReceiverConfig,
    HttpReceiverConfig,
    MqttReceiverConfig,
    PanicConfig,
    ReconnectConfig,
    SerialReceiverConfig,
)
from edge.panic.models import (
    MAX_SIGNAL_BYTES,
    MAX_SIGNAL_DEPTH,
    SIGNAL_SPELLINGS,
    ButtonSignal,
    SignalKind,
    SignalMessage,
)
from edge.panic.supervision import Backoff, ReceiverStatus, ReportingReceiver, Supervised, receiver_name
from edge.protocol.bounded_json import JsonRefused, parse_bounded_json
from edge.protocol.errors import ConfigError
from edge.protocol.mqtt import BrokerConfig, disconnect, make_client

log = logging.getLogger(__name__)

MAX_LINE = 256
CONTENT_LENGTH = re.compile(r"[0-9]{1,10}")  # int() would take "-1", "+5", " 5" and "1_000"


class Sink(Protocol):
    def submit(self, signal: ButtonSignal) -> bool: ...

    def reject(self, reason: str, detail: str) -> None: ...


def _battery(value: str | None) -> int | None:
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


def parse_serial_line(line: bytes) -> tuple[str, SignalKind, int | None]:
    text = line.decode("ascii").strip()
    parts = text.split(",")
    event = parts[1].strip().lower() if len(parts) in (2, 3) else ""
    if not parts[0] or event not in SIGNAL_SPELLINGS:  # PRESS|LONG|CANCEL|HB or the HTTP words, any case
        raise ValueError(f"expected DEVICE_ID,EVENT[,BATTERY], got {text!r}")
    return parts[0], SIGNAL_SPELLINGS[event], _battery(parts[2] if len(parts) == 3 else None)


class SerialReceiver:
    """A radio receiver on a serial port. A port that is missing at start or goes away (the USB
    receiver unplugged) is reopened with backoff, as cameras are; `status` says which."""

    def __init__(self, config: SerialReceiverConfig, sink: Sink, reconnect: ReconnectConfig | None = None) -> None:
        self._config = config
        self._sink = sink
        self._name = config.port
        self.status = ReceiverStatus(receiver_name("serial", config.port))
        self._backoff = Backoff(reconnect or ReconnectConfig())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"panic-serial-{config.port}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import serial

        while not self._stop.is_set():
            try:
                port = serial.serial_for_url(self._config.port, baudrate=self._config.baudrate, timeout=0.5)
            except (serial.SerialException, ValueError, OSError) as e:
                self.status.down(f"cannot open {self._config.port}: {e}", self._backoff.delay_s)
                self._backoff.wait(self._stop)
                continue
            self.status.up()
            self._backoff.reset()
            try:
                self._read(port)
            except (serial.SerialException, OSError) as e:  # unplugged, or the device hung up
                self.status.down(f"{self._config.port} failed: {e}", self._backoff.delay_s)
                self._backoff.wait(self._stop)
            finally:
                port.close()

    def _read(self, port: Any) -> None:
        """Lines from `port` to the sink until stopped; raises what the port raises when it fails."""
        while not self._stop.is_set():
            line = port.readline(MAX_LINE + 1)
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


def parse_signal(body: bytes, max_bytes: int, device_id: str | None = None) -> SignalMessage:
    """A signal from an IP button or a radio bridge, parsed within bounds (size, depth, the model's
    types and ranges); `device_id` (the MQTT topic's) takes the place of the body's.
    JsonRefused or ValidationError (both ValueErrors) for anything else."""
    message = SignalMessage.model_validate(parse_bounded_json(body, max_bytes, MAX_SIGNAL_DEPTH))
    if device_id is not None:
        message = SignalMessage(device_id=device_id, event=message.event, battery=message.battery)
    if message.device_id is None:
        raise ValueError("device_id is required")
    return message


def _refusal(error: ValueError) -> str:
    """The counter a refused signal goes under (the sender's mistake: counted, no traceback)."""
    return error.reason if isinstance(error, JsonRefused) else "malformed"


def _detail(error: ValueError) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        return f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}"
    return str(error)


class _Connections:
    """The HTTP receiver's connection slots: at most `limit` at once, each served by one thread.

    When all are taken, the connection that has waited longest without completing a request is
    closed to make room (a button sends its whole request at once; a socket left idle is not a
    button), so idle or dribbling sockets can neither grow the thread count nor lock a press out."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._changed = threading.Condition()
        self._waiting: dict[socket.socket, float] = {}  # connection -> monotonic time it was accepted
        self._working: set[socket.socket] = set()  # request complete, being answered: never evicted
        self._evicted: set[socket.socket] = set()
        self.evictions = 0

    def claim(self, connection: socket.socket, timeout_s: float) -> bool:
        """Room for `connection`, evicting the longest-idle one if needed; False if every slot is
        busy answering a request for `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while len(self._waiting) + len(self._working) >= self._limit:
                idle = [c for c in self._waiting if c not in self._evicted]
                if idle and not self._evicted:  # one at a time: wait for it to go before the next
                    victim = min(idle, key=self._waiting.__getitem__)
                    self._evicted.add(victim)
                    self.evictions += 1
                    with contextlib.suppress(OSError):  # its thread reads EOF, ends, and releases the slot
                        victim.shutdown(socket.SHUT_RDWR)
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            self._waiting[connection] = time.monotonic()
            return True

    def working(self, connection: socket.socket) -> None:
        with self._changed:
            if self._waiting.pop(connection, None) is not None:
                self._working.add(connection)

    def release(self, connection: socket.socket) -> None:
        with self._changed:
            self._waiting.pop(connection, None)
            self._working.discard(connection)
            self._evicted.discard(connection)
            self._changed.notify_all()


class _PanicHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of connects waits in the kernel's queue, not in threads

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], connections: _Connections,
                 sink: Sink) -> None:  # fmt: skip
        self.connections = connections
        self.sink = sink
        super().__init__(address, handler)

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        evicted = self.connections.evictions
        if not self.connections.claim(request, timeout_s=2.0):
            self.sink.reject("busy", f"http from {client_address[0]}: every connection is answering a request")
            self.shutdown_request(request)
            return
        if self.connections.evictions > evicted:  # someone holds connections open without sending
            self.sink.reject(
                "idle_closed", f"http: all connections taken; the longest idle closed for {client_address[0]}"
            )
        try:
            super().process_request(request, client_address)  # starts the connection's thread
        except BaseException:
            self.connections.release(request)
            raise

    def process_request_thread(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release(request)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        # socketserver would print a traceback to stderr and count nothing.
        error = sys.exc_info()[1]
        log.debug("panic http: error serving %s", client_address[0], exc_info=True)
        self.sink.reject("error", f"http from {client_address[0]}: {error!r}")


def read_token(config: HttpReceiverConfig) -> str:
    """The IP buttons' bearer token; ConfigError when it cannot be read or is too short to guess."""
    try:
        token = config.token_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise ConfigError(f"panic.http.token_file: cannot read {config.token_file}: {reason}") from None
    if len(token) < 16:
        raise ConfigError("panic.http.token_file: the token must be at least 16 characters")
    return token


class HttpReceiver:
    def __init__(self, config: HttpReceiverConfig, sink: Sink) -> None:
        expected = f"Bearer {read_token(config)}".encode()
        limit = config.max_body_bytes
        idle_timeout_s = config.idle_timeout_s

        class Handler(BaseHTTPRequestHandler):
            timeout = idle_timeout_s  # every read of the request: a silent connection is closed
            server: _PanicHttpServer

            def do_POST(self) -> None:
                self.close_connection = True  # one request per connection: nothing idles between presses
                if self.path != "/panic":
                    return self._answer(404, "unknown path")
                given = (self.headers.get("Authorization") or "").encode()
                if not hmac.compare_digest(given, expected):
                    sink.reject("bad_token", f"http from {self.client_address[0]}")
                    return self._answer(401, "bad token")
                body = self._read_body()
                if body is None:
                    return None
                self.server.connections.working(self.connection)
                try:
                    message = parse_signal(body, limit)
                except ValueError as e:
                    sink.reject(_refusal(e), f"http: {_detail(e)}")
                    return self._answer(400, _detail(e))
                signal = ButtonSignal(message.device_id or "", message.event, time.time(), "http", message.battery)
                try:
                    accepted = sink.submit(signal)
                except Exception:  # not queued: the button must hear so and press again
                    log.exception("panic http: a press of %s could not be queued", message.device_id)
                    return self._answer(500, "not queued; try again")
                if not accepted:
                    return self._answer(404, "unknown device")
                return self._answer(202, "accepted")

            def _read_body(self) -> bytes | None:
                """The request body, read within the size limit and `idle_timeout_s` in all; None after
                answering a malformed request (400, 408, 411 or 413)."""
                lengths = self.headers.get_all("Content-Length") or []
                if self.headers.get("Transfer-Encoding") or not lengths:
                    sink.reject("malformed", "http: no Content-Length")
                    self._answer(411, "Content-Length required")
                    return None
                if len(lengths) > 1 or not CONTENT_LENGTH.fullmatch(lengths[0]):
                    sink.reject("malformed", f"http: Content-Length {', '.join(lengths)[:40]!r}")
                    self._answer(400, "bad Content-Length")
                    return None
                length = int(lengths[0])
                if length > limit:
                    sink.reject("oversized", f"http body of {length} bytes")
                    self._answer(413, "too large")
                    return None
                body = bytearray()
                deadline = time.monotonic() + idle_timeout_s
                try:
                    while len(body) < length:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise TimeoutError
                        self.connection.settimeout(left)
                        chunk = self.rfile.read1(length - len(body))
                        if not chunk:
                            break
                        body += chunk
                except TimeoutError:
                    sink.reject("timeout", f"http from {self.client_address[0]}: body not in after {idle_timeout_s} s")
                    self._answer(408, "body too slow")
                    return None
                finally:
                    self.connection.settimeout(idle_timeout_s)  # for the answer
                if len(body) < length:
                    sink.reject("malformed", f"http: body of {len(body)} bytes, Content-Length {length}")
                    self._answer(400, "body shorter than Content-Length")
                    return None
                return bytes(body)

            def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
                # Requests the standard library refuses before do_POST: bad request line, headers, method.
                sink.reject("malformed", f"http from {self.client_address[0]}: {code} {message or ''}")
                self.close_connection = True
                self.request_version = "HTTP/1.0"  # a status line even for junk parsed as HTTP/0.9
                with contextlib.suppress(OSError):
                    super().send_error(code, message, explain)

            def _answer(self, status: int, text: str) -> None:
                self.close_connection = True
                body = json.dumps({"status": text}).encode()
                with contextlib.suppress(OSError):  # the sender may be gone already
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("panic http: " + format, *args)

        try:
            self._server = _PanicHttpServer((config.host, config.port), Handler, _Connections(config.max_connections),
                                            sink)  # fmt: skip
        except OSError as e:
            raise ConfigError(f"panic.http: cannot listen on {config.host}:{config.port}: {e.strerror}") from None
        self.port = self._server.server_address[1]
        # `close` waits for the serving loop to look up: every 0.1 s instead of socketserver's 0.5 s.
        threading.Thread(target=self._server.serve_forever, args=(0.1,), name="panic-http", daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _never_raises(callback: Callable[..., None], sink: Sink, what: str) -> Callable[..., None]:
    """`callback`, made safe for paho: paho re-raises a callback's exception in its network thread,
    which ends that thread, and no later signal would ever be relayed."""

    def guarded(*args: object) -> None:
        try:
            callback(*args)
        except Exception as e:
            with contextlib.suppress(Exception):
                log.exception("panic mqtt: %s failed", what)
                sink.reject("error", f"mqtt {what}: {e!r}")

    return guarded


def mqtt_receiver_broker(config: MqttReceiverConfig, reconnect: ReconnectConfig | None = None) -> BrokerConfig:
    """The bridge's broker as the MQTT receiver (and `doctor`) log in to it."""
    return BrokerConfig(host=config.host, port=config.port, username=config.username,
                        password_file=config.password_file, tls=config.tls,
                        reconnect_max_s=max(1.0, (reconnect or ReconnectConfig()).max_backoff_s))  # fmt: skip


class MqttReceiver:
    """Signals from a bridge's broker. paho reconnects by itself (doubling waits, up to
    `panic.reconnect.max_backoff_s`) when that broker is down or goes away; `status` says which."""

    def __init__(self, config: MqttReceiverConfig, sink: Sink, reconnect: ReconnectConfig | None = None) -> None:
        prefix = config.topic_prefix.rstrip("/") + "/"
        try:
            self._client = make_client(mqtt_receiver_broker(config, reconnect), client_id="")
        except ConfigError as e:
            raise ConfigError(f"panic.mqtt: {e}") from None
        self.status = status = ReceiverStatus(receiver_name("mqtt", f"{config.host}:{config.port}"))
        refused = [False]  # log a refused login once, not on every reconnect attempt

        def on_connect(
            client: mqtt.Client, userdata: object, flags: object, reason: ReasonCode, properties: Properties | None
        ) -> None:
            if reason.is_failure:
                (log.debug if refused[0] else log.error)(
                    "panic mqtt: broker %s:%d refused the connection: %s", config.host, config.port, reason
                )
                refused[0] = True
                status.down(f"the broker refused the connection: {reason}")
                return
            refused[0] = False
            log.info("panic mqtt: listening on %s:%d %s+", config.host, config.port, prefix)
            client.subscribe(prefix + "+", qos=1)
            status.up()

        def on_disconnect(
            client: mqtt.Client, userdata: object, flags: object, reason: ReasonCode, properties: Properties | None
        ) -> None:
            if status.connected:
                status.down(f"lost the broker {config.host}:{config.port}: {reason}")

        def on_connect_fail(client: mqtt.Client, userdata: object) -> None:
            status.down(f"cannot reach the broker {config.host}:{config.port}")

        def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
            try:
                # paho types the payload bytes | bytearray; bytes() of a bytes object is that object.
                signal = parse_signal(bytes(message.payload), MAX_SIGNAL_BYTES, message.topic[len(prefix) :])
            except ValueError as e:
                return sink.reject(_refusal(e), f"mqtt {message.topic[:100]}: {_detail(e)}")
            sink.submit(ButtonSignal(signal.device_id or "", signal.event, time.time(), "mqtt", signal.battery))
            return None

        self._client.on_connect = _never_raises(on_connect, sink, "connect")
        self._client.on_disconnect = _never_raises(on_disconnect, sink, "disconnect")
        self._client.on_connect_fail = _never_raises(on_connect_fail, sink, "connect_fail")
        self._client.on_message = _never_raises(on_message, sink, "message")
        self._client.connect_async(config.host, config.port)
        self._client.loop_start()

    def close(self) -> None:
        disconnect(self._client)


def start_receivers(config: PanicConfig, sink: Sink) -> list[ReportingReceiver]:
    """Every receiver the config names, started. A receiver's configuration error (the HTTP token)
    stops the box here; a receiver that cannot start yet (no radio, port taken, broker down) is
    retried in the background (`panic.reconnect`) and stops nothing."""
    if config.http:
        read_token(config.http)  # a bad token is the installer's to fix: refuse to start, as `doctor` fails
    reconnect = config.reconnect
    receivers: list[ReportingReceiver] = [
        Supervised(receiver_name("gpio", str(c.pin)), partial(GpioReceiver, c, sink), reconnect) for c in config.gpio
    ]
    receivers += [SerialReceiver(c, sink, reconnect) for c in config.serial]
    if config.http:
        where = receiver_name("http", f"{config.http.host}:{config.http.port}")
        receivers.append(Supervised(where, partial(HttpReceiver, config.http, sink), reconnect))
    if config.mqtt:
        receivers.append(MqttReceiver(config.mqtt, sink, reconnect))
    return receivers
