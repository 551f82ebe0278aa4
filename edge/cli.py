"""The `gatebox` command (also `python -m edge`).

gatebox [--config FILE] [--data-dir DIR] enroll --list L --subject ID [--name TEXT] PHOTO...
gatebox ... replay VIDEO [--events FILE.jsonl] [--realtime] [--no-publish] [--annotate OUT.mp4]
gatebox ... run
gatebox ... camera preview [URL_OR_FILE] [--camera NAME] [--out FILE.png] [--gate-line X1,Y1,X2,Y2,OX,OY]
gatebox ... lists
gatebox ... models
gatebox config-example
gatebox ... centre COMMAND ...   (the centre's own program: `gatebox-centre`, centre/cli.py)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import NoReturn

from edge.config import DEFAULT_CONFIG_PATH, GateboxConfig, load_config
from edge.protocol.errors import GateboxError
from edge.protocol.logs import configure_logging, start_logging
from edge.protocol.private import PRIVATE_UMASK

log = logging.getLogger("gatebox")


def _config_path(arg: Path | None) -> Path | None:
    if arg is not None:
        return arg
    if env := os.environ.get("GATEBOX_CONFIG"):
        return Path(env)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def _cmd_enroll(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    from edge.enroll import RECOMMENDED_PHOTOS, enroll_photos
    from edge.store.lists import ListStore

    stored = enroll_photos(config, data_dir, args.list, args.subject, args.name, args.photos)
    print(f"enrolled {args.subject} in {args.list}: {stored} face embedding(s) stored in {data_dir}")
    with closing(ListStore(data_dir)) as store:
        total = next(s.embeddings for s in store.subjects() if (s.list_name, s.subject_id) == (args.list, args.subject))
    if total < RECOMMENDED_PHOTOS:
        print(f"hint: {args.subject} has {total} photo(s); enrol {RECOMMENDED_PHOTOS} or more, from different days "
              "and angles: one photo is one lighting and one pose, and recognition on other days suffers")  # fmt: skip
    return 0


def _cmd_replay(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    from edge.runner import replay
    from edge.scoring import load_truth, score

    truth = load_truth(args.truth) if args.truth else None
    result = replay(
        config,
        data_dir,
        args.video,
        events=args.events,
        realtime=args.realtime,
        publish=not args.no_publish,
        start_frame=args.start_frame,
        end_frame=args.end_frame,
        camera=args.camera,
        annotate=args.annotate,
    )
    print(result.line())
    if args.stats:
        args.stats.write_text(json.dumps(result.stats()))
    if truth is not None:
        scored = score(result.alerts, truth)
        fps = result.frames / result.seconds if result.seconds else 0
        print(scored.table(fps=_file_fps(args.video) or fps or 25.0))
        if args.fail_on_miss and (scored.missed or scored.false_alerts):
            return 1
    return 0


def _file_fps(video: Path) -> float | None:
    import cv2

    fps = cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FPS)
    return fps if 0 < fps < 1000 else None


def _cmd_run(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    from edge.runner import run

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run(config, data_dir, stop)
    return 0


def _cmd_lists(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    from edge.store.lists import ListStore

    with closing(ListStore(data_dir)) as store:
        subjects, versions = store.subjects(), store.versions()
    if subjects:
        print("list\tsubject\tname\tholds\torigin")
    for s in subjects:
        origin = "local" if s.origin == "local" else f"centre v{versions.get(s.list_name)}"
        what = f"plate {s.plate}" if s.plate else f"{s.embeddings} usable embedding(s)"
        print(f"{s.list_name}\t{s.subject_id}\t{s.name or ''}\t{what}\t{origin}")
    if not subjects:
        print(f"no subjects enrolled in {data_dir}")
    return 0


def _cmd_models(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    from edge.models import load_manifest, verify_models

    verify_models(config.models_path)
    for m in load_manifest(config.models_path):
        print(f"ok  {m.name:<18} {m.path}  ({m.package}=={m.version}, {m.licence})")
    return 0


def _cmd_plates_read(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    import cv2

    from edge.models import verify_models
    from edge.plates.reader import PlateTextReader

    paths = verify_models(config.models_path)
    reader = PlateTextReader(paths["plate_text_recogniser"])
    scanner = None
    if not args.crop:
        from edge.plates.finder import PlateFinder
        from edge.plates.scanner import PlateScanner

        scanner = PlateScanner(PlateFinder.from_models(paths), reader, thorough=True)  # a photo is read once
    failed = 0
    for image_path in args.images:
        image = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
        if image is None or image.size == 0:
            print(json.dumps({"file": str(image_path), "error": "cannot read image"}, ensure_ascii=False))
            failed += 1
            continue
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        if scanner is None:  # --crop: the image is the plate
            read = reader.read_with_colour(image)
            reads = [(None, read.text, read.colour, read.confidence, read.valid, read.kind)]
        else:  # a scene: its plates that read as plates, one read each
            from edge.plates.scanner import COLOUR, KIND, READ_CONFIDENCE, TEXT

            plates = scanner.scan(image)
            reads = [(box, str(text), colour, float(confidence), True, kind) for box, text, colour, confidence, kind
                     in zip(plates.xyxy.astype(int).tolist(), plates.data[TEXT], plates.data[COLOUR],
                            plates.data[READ_CONFIDENCE], plates.data[KIND], strict=True)]  # fmt: skip
        for box, text, colour, confidence, valid, kind in reads:
            line: dict[str, object] = {"file": str(image_path), "plate": text, "colour": colour,
                                       "confidence": round(confidence, 3), "valid": valid, "kind": kind}  # fmt: skip
            if box is not None:
                line["box"] = list(box)
            print(json.dumps(line, ensure_ascii=False))
    return 2 if failed else 0


def _cmd_alerts(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    from edge.store.alert_states import AlertStates

    with closing(AlertStates(data_dir)) as states:
        records = states.all()
    if records:
        print("event_id\tstate\tlist/subject\tcamera\tts\tnote")
    for r in records:
        print(f"{r.event_id}\t{r.state}\t{r.list_name}/{r.subject_id}\t{r.camera}\t{r.ts}\t{r.note or ''}")
    if not records:
        print(f"no alerts recorded in {data_dir}")
    return 0


def _cmd_camera_preview(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    from edge.preview import make_preview, parse_gate_line, write_png

    camera = next((c for c in config.cameras if c.name == args.camera), None) if args.camera else None
    if args.camera and camera is None:
        raise GateboxError(f"--camera {args.camera}: no such camera in the config")
    source: str | None = args.source
    if source is None:
        if camera is None and not config.cameras:
            raise GateboxError("no camera configured: name a file or stream URL (gatebox camera preview URL)")
        camera = camera or config.cameras[0]
        source = camera.url
    gate_line = parse_gate_line(args.gate_line) if args.gate_line else (camera.gate_line if camera else None)
    preview = make_preview(config, source, camera, gate_line, args.frames)
    out = args.out or Path(f"preview-{camera.name if camera else 'camera'}.png")
    write_png(preview, out)
    for line in preview.summary():
        print(line)
    print(f"wrote {out}")
    if args.gate_line and (tried := preview.gate_line) is not None:
        print(f"to keep this line, under the camera in the config:\n  gate_line: {{start: {list(tried.start)}, "
              f"end: {list(tried.end)}, outside: {list(tried.outside)}}}")  # fmt: skip
    return 0


def _cmd_config_example(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    from edge.config import render_example_yaml

    sys.stdout.write(render_example_yaml())
    return 0


def _cmd_doctor(args: argparse.Namespace, config: GateboxConfig | None, data_dir: Path | None) -> int:
    from edge.doctor import diagnose, render

    checks = diagnose(_config_path(args.config), args.data_dir)
    print(render(checks))
    return 1 if any(c.status == "FAIL" for c in checks) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatebox", description="Gate-box face recognition and alerting.")
    parser.add_argument("--config", type=Path, help=f"YAML config (default: $GATEBOX_CONFIG or {DEFAULT_CONFIG_PATH})")
    parser.add_argument("--data-dir", type=Path, help="local list store and state (default: config data_dir)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("enroll", help="enrol a subject's face photos into a list")
    p.add_argument("--list", required=True, help="list name, e.g. watchlist or missing_elders")
    p.add_argument("--subject", required=True, help="subject id within the list")
    p.add_argument("--name", help="display name")
    p.add_argument("photos", nargs="+", type=Path, metavar="PHOTO", help="photos with exactly one face each")
    p.set_defaults(handler=_cmd_enroll)

    p = sub.add_parser("replay", help="run the pipeline over a recorded video file")
    p.add_argument("video", type=Path, metavar="VIDEO")
    p.add_argument("--events", type=Path, metavar="FILE.jsonl", help="append every alert as a JSON line")
    p.add_argument("--realtime", action="store_true", help="pace frames at the file's own frame rate")
    p.add_argument("--no-publish", action="store_true", help="do not connect to the MQTT broker")
    p.add_argument("--start-frame", type=int, default=0, metavar="N", help="first frame to process")
    p.add_argument("--end-frame", type=int, metavar="N", help="stop before this frame")
    p.add_argument("--truth", type=Path, metavar="TRUTH.csv", help="score alerts: rows subject_id,first,last")
    p.add_argument("--fail-on-miss", action="store_true", help="with --truth: exit 1 on a miss or false alert")
    p.add_argument("--stats", type=Path, metavar="FILE.json", help="write per-frame costs and alert delays")
    p.add_argument("--camera", metavar="NAME", help="play the part of this configured camera (name, gate line)")
    p.add_argument(
        "--annotate",
        type=Path,
        metavar="OUT.mp4",
        help="write the clip with faces, tracks, matches, the gate line, plates and alerts drawn",
    )
    p.set_defaults(handler=_cmd_replay)

    p = sub.add_parser("run", help="watch the configured cameras until stopped")
    p.set_defaults(handler=_cmd_run)

    plates = sub.add_parser("plates", help="licence plate tools").add_subparsers(
        dest="plates_command", required=True, metavar="COMMAND"
    )
    p = plates.add_parser("read", help="read plates in images; one JSON object per line")
    p.add_argument("--crop", action="store_true", help="each image is an already-cut plate (else: find plates)")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.set_defaults(handler=_cmd_plates_read)

    p = sub.add_parser("alerts", help="show the alerts this box raised and their state (new/acked/closed)")
    p.set_defaults(handler=_cmd_alerts)

    camera = sub.add_parser("camera", help="camera tools for installers").add_subparsers(
        dest="camera_command", required=True, metavar="COMMAND"
    )
    p = camera.add_parser("preview", help="a PNG of the camera's view with the gate line, regions and faces drawn")
    p.add_argument(
        "source", nargs="?", metavar="URL_OR_FILE", help="a stream URL or video file (default: the camera's)"
    )
    p.add_argument("--camera", metavar="NAME", help="the configured camera (default: the first); its gate line")
    p.add_argument("--out", type=Path, metavar="FILE.png", help="where to write it (default: preview-NAME.png)")
    p.add_argument("--frames", type=int, default=25, metavar="N",
                   help="frames to read; the motion regions are those of the last (default: 25)")  # fmt: skip
    p.add_argument("--gate-line", metavar="X1,Y1,X2,Y2,OX,OY",
                   help="try this line instead of the configured one (fractions: start, end, a point outside)",
                   )  # fmt: skip
    p.set_defaults(handler=_cmd_camera_preview)

    p = sub.add_parser("lists", help="show the enrolled subjects")
    p.set_defaults(handler=_cmd_lists)

    p = sub.add_parser("models", help="verify the model files against models/manifest.json")
    p.set_defaults(handler=_cmd_models)

    p = sub.add_parser("doctor", help="check config, models, cameras, broker, clock, disk and lists; say how to fix")
    p.set_defaults(handler=_cmd_doctor, loads_config_itself=True)

    p = sub.add_parser("config-example", help="print a config file documenting every field and its default")
    p.set_defaults(handler=_cmd_config_example)

    # The centre is a program of its own (`gatebox-centre`, package `centre`): the box never imports
    # it; `gatebox centre ...` hands its arguments over to it unparsed (`_hand_over_to_centre`).
    p = sub.add_parser("centre", help="command-centre tools (the gatebox-centre program)", add_help=False)
    p.add_argument("centre_args", nargs=argparse.REMAINDER, metavar="...")
    p.set_defaults(handler=None)
    return parser


def _hand_over_to_centre(args: argparse.Namespace, centre_args: list[str]) -> NoReturn:
    """Run `gatebox-centre` (`python -m centre`) in this process's place, with the global options
    that apply to it and `centre_args` (what followed `centre`); its exit status is this command's."""
    argv = [sys.executable, "-m", "centre", "--called-as", "gatebox"]  # its messages say `gatebox centre`
    if (config := _config_path(args.config)) is not None:
        argv += ["--config", str(config)]
    if args.verbose:
        argv.append("--verbose")  # --data-dir is the box's: the centre has no use for it
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [*argv, *centre_args])


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)
    parser = build_parser()
    # What `centre` does not know (a leading `--help`, say) is the centre's to parse, not an error here.
    args, unknown = parser.parse_known_args(argv)
    if args.command == "centre":
        _hand_over_to_centre(args, [*unknown, *args.centre_args])
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    start_logging(args.verbose)
    try:
        if getattr(args, "loads_config_itself", False):  # doctor reports a bad config rather than stopping on it
            return args.handler(args, None, None)
        config = load_config(_config_path(args.config))
        configure_logging(config.logging, verbose=args.verbose)
        data_dir = args.data_dir or config.data_dir
        return args.handler(args, config, data_dir)
    except GateboxError as e:
        print(f"gatebox: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
