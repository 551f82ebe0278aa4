"""The `gatebox-centre` command (also `python -m centre`, and `gatebox centre`, which hands over to it).

gatebox-centre [--config FILE] [-v] watch [--json] [--count N] [--timeout S] [--snapshots DIR]
gatebox-centre ... record --db FILE|URL [--timeout S]
gatebox-centre ... ack EVENT_ID --box SITE/BOX_ID [--close] [--note TEXT] [--by NAME] [--key FILE]
gatebox-centre ... lists build|publish ...
gatebox-centre ... serve [--db FILE|postgresql://…] [--listen HOST:PORT] [--key FILE]
gatebox-centre ... operator add|remove|list [NAME] [--password-stdin]
gatebox-centre ... keygen --out DIR
gatebox-centre config-example
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from centre.config import CONFIG_ENV, DEFAULT_CONFIG_PATH, CentreConfig, ConsoleConfig, config_path, load_config
from centre.database import DatabaseLocation, parse_location, shown
from edge.protocol.errors import GateboxError
from edge.protocol.logs import configure_logging, start_logging
from edge.protocol.messages import AckState
from edge.protocol.mqtt import BrokerConfig
from edge.protocol.private import PRIVATE_UMASK

log = logging.getLogger("gatebox.centre")
KEY_ENV = "GATEBOX_CENTRE_KEY"
DB_METAVAR = "FILE.sqlite3|postgresql://USER@HOST:PORT/DB"
# `gatebox centre ...` runs this program as `python -m centre --called-as gatebox ...`: its usage
# and error lines then name the command the operator typed.
CALLED_AS = "--called-as"


def _cmd_watch(args: argparse.Namespace, config: CentreConfig) -> int:
    from centre.watch import watch

    watch(
        _broker(args, config), as_json=args.json, count=args.count, timeout=args.timeout, snapshots_dir=args.snapshots,
        receipts=not args.no_receipts, max_message_bytes=config.console.max_message_kb * 1024,
    )  # fmt: skip
    return 0


def _cmd_record(args: argparse.Namespace, config: CentreConfig) -> int:
    from centre.record import record

    settings = _console_settings(args, config)
    counts = record(_broker(args, config), args.db, timeout=args.timeout, client_id=settings.record_client_id,
                    max_message_bytes=settings.max_message_kb * 1024)  # fmt: skip
    print("recorded: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def _broker(args: argparse.Namespace, config: CentreConfig) -> BrokerConfig:
    updates = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    return config.broker.model_copy(update=updates)


def _cmd_ack(args: argparse.Namespace, config: CentreConfig) -> int:
    from centre.commands import send_ack

    state: AckState = "closed" if args.close else "acked"
    send_ack(_broker(args, config), _signing_key(args), args.box, args.event_id, state, args.note, args.by)
    print(f"sent: {args.event_id} {state} to {args.box}")
    return 0


def _console_settings(args: argparse.Namespace, config: CentreConfig) -> ConsoleConfig:
    """The config's `console` section with --db and --listen applied."""
    updates: dict[str, object] = {}
    if args.db is not None:
        updates["db"] = args.db
    if getattr(args, "listen", None):
        host, _, port = args.listen.rpartition(":")
        if not host or not port.isdigit():
            raise GateboxError(f"--listen must be HOST:PORT, got {args.listen!r}")
        updates.update(host=host, port=int(port))
    settings = config.console.model_copy(update=updates)
    if settings.share_group is not None and not isinstance(settings.db, str):
        raise GateboxError(f"console.share_group needs a PostgreSQL database the workers share, not {settings.db}")
    return settings


def _cmd_serve(args: argparse.Namespace, config: CentreConfig) -> int:
    from centre.web import serve

    settings = _console_settings(args, config)
    key = args.key or settings.signing_key
    if key is None and KEY_ENV in os.environ:
        key = Path(os.environ[KEY_ENV])
    if key is None:
        log.warning("no signing key (--key, console.signing_key or $%s): operators can watch, but acks and "
                    "list versions are refused", KEY_ENV)  # fmt: skip
    config = config.model_copy(update={"broker": _broker(args, config)})
    log.info("console on http://%s:%d/ (database %s%s)", settings.host, settings.port, shown(settings.db),
             f"; worker of {settings.share_group}" if settings.share_group else "")  # fmt: skip
    serve(config, settings, key)
    return 0


def _cmd_operator(args: argparse.Namespace, config: CentreConfig) -> int:
    from centre.auth import MIN_PASSWORD_LENGTH, hash_password
    from centre.store import CentreStore

    store = CentreStore(_console_settings(args, config).db)
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
            if not password:
                raise GateboxError("--password-stdin: no password on stdin (give it as one line)")
        else:
            password = _ask_password(args.name)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise GateboxError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
        store.set_operator(args.name, hash_password(password))
        print(f"operator {args.name} can log in")
        return 0
    finally:
        store.close()


