"""Knowing when a panic receiver's MQTT subscription is in place: nothing announces it, so a probe
device's heartbeat is sent until one gets through. The probe's signals stop at `ProbedSink`: the sink
behind it (the panic service) never sees them, so no counter, panic or device notice changes."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt

from edge.panic.models import ButtonSignal
from edge.panic.receivers import Sink
from tests.support.waiting import wait_for

PROBE_DEVICE = "probe-0"


class ProbedSink:
    """Forwards every signal and refusal to `sink`, except the probe device's, which it only notes."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.heard = threading.Event()

    def submit(self, signal: ButtonSignal) -> bool:
        if signal.device_id == PROBE_DEVICE:
            self.heard.set()
            return True
        return self.sink.submit(signal)

    def reject(self, reason: str, detail: str) -> None:
        self.sink.reject(reason, detail)


def wait_subscribed(probed: ProbedSink, sender: mqtt.Client, prefix: str, timeout: float = 10) -> None:
    """Until a heartbeat `sender` publishes under `prefix` reaches the receiver feeding `probed`."""

    def heard() -> bool:
        if probed.heard.is_set():
            return True
        sender.publish(f"{prefix.rstrip('/')}/{PROBE_DEVICE}", b'{"event":"heartbeat"}', qos=1)
        return False

    wait_for(heard, timeout, "the panic receiver's MQTT subscription", interval=0.2)
