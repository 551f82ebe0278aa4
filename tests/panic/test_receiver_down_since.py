"""A panic receiver's report says since when it is down (the console shows `DOWN since …`): the time of
its first failure, kept while it stays down and retried, cleared once it listens again."""

from __future__ import annotations

from edge.panic.supervision import ReceiverStatus


def test_down_since_is_the_first_failure_kept_through_retries_and_cleared_when_up() -> None:
    now = [1000.0]
    status = ReceiverStatus("serial:/dev/ttyUSB0", clock=lambda: now[0])
    assert status.report().down_since is None  # starting: not yet down
    status.down("[Errno 2] No such file or directory")
    now[0] = 1030.0
    status.down("[Errno 2] No such file or directory", retry_in_s=2.0)  # the retry fails too
    report = status.report()
    assert (report.connected, report.down_since, report.error) == (False, 1000.0, "[Errno 2] No such file or directory")
    status.up()
    assert status.report().down_since is None and status.report().connected
    now[0] = 1100.0
    status.down("unplugged")
    assert status.report().down_since == 1100.0
