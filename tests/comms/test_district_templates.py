"""The district templates (config/mosquitto/district.conf, acl-district) as the README says to fill
them in: each setting holding SITE once per site, comments as they are, the bridge's topics in the
directions the issue asks for (what boxes send up; commands, receipts and lists down)."""

from __future__ import annotations

from tests.support.bridge import ACL_DISTRICT_TEMPLATE, DISTRICT_TEMPLATE, fill


def settings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_the_district_s_bridge_sends_its_sites_up_and_takes_their_commands_receipts_and_the_lists_down() -> None:
    rendered = fill(DISTRICT_TEMPLATE.read_text(), "district-a", ["site-1", "site-2"])
    topics = [line for line in settings(rendered) if line.startswith("topic ")]
    assert topics == [
        "topic gatebox/site-1/# out 1", "topic gatebox/site-2/# out 1",
        "topic gatebox/site-1/+/cmd in 1", "topic gatebox/site-2/+/cmd in 1",
        "topic gatebox/site-1/+/receipt in 1", "topic gatebox/site-2/+/receipt in 1",
        "topic gatebox/lists/# in 1",
    ]  # fmt: skip
    lines = settings(rendered)
    for setting in ("connection district-a", "remote_clientid district-a", "cleansession false", "persistence true",
                    "bridge_insecure false", "notifications_local_only true"):  # fmt: skip
        assert setting in lines
    assert "SITE" not in "\n".join(lines) and "DISTRICT" not in rendered
    comments = [line for line in rendered.splitlines() if line.startswith("#")]
    assert comments == [line for line in DISTRICT_TEMPLATE.read_text().replace("DISTRICT", "district-a").splitlines()
                        if line.startswith("#")]  # fmt: skip


def test_a_district_s_acl_block_writes_only_box_to_centre_kinds_of_its_own_sites() -> None:
    lines = settings(fill(ACL_DISTRICT_TEMPLATE.read_text(), "district-a", ["site-1"]))
    assert lines[0] == "user district-a"
    writes = sorted(line.split("/")[-1] for line in lines if line.startswith("topic write "))
    assert writes == sorted(["availability", "alert", "alert_state", "heartbeat", "list_ack", "panic", "device",
                             "passage", "events"])  # fmt: skip
    assert all(line.startswith("topic write gatebox/site-1/+/") for line in lines if "write" in line)
    reads = [line for line in lines if line.startswith("topic read ")]
    assert reads == ["topic read gatebox/site-1/+/cmd", "topic read gatebox/site-1/+/receipt",
                     "topic read gatebox/lists/#"]  # fmt: skip
    assert len(lines) == 1 + len(writes) + len(reads)  # nothing else: no readwrite, no pattern
