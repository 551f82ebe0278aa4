"""Outbox benchmarks (issue 4): durable-write cost per alert, drain throughput to a real mosquitto
at QoS 1 on loopback (with and without centre receipts), and recovery time for 1,000 alerts queued
while the broker was down.

    .venv/bin/python benchmarks/outbox_bench.py [--alerts 5000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.box import mqtt_link  # noqa: E402
from edge.comms.delivery import Delivery  # noqa: E402
from edge.comms.outbox import Outbox, OutgoingMessage, Priority  # noqa: E402
from edge.config import BoxConfig, GateboxConfig, LinkConfig  # noqa: E402
from edge.protocol.mqtt import BrokerConfig  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.mqtt import Collector  # noqa: E402

PAYLOAD_BYTES = 6000  # a typical alert with its inline face snapshot


def alert(i: int, needs_receipt: bool) -> OutgoingMessage:
    event_id = uuid.uuid4().hex
    body = json.dumps({"event_id": event_id, "n": i, "pad": "x" * PAYLOAD_BYTES})
    return OutgoingMessage(event_id, "alert", Priority.ALERT, "gatebox/bench/b1/alert", body.encode(), needs_receipt)


def fill(outbox: Outbox, count: int, needs_receipt: bool) -> list[float]:
    costs = []
    for i in range(count):
        message = alert(i, needs_receipt)
        started = time.perf_counter()
        outbox.put(message)
        costs.append(time.perf_counter() - started)
    return costs


def drain(port: int, outbox: Outbox, count: int, receipts: bool) -> float:
    """Seconds from the link starting to an empty outbox."""
    centre = Collector(port, "gatebox/bench/b1/alert", receipts=receipts)
    config = GateboxConfig(broker=BrokerConfig(port=port, reconnect_max_s=1), box=BoxConfig(site="bench", box_id="b1"),
                           link=LinkConfig(max_inflight=1000))  # fmt: skip
    link = mqtt_link(config)
    delivery = Delivery(config, outbox, link)
    started = time.monotonic()
    delivery.start()
    link.start()
    while outbox.stats().depth:
        time.sleep(0.005)
    elapsed = time.monotonic() - started
    delivery.close()
    link.close()
    centre.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto").start()
        try:
            outbox = Outbox(work / "puback.sqlite3", 10**10)
            put_costs = fill(outbox, args.alerts, needs_receipt=False)
            puback_s = drain(broker.port, outbox, args.alerts, receipts=False)
            outbox = Outbox(work / "receipt.sqlite3", 10**10)
            fill(outbox, args.alerts, needs_receipt=True)
            receipt_s = drain(broker.port, outbox, args.alerts, receipts=True)

            # Recovery: 1,000 alerts queued while the broker is down, then it comes back.
            broker.stop()
            outbox = Outbox(work / "recovery.sqlite3", 10**10)
            fill(outbox, 1000, needs_receipt=True)
            broker.start()
            recovery_s = drain(broker.port, outbox, 1000, receipts=True)
        finally:
            broker.stop()
    p95 = sorted(put_costs)[int(0.95 * len(put_costs))]
    print(
        f"durable put (SQLite WAL, synchronous=FULL, {PAYLOAD_BYTES} B payload): mean "
        f"{1e3 * statistics.mean(put_costs):.2f} ms, p95 {1e3 * p95:.2f} ms per alert ({args.alerts} alerts)"
    )
    print(f"drain, leave on PUBACK:        {args.alerts / puback_s:8.0f} alerts/s ({puback_s:.2f} s for {args.alerts})")
    print(
        f"drain, leave on centre receipt: {args.alerts / receipt_s:8.0f} alerts/s ({receipt_s:.2f} s for {args.alerts})"
    )
    print(
        f"recovery: 1000 alerts queued while the broker was down, delivered and confirmed {recovery_s:.2f} s "
        "after the box's link started against the restarted broker"
    )


if __name__ == "__main__":
    main()
