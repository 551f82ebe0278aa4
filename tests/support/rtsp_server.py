"""A test IP camera speaking RTSP with H.264, as gate cameras do: GStreamer's RTSP server (Debian's
gir1.2-gst-rtsp-server-1.0, x264enc from gstreamer1.0-plugins-ugly) serving JPEG frames from a folder,
looped, at a fixed frame rate. Run by the system Python, which has the GObject bindings (python3-gi), as
a separate process, so a test can kill it (camera gone) or SIGSTOP it (frozen: connection open, no frames).

    /usr/bin/python3 tests/support/rtsp_server.py --port 8554 --frames DIR --fps 10     # rtsp://127.0.0.1:8554/gate
    /usr/bin/python3 tests/support/rtsp_server.py --check                                # exit 0 when it can run here

It imports nothing of the project's and needs neither numpy nor OpenCV: the test writes the JPEGs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

MOUNT = "/gate"


def load_gstreamer() -> tuple[Any, Any, Any]:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    for element in ("appsrc", "jpegdec", "videoconvert", "x264enc", "rtph264pay"):
        if Gst.ElementFactory.find(element) is None:
            raise ImportError(f"the GStreamer element {element} is missing")
    return GLib, Gst, GstRtspServer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--frames", type=Path, help="folder of JPEG frames, served in name order, looped")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--check", action="store_true", help="only check that GStreamer and its plugins are here")
    args = parser.parse_args()
    try:
        GLib, Gst, GstRtspServer = load_gstreamer()
    except (ImportError, ValueError) as e:
        print(f"unavailable: {e}", flush=True)
        return 1
    if args.check:
        print("available", flush=True)
        return 0
    jpegs = [p.read_bytes() for p in sorted(args.frames.glob("*.jpg"))]
    if not jpegs:
        print(f"no JPEG frames in {args.frames}", file=sys.stderr)
        return 2
    duration = Gst.SECOND // args.fps
    # One media per client (not shared): a client that reconnects starts a stream of its own, as with a
    # camera. A keyframe every second and SPS/PPS with each, so a new client decodes within a second.
    launch = (
        f"( appsrc name=source is-live=true format=time caps=image/jpeg,framerate={args.fps}/1 "
        "! jpegdec ! videoconvert ! video/x-raw,format=I420 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )

    def on_media_configure(factory: Any, media: Any) -> None:
        source = media.get_element().get_child_by_name("source")
        sent = [0]

        def on_need_data(src: Any, length: int) -> None:
            data = jpegs[sent[0] % len(jpegs)]
            buffer = Gst.Buffer.new_wrapped(data)
            buffer.pts = buffer.dts = sent[0] * duration
            buffer.duration = duration
            sent[0] += 1
            src.emit("push-buffer", buffer)

        source.connect("need-data", on_need_data)

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.connect("media-configure", on_media_configure)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    server.get_mount_points().add_factory(MOUNT, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on port {args.port}", file=sys.stderr)
        return 2
    print("serving", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