def _ask_password(name: str) -> str:
    """The password, typed twice on the terminal. Without one (a script, a service, ssh without a tty),
    getpass would read stdin with echo on and die at its end: say what to do instead."""
    import getpass

    try:
        os.close(os.open("/dev/tty", os.O_RDWR))
    except OSError:
        raise GateboxError(
            f"no terminal to ask for {name}'s password on: pipe it in with --password-stdin, e.g. "
            f"`printf '%s\\n' \"$PASSWORD\" | gatebox centre operator add {name} --password-stdin`"
        ) from None
    try:
        password = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != password:
            raise GateboxError("the passwords differ")
    except EOFError:
        raise GateboxError("no password given (end of input)") from None
    return password


def _cmd_keygen(args: argparse.Namespace, config: CentreConfig) -> int:
    from edge.protocol.signing import generate_keypair

    private, public = args.out / "centre_ed25519.pem", args.out / "centre_ed25519.pub.pem"
    if private.exists() and not args.force:
        raise GateboxError(f"{private} exists; use --force to replace it (boxes holding the old key will refuse)")
    generate_keypair(private, public)
    print(f"private key (keep at the centre): {private}\npublic key (link.centre_public_key on every box): {public}")
    return 0


def _signing_key(args: argparse.Namespace) -> Path:
    key = args.key or (Path(os.environ[KEY_ENV]) if KEY_ENV in os.environ else None)
    if key is None:
        raise GateboxError(f"the centre's signing key is needed: --key FILE or ${KEY_ENV}")
    return key


def _cmd_lists_build(args: argparse.Namespace, config: CentreConfig) -> int:
    from centre.lists import build

    entries = build(config, args.list, args.version, args.photos, args.meta, args.out, args.plates)
    print(f"built {args.out}: {args.list} v{args.version}, {entries} entries")
    if args.db is not None:
        from centre.lists import PHOTO_SUFFIXES, read_bundle
        from centre.references import subject_records
        from centre.store import CentreStore
        from edge.protocol.bundle import decode

        listed = decode(read_bundle(args.out)[2], "full").entries
        records = subject_records(list(listed), args.photos, PHOTO_SUFFIXES)
        store = CentreStore(args.db)
        try:
            store.record_subjects(args.list, records)
        finally:
            store.close()
        photos = sum(1 for r in records if r.reference)
        print(f"recorded {len(records)} subject(s) of {args.list} in {shown(args.db)} ({photos} reference photo(s))")
    return 0


def _cmd_lists_publish(args: argparse.Namespace, config: CentreConfig) -> int:
    from centre.lists import publish

    manifest = publish(_broker(args, config), _signing_key(args), args.bundle, args.delta_from)
    base = f" (delta from v{manifest.base_version})" if manifest.base_version else ""
    size, chunks = manifest.size, len(manifest.chunks)
    print(f"published {manifest.list} v{manifest.version}{base}: {size} bytes in {chunks} chunk(s)")
    if args.db is not None:
        lists_dir = _console_settings(args, config).lists_folder
        _record_cli_publication(args.db, args.bundle, manifest.list, manifest.version, manifest.entries, lists_dir)
        print(f"recorded {manifest.list} v{manifest.version} in {shown(args.db)}: the console adds to it from now on")
    return 0


def _record_cli_publication(db: DatabaseLocation, bundle: Path, list_name: str, version: int, entries: int,
                            lists_dir: Path | None = None) -> None:  # fmt: skip
    """The console's record of a version published from here: a copy of the whole bundle in the console's
    `lists_dir` (default: beside an SQLite database; the base the console's next `add` builds on), who
    published it (`cli`), and the subjects no longer listed forgotten (their reference photos too)."""
    import shutil

    from centre.lists import read_bundle
    from centre.store import CentreStore
    from edge.protocol.bundle import decode

    if lists_dir is None:
        lists_dir = ConsoleConfig(db=db).lists_folder
    copy = lists_dir / list_name / f"v{version}.gbl"
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundle, copy)
    store = CentreStore(db)
    try:
        store.record_published(list_name, version, entries, copy, "cli")
        store.keep_subjects(list_name, (e.subject_id for e in decode(read_bundle(copy)[2], "full").entries))
    finally:
        store.close()
    for old in copy.parent.glob("v*.gbl"):  # as the console does: an old bundle would keep removed faces
        if old != copy:
            old.unlink(missing_ok=True)


def _cmd_config_example(args: argparse.Namespace, config: CentreConfig) -> int:
    from centre.config import render_example_yaml

    sys.stdout.write(render_example_yaml())
    return 0


def _broker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="broker host (default: config broker.host)")
    p.add_argument("--port", type=int, help="broker port (default: config broker.port)")


