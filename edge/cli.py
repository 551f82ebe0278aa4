"""The `gatebox` command (also `python -m edge`).

gatebox [--config FILE] [--data-dir DIR] enroll --list L --subject ID [--name TEXT] PHOTO...
gatebox ... replay VIDEO [--events FILE.jsonl] [--realtime] [--no-publish]
gatebox ... run
gatebox ... lists
gatebox ... models
gatebox config-example
gatebox ... centre watch [--json] [--count N] [--timeout S] [--snapshots DIR]
gatebox ... centre serve [--db FILE] [--listen HOST:PORT] [--key FILE]
gatebox ... centre operator add|remove|list [NAME] [--password-stdin]
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

from edge.config import DEFAULT_CONFIG_PATH, BrokerConfig, GateboxConfig, LoggingConfig, load_config
from edge.errors import GateboxError

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


def _cmd_centre_watch(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    from centre.watch import watch
    from edge.config import CentreConfig

    broker = _centre_broker(args, config)
    settings = config.centre or CentreConfig()
    watch(
        broker, as_json=args.json, count=args.count, timeout=args.timeout, snapshots_dir=args.snapshots,
        receipts=not args.no_receipts, max_message_bytes=settings.max_message_kb * 1024,
    )  # fmt: skip
    return 0


def _cmd_centre_record(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    from centre.record import record

    settings = _centre_settings(args, config)
    counts = record(_centre_broker(args, config), args.db, timeout=args.timeout, client_id=settings.record_client_id,
                    max_message_bytes=settings.max_message_kb * 1024)  # fmt: skip
    print("recorded: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def _centre_broker(args: argparse.Namespace, config: GateboxConfig) -> BrokerConfig:
    updates = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    return config.broker.model_copy(update=updates)


def _cmd_centre_ack(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    from centre.commands import send_ack

    state = "closed" if args.close else "acked"
    send_ack(_centre_broker(args, config), _centre_key(args), args.box, args.event_id, state, args.note, args.by)
    print(f"sent: {args.event_id} {state} to {args.box}")
    return 0


def _centre_settings(args: argparse.Namespace, config: GateboxConfig):  # -> CentreConfig
    from edge.config import CentreConfig

    settings = config.centre or CentreConfig()
    updates: dict[str, object] = {}
    if args.db is not None:
        updates["db"] = args.db
    if getattr(args, "listen", None):
        host, _, port = args.listen.rpartition(":")
        if not host or not port.isdigit():
            raise GateboxError(f"--listen must be HOST:PORT, got {args.listen!r}")
        updates.update(host=host, port=int(port))
    return settings.model_copy(update=updates)


def _cmd_centre_serve(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    from centre.web import serve

    settings = _centre_settings(args, config)
    key = args.key or settings.signing_key
    if key is None and "GATEBOX_CENTRE_KEY" in os.environ:
        key = Path(os.environ["GATEBOX_CENTRE_KEY"])
    if key is None:
        log.warning("no signing key (--key, centre.signing_key or $GATEBOX_CENTRE_KEY): operators can watch, "
                    "but acks and list versions are refused")  # fmt: skip
    config = config.model_copy(update={"broker": _centre_broker(args, config)})
    log.info("console on http://%s:%d/ (database %s)", settings.host, settings.port, settings.db)
    serve(config, settings, key)
    return 0


def _cmd_centre_operator(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    import getpass

    from centre.auth import MIN_PASSWORD_LENGTH, hash_password
    from centre.store import CentreStore

    store = CentreStore(_centre_settings(args, config).db)
    try:
        if args.action == "list":
            print("\n".join(store.operators()) or "no operators")
            return 0
        if not args.name:
            raise GateboxError(f"operator {args.action} needs a NAME")
        if args.action == "remove":
            if not store.remove_operator(args.name):
                raise GateboxError(f"no operator named {args.name!r}")
            print(f"removed {args.name} (and ended their sessions)")
            return 0
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"password for {args.name}: ")
            if getpass.getpass("again: ") != password:
                raise GateboxError("the passwords differ")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise GateboxError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
        store.set_operator(args.name, hash_password(password))
        print(f"operator {args.name} can log in")
        return 0
    finally:
        store.close()


def _cmd_centre_keygen(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    from edge.security.signing import generate_keypair

    private, public = args.out / "centre_ed25519.pem", args.out / "centre_ed25519.pub.pem"
    if private.exists() and not args.force:
        raise GateboxError(f"{private} exists; use --force to replace it (boxes holding the old key will refuse)")
    generate_keypair(private, public)
    print(f"private key (keep at the centre): {private}\npublic key (link.centre_public_key on every box): {public}")
    return 0


def _centre_key(args: argparse.Namespace) -> Path:
    key = args.key or (Path(os.environ["GATEBOX_CENTRE_KEY"]) if "GATEBOX_CENTRE_KEY" in os.environ else None)
    if key is None:
        raise GateboxError("the centre's signing key is needed: --key FILE or $GATEBOX_CENTRE_KEY")
    return key


def _cmd_lists_build(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    from centre.lists import build

    entries = build(config, args.list, args.version, args.photos, args.meta, args.out, args.plates)
    print(f"built {args.out}: {args.list} v{args.version}, {entries} entries")
    return 0


def _cmd_lists_publish(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    from centre.lists import publish

    manifest = publish(_centre_broker(args, config), _centre_key(args), args.bundle, args.delta_from)
    base = f" (delta from v{manifest.base_version})" if manifest.base_version else ""
    size, chunks = manifest.size, len(manifest.chunks)
    print(f"published {manifest.list} v{manifest.version}{base}: {size} bytes in {chunks} chunk(s)")
    return 0


def _cmd_plates_read(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    import cv2

    from edge.models import verify_models
    from edge.plates.reader import PlateTextReader

    paths = verify_models(config.models_path)
    reader = PlateTextReader(paths["plate_text_recogniser"])
    finder = None
    if not args.crop:
        from edge.plates.finder import PlateFinder

        finder = PlateFinder.from_models(paths)
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
        found = [(None, image)] if finder is None else [(p.box, p.crop) for p in finder.find(image)]
        for box, crop in found:
            read = reader.read_with_colour(crop)
            if finder is not None and not read.valid:
                continue  # in a scene, only grammatical reads are plates
            line = {"file": str(image_path), "plate": read.text, "colour": read.colour,
                    "confidence": round(read.confidence, 3), "valid": read.valid, "kind": read.kind}  # fmt: skip
            if box is not None:
                line["box"] = list(box)
            print(json.dumps(line, ensure_ascii=False))
    return 2 if failed else 0


def _cmd_alerts(args: argparse.Namespace, config: GateboxConfig, data_dir: Path) -> int:
    from edge.store.alert_states import AlertStates

    with closing(AlertStates(data_dir)) as states:
        records = states.all()
    for r in records:
        print(f"{r.event_id}\t{r.state}\t{r.list_name}/{r.subject_id}\t{r.camera}\t{r.ts}\t{r.note or ''}")
    if not records:
        print(f"no alerts recorded in {data_dir}")
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


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what journald and log shippers index best."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}  # fmt: skip
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(config: LoggingConfig, verbose: bool) -> None:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else config.level)
    if config.as_json:
        for handler in root.handlers:
            handler.setFormatter(JsonFormatter())


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

    p = sub.add_parser("lists", help="show the enrolled subjects")
    p.set_defaults(handler=_cmd_lists)

    p = sub.add_parser("models", help="verify the model files against models/manifest.json")
    p.set_defaults(handler=_cmd_models)

    p = sub.add_parser("doctor", help="check config, models, cameras, broker, clock, disk and lists; say how to fix")
    p.set_defaults(handler=_cmd_doctor, loads_config_itself=True)

    p = sub.add_parser("config-example", help="print a config file documenting every field and its default")
    p.set_defaults(handler=_cmd_config_example)

    centre = sub.add_parser("centre", help="command-centre tools").add_subparsers(
        dest="centre_command", required=True, metavar="COMMAND"
    )
    p = centre.add_parser("watch", help="print alerts and box availability as they arrive")
    p.add_argument("--host", help="broker host (default: config broker.host)")
    p.add_argument("--port", type=int, help="broker port (default: config broker.port)")
    p.add_argument("--json", action="store_true", help="print each alert's raw JSON")
    p.add_argument("--count", type=int, help="exit after this many alerts")
    p.add_argument("--timeout", type=float, help="exit after this many seconds")
    p.add_argument("--snapshots", type=Path, metavar="DIR", help="save each alert's face JPEG here")
    p.add_argument("--no-receipts", action="store_true", help="do not confirm alerts to the boxes")
    p.set_defaults(handler=_cmd_centre_watch)

    p = centre.add_parser("record", help="store what every box sends in the centre's database; confirm events")
    p.add_argument("--db", type=Path, required=True, metavar="FILE.sqlite3", help="the centre's database")
    p.add_argument("--timeout", type=float, help="exit after this many seconds")
    p.add_argument("--host", help="broker host (default: config broker.host)")
    p.add_argument("--port", type=int, help="broker port (default: config broker.port)")
    p.set_defaults(handler=_cmd_centre_record)

    p = centre.add_parser("ack", help="acknowledge (or --close) an alert on its box (signed command)")
    p.add_argument("event_id", metavar="EVENT_ID")
    p.add_argument("--box", required=True, metavar="SITE/BOX_ID", help="the box that raised the alert")
    p.add_argument("--note", help="operator's note")
    p.add_argument("--by", help="operator's name")
    p.add_argument("--close", action="store_true", help="close the alert (disposed) instead of acknowledging it")
    p.add_argument("--key", type=Path, help="centre's Ed25519 private key (default: $GATEBOX_CENTRE_KEY)")
    p.add_argument("--host", help="broker host (default: config broker.host)")
    p.add_argument("--port", type=int, help="broker port (default: config broker.port)")
    p.set_defaults(handler=_cmd_centre_ack)

    lists = centre.add_parser("lists", help="build and publish the lists the boxes match against").add_subparsers(
        dest="lists_command", required=True, metavar="COMMAND"
    )
    p = lists.add_parser("build", help="embed a folder of photos (one folder per subject) into a list bundle")
    p.add_argument("--list", required=True, help="list name, e.g. missing_elders")
    p.add_argument("--version", type=int, required=True, help="the list's new version number")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--photos", type=Path, metavar="DIR", help="one folder of photos per subject")
    source.add_argument("--plates", type=Path, metavar="PLATES.csv", help="plate[,subject_id,name,category,...]")
    p.add_argument("--meta", type=Path, metavar="META.csv", help="subject_id,name,category,priority,expires_at")
    p.add_argument("--out", type=Path, required=True, metavar="BUNDLE.gbl")
    p.set_defaults(handler=_cmd_lists_build)
    p = lists.add_parser("publish", help="publish a bundle to every box (signed; retained; chunked)")
    p.add_argument("bundle", type=Path, metavar="BUNDLE.gbl")
    p.add_argument("--delta-from", type=Path, metavar="OLD.gbl", help="publish only the changes since OLD")
    p.add_argument("--key", type=Path, help="centre's Ed25519 private key (default: $GATEBOX_CENTRE_KEY)")
    p.add_argument("--host", help="broker host (default: config broker.host)")
    p.add_argument("--port", type=int, help="broker port (default: config broker.port)")
    p.set_defaults(handler=_cmd_lists_publish)

    p = centre.add_parser("serve", help="the operators' web console: live events, acks, box health, lists")
    p.add_argument("--db", type=Path, metavar="FILE.sqlite3", help="the centre's database (default: centre.db)")
    p.add_argument("--listen", metavar="HOST:PORT", help="where to serve (default: centre.host:centre.port)")
    p.add_argument("--key", type=Path, help="centre's Ed25519 private key (default: centre.signing_key, "
                   "$GATEBOX_CENTRE_KEY)")  # fmt: skip
    p.add_argument("--host", help="broker host (default: config broker.host)")
    p.add_argument("--port", type=int, help="broker port (default: config broker.port)")
    p.set_defaults(handler=_cmd_centre_serve)

    p = centre.add_parser("operator", help="who may log in to the console (passwords are stored hashed)")
    p.add_argument("action", choices=("add", "remove", "list"), help="add (or change the password of), remove, list")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--db", type=Path, metavar="FILE.sqlite3", help="the centre's database (default: centre.db)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin (for scripts)")
    p.set_defaults(handler=_cmd_centre_operator)

    p = centre.add_parser("keygen", help="make the centre's Ed25519 signing key pair")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--force", action="store_true", help="replace an existing key")
    p.set_defaults(handler=_cmd_centre_keygen)
    return parser


# What the box and the centre write holds faces, embeddings and events: private to the service user
# whatever umask it inherited (a shell's 022 would make them world-readable). Databases, snapshots
# and the events journal are also made 0600 where they are opened; this covers everything else
# (list bundles, keys, saved snapshots, --events and --stats files).
PRIVATE_UMASK = 0o077


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
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
