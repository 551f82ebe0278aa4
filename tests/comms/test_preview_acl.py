"""A box's camera preview under the shipped broker setup (config/mosquitto: TLS, a password per box, the
ACL): a box may publish a preview on its own `preview` topic and on no other box's, so a stolen box login
cannot show its picture as another gate's (the console also refuses a body naming another box)."""

from __future__ import annotations

import pytest

from edge.protocol.messages import CameraPreview
from tests.comms.test_security import certificates, client, secure_broker  # noqa: F401  (the fixtures)
from tests.support.broker import Mosquitto
from tests.support.mqtt import Collector
from tests.support.tls import Certificates


def no_camera(box_id: str) -> bytes:
    answer = CameraPreview(site="s1", box_id=box_id, status="no_camera", detail="panic buttons only")
    return answer.model_dump_json(by_alias=True).encode()


@pytest.mark.slow
def test_a_box_can_publish_a_preview_only_on_its_own_topic(
    secure_broker: Mosquitto,  # noqa: F811
    certificates: Certificates,  # noqa: F811
) -> None:
    centre = Collector(
        secure_broker.port, "gatebox/+/+/preview", username="centre", password="centre-pw", ca=str(certificates.ca)
    )
    b2, rc = client(secure_broker.port, "s1/b2", "b2-pw", certificates.ca)
    try:
        assert rc is not None and not rc.is_failure
        b2.publish("gatebox/s1/b1/preview", no_camera("b1"), qos=1).wait_for_publish(5)  # posing as b1
        b2.publish("gatebox/s1/b2/preview", no_camera("b2"), qos=1).wait_for_publish(5)  # its own: the marker
        got = centre.until(lambda m: m.topic == "gatebox/s1/b2/preview", 10, "b2's own preview")
    finally:
        b2.loop_stop()
        centre.close()
    # The broker acknowledges a denied publish too (MQTT 3.1.1), so only the subscriber can tell.
    assert [m.topic for m in got] == ["gatebox/s1/b2/preview"]
