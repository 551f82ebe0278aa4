"""Panic receivers stay up on their own, as cameras do.

A receiver that cannot start (the radio is unplugged, the HTTP port is taken, the bridge's broker is
down) or fails later is retried with doubling backoff (`panic.reconnect`), says so once in the log,
and reports its state (`ReceiverStatus`, in the heartbeat's `panic_receivers`). Its failure is its
own: the other receivers, the cameras and face alerting go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from edge.config import ReconnectConfig
from edge.protocol.messages import ReceiverReport

log = logging.getLogger(__name__)

MAX_NAME = 64  # as the heartbeat's keys (`Name`)


class Receiver(Protocol):
    def close(self) -> None: ...


class ReportingReceiver(Protocol):
    """What `start_receivers` hands the box: a receiver that reports its own state."""

    @property
    def status(self) -> ReceiverStatus: ...

    def close(self) -> None: ...


def receiver_name(kind: str, where: str) -> str:
    """`serial:/dev/ttyUSB0`: the kind and where it listens; a long device path keeps its distinctive end."""
    name = f"{kind}:{where}"
    return name if len(name) <= MAX_NAME else f"{kind}:…{where[-(MAX_NAME - len(kind) - 2) :]}"


class ReceiverStatus:
    """One receiver's state, written by its own thread, read by the heartbeat."""

    def __init__(self, name: str, clock: Callable[[], float] = time.time) -> None:
        """`clock`: the wall clock `down_since` is read from."""
        self.name = name
        self._clock = clock
        self.connected = False
        self.connects = 0
        self.error: str | None = None
        self.down_since: float | None = None  # the wall clock when it last went down (None: up, or never tried)
        self._lock = threading.Lock()

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)

    def up(self) -> None:
        with self._lock:
            was_down = not self.connected
            self.connected, self.error, self.down_since = True, None, None
            if was_down:
                self.connects += 1
        if was_down:
            log.info("panic receiver %s: listening (connection %d)", self.name, self.connects)

    def down(self, error: str, retry_in_s: float | None = None) -> None:
        """Record the failure; logged as a warning when the receiver goes down, at debug while it stays down."""
        with self._lock:
            was_up_or_new = self.connected or self.error is None
            self.connected, self.error = False, error[:200]
            if was_up_or_new:  # still down on a retry: it went down when it first failed
                self.down_since = self._clock()
        retry = f"; retrying in {retry_in_s:.1f} s" if retry_in_s is not None else "; retrying"
        (log.warning if was_up_or_new else log.debug)("panic receiver %s: down: %s%s", self.name, error, retry)

    def report(self) -> ReceiverReport:
        with self._lock:
            return ReceiverReport(connected=self.connected, reconnects=self.reconnects, error=self.error,
                                  down_since=self.down_since)  # fmt: skip


class Backoff:
    """Doubling waits between attempts, from `initial_backoff_s` up to `max_backoff_s`; reset on success."""

    def __init__(self, config: ReconnectConfig) -> None:
        self._config = config
        self.delay_s = config.initial_backoff_s

    def reset(self) -> None:
        self.delay_s = self._config.initial_backoff_s

    def wait(self, stop: threading.Event) -> bool:
        """Wait the current delay (cut short by `stop`) and double it; False once `stop` is set."""
        stopped = stop.wait(self.delay_s)
        self.delay_s = min(self.delay_s * 2, self._config.max_backoff_s)
        return not stopped


class Supervised:
    """A receiver that, once started, stays up by itself (an HTTP server bound to its port, a GPIO
    input claimed) but whose start can fail: started at once if it can, else again in the background
    with backoff until it does. Its attributes (`port`) are the started receiver's."""

    def __init__(self, name: str, start: Callable[[], Receiver], reconnect: ReconnectConfig) -> None:
        self.status = ReceiverStatus(name)
        self._start = start
        self._backoff = Backoff(reconnect)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.receiver: Receiver | None = None
        self._thread: threading.Thread | None = None
        if not self._attempt():
            self._thread = threading.Thread(target=self._retry, name=f"panic-start-{name}", daemon=True)
            self._thread.start()

    def _attempt(self) -> bool:
        try:
            receiver = self._start()
        except Exception as e:  # whatever the hardware or the OS says: reported, retried, never fatal
            self.status.down(str(e), self._backoff.delay_s)
            return False
        with self._lock:
            if self._stop.is_set():  # closed while it was starting
                receiver.close()
                return True
            self.receiver = receiver
        self.status.up()
        return True

    def _retry(self) -> None:
        while self._backoff.wait(self._stop):
            if self._attempt():
                return

    def __getattr__(self, name: str) -> Any:
        receiver = self.__dict__.get("receiver")
        if receiver is None:
            raise AttributeError(f"{name}: panic receiver {self.status.name} has not started")
        return getattr(receiver, name)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            receiver, self.receiver = self.receiver, None
        if receiver is not None:
            receiver.close()
        self.status.connected = False
