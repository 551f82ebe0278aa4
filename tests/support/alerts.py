"""A valid alert for tests that need one to store, queue or show (not one the pipeline raised)."""

from __future__ import annotations

from datetime import datetime, timezone

from edge.protocol.alert import Alert


def sample_alert(event_id: str, list_name: str = "watchlist", **fields: object) -> Alert:
    """An alert of `list_name` with a tiny snapshot; `fields` override any other field."""
    values: dict[str, object] = {
        "event_id": event_id, "kind": "face_match", "list": list_name, "subject_id": "s1", "site": "x",
        "box_id": "b", "camera": "gate", "ts": datetime(2026, 11, 30, tzinfo=timezone.utc), "frame": 1,
        "track_id": 1, "score": 0.6, "distance": 0.4, "matching_frames": 3, "bbox": (0, 0, 1, 1),
        "snapshot_jpeg_b64": "/9j/AA==",
    }  # fmt: skip
    return Alert.model_validate({**values, **fields})