def build_parser(prog: str = "gatebox-centre") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="The command centre: alerts, panics, box health, lists.")
    parser.add_argument("--config", type=Path, help=f"YAML config (default: ${CONFIG_ENV} or {DEFAULT_CONFIG_PATH})")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("watch", help="print alerts and box availability as they arrive")
    _broker_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line on stdout for every message shown "
                   "(alerts, panics, alert states, device notices, availability)")  # fmt: skip
    p.add_argument("--count", type=int, help="exit after this many alerts")
    p.add_argument("--timeout", type=float, help="exit after this many seconds")
    p.add_argument("--snapshots", type=Path, metavar="DIR", help="save each alert's face JPEG here")
    p.add_argument("--no-receipts", action="store_true", help="do not confirm alerts to the boxes")
    p.set_defaults(handler=_cmd_watch)

    p = sub.add_parser("record", help="store what every box sends in the centre's database; confirm events")
    p.add_argument("--db", type=parse_location, required=True, metavar=DB_METAVAR, help="the centre's database")
    p.add_argument("--timeout", type=float, help="exit after this many seconds")
    _broker_options(p)
    p.set_defaults(handler=_cmd_record)

    p = sub.add_parser("ack", help="acknowledge (or --close) an alert on its box (signed command)")
    p.add_argument("event_id", metavar="EVENT_ID")
    p.add_argument("--box", required=True, metavar="SITE/BOX_ID", help="the box that raised the alert")
    p.add_argument("--note", help="operator's note")
    p.add_argument("--by", help="operator's name")
    p.add_argument("--close", action="store_true", help="close the alert (disposed) instead of acknowledging it")
    p.add_argument("--key", type=Path, help=f"centre's Ed25519 private key (default: ${KEY_ENV})")
    _broker_options(p)
    p.set_defaults(handler=_cmd_ack)

    lists = sub.add_parser("lists", help="build and publish the lists the boxes match against").add_subparsers(
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
    p.add_argument("--db", type=parse_location, metavar=DB_METAVAR, help="the console's database: keep each subject's "
                   "details and one reference photo, shown beside its alerts")  # fmt: skip
    p.set_defaults(handler=_cmd_lists_build)
    p = lists.add_parser("publish", help="publish a bundle to every box (signed; retained; chunked)")
    p.add_argument("bundle", type=Path, metavar="BUNDLE.gbl")
    p.add_argument("--delta-from", type=Path, metavar="OLD.gbl", help="publish only the changes since OLD")
    p.add_argument("--key", type=Path, help=f"centre's Ed25519 private key (default: ${KEY_ENV})")
    p.add_argument("--db", type=parse_location, metavar=DB_METAVAR, help="the console's database: record this version "
                   "(by `cli`), so the console's next version adds to it")  # fmt: skip
    _broker_options(p)
    p.set_defaults(handler=_cmd_lists_publish)

    p = sub.add_parser("serve", help="the operators' web console: live events, acks, box health, lists")
    p.add_argument("--db", type=parse_location, metavar=DB_METAVAR, help="the centre's database (default: console.db)")
    p.add_argument("--listen", metavar="HOST:PORT", help="where to serve (default: console.host:console.port)")
    p.add_argument("--key", type=Path, help=f"centre's Ed25519 private key (default: console.signing_key, "
                   f"${KEY_ENV})")  # fmt: skip
    _broker_options(p)
    p.set_defaults(handler=_cmd_serve)

    p = sub.add_parser("operator", help="who may log in to the console (passwords are stored hashed)")
    p.add_argument("action", choices=("add", "remove", "list"), help="add (or change the password of), remove, list")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--db", type=parse_location, metavar=DB_METAVAR, help="the centre's database (default: console.db)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin (for scripts)")
    p.set_defaults(handler=_cmd_operator)

    p = sub.add_parser("keygen", help="make the centre's Ed25519 signing key pair")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--force", action="store_true", help="replace an existing key")
    p.set_defaults(handler=_cmd_keygen)

    p = sub.add_parser("config-example", help="print a config file documenting every field and its default")
    p.set_defaults(handler=_cmd_config_example)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)
    argv = list(sys.argv[1:] if argv is None else argv)
    called_as = "gatebox-centre"
    if argv[:1] == [CALLED_AS] and len(argv) > 1:
        called_as, argv = argv[1], argv[2:]
    prog = "gatebox-centre" if called_as == "gatebox-centre" else f"{called_as} centre"
    args = build_parser(prog).parse_args(argv)
    start_logging(args.verbose)
    try:
        config = load_config(config_path(args.config))
        configure_logging(config.logging, verbose=args.verbose)
        handler: Callable[[argparse.Namespace, CentreConfig], int] = args.handler  # set by each subcommand
        return handler(args, config)
    except GateboxError as e:
        print(f"{called_as}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
