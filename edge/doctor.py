"""`gatebox doctor`: what is wrong with this box, in plain words, and how to fix it.

Every check gives OK, WARN or FAIL with a detail and, when not OK, the fix. The exit code is 1
when any check fails, so installers and monitoring can use it as is.
"""

from __future__ import annotations

import errno
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import paho.mqtt.client as mqtt
import serial
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.config import CameraConfig, GateboxConfig, GpioReceiverConfig, HttpReceiverConfig, load_config
from edge.models import load_manifest, verify_models
from edge.panic.receivers import mqtt_receiver_broker, read_token
from edge.protocol.errors import GateboxError
from edge.protocol.mqtt import BrokerConfig, disconnect, make_client
from edge.protocol.signing import load_public_key
from edge.recognition.embedder import configured_embedder_id
from edge.sources.video import open_capture
from edge.store.lists import ListStore


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK, WARN, FAIL
    detail: str
    fix: str = ""


def check_models(config: GateboxConfig) -> list[Check]:
    try:
        paths = verify_models(config.models_path)
    except GateboxError as e:
        return [Check("models", "FAIL", str(e).split(" (")[0], "reinstall them: .venv/bin/python models/install.py")]
    names = ", ".join(m.name for m in load_manifest(config.models_path))
    return [Check("models", "OK", f"{len(paths)} verified against the manifest ({names})")]


def check_camera(camera: CameraConfig) -> Check:
    capture = open_capture(camera.url, camera.open_timeout_s, camera.read_timeout_s)
    try:
        if not capture.isOpened():
            return Check(f"camera {camera.name}", "FAIL", f"cannot open {camera.url}",
                         "check the camera is powered, the URL, user and password, and the network path")  # fmt: skip
        started, frames = time.monotonic(), 0
        ok, image = capture.read()
        while ok and frames < 10 and time.monotonic() - started < 3:
            frames += 1
            ok, image = capture.read()
        if frames == 0:
            return Check(f"camera {camera.name}", "FAIL", "opened but delivered no frame",
                         "check the stream settings (codec H.264/MJPEG) and the bandwidth")  # fmt: skip
        fps = capture.get(cv2.CAP_PROP_FPS)
        height, width = image.shape[:2] if ok else (int(capture.get(4)), int(capture.get(3)))
        return Check(f"camera {camera.name}", "OK", f"{width}x{height}, {fps:.0f} fps reported")
    finally:
        capture.release()


def check_broker(config: GateboxConfig, timeout: float = 5.0) -> Check:
    return check_mqtt_login("broker", config.broker, "broker", timeout)


def check_mqtt_login(name: str, broker: BrokerConfig, section: str, timeout: float = 5.0) -> Check:
    """Log in to `broker` as configured (TLS, user, password) and out again; `section` names the
    config section the fix points to."""
    try:
        client = make_client(broker, client_id="")
    except GateboxError as e:
        return Check(name, "FAIL", str(e), f"fix the {section} section of the config")
    result: list[ReasonCode] = []
    done = threading.Event()

    def on_connect(
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        result.append(reason)
        done.set()

    client.on_connect = on_connect
    where = f"{broker.host}:{broker.port}{' (TLS)' if broker.tls.enabled else ''}"
    try:
        client.connect(broker.host, broker.port, keepalive=broker.keepalive_s)
    except OSError as e:
        fix = f"check {section}.host/port, the network and the firewall; with TLS, {section}.tls.ca_file"
        return Check(name, "FAIL", f"cannot reach {where}: {e.strerror or e}", fix)
    client.loop_start()
    try:
        if not done.wait(timeout):
            fix = f"check that the port is the MQTT listener and TLS matches ({section}.tls.enabled)"
            return Check(name, "FAIL", f"{where} did not answer in {timeout:.0f} s", fix)
        reason = result[0]
        if getattr(reason, "is_failure", False):
            user = "broker.username (SITE/BOX_ID)" if section == "broker" else f"{section}.username"
            fix = (f"check {user} and the password in {section}.password_file"
                   if "auth" in str(reason).lower() or "password" in str(reason).lower()
                   else "check the broker's ACL and this box's account")  # fmt: skip
            return Check(name, "FAIL", f"{where} refused the connection: {reason}", fix)
        return Check(name, "OK", f"connected to {where} as {broker.username or 'anonymous'}")
    finally:
        disconnect(client)


def check_clock() -> Check:
    now = time.time()
    if now < 1_704_067_200:  # 2024-01-01
        return Check("clock", "FAIL", time.strftime("the clock says %Y-%m-%d", time.gmtime(now)),
                     "set the time or enable NTP (timedatectl set-ntp true); alerts carry this clock")  # fmt: skip
    synced = _ntp_synchronised()
    if synced is False:
        return Check("clock", "WARN", "not synchronised with NTP", "enable it: timedatectl set-ntp true")
    return Check("clock", "OK", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
                 + (", NTP synchronised" if synced else ""))  # fmt: skip


def _ntp_synchronised() -> bool | None:
    import subprocess

    if not shutil.which("timedatectl"):
        return None
    try:
        out = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"], capture_output=True,
                             text=True, timeout=5).stdout.strip()  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"yes": True, "no": False}.get(out)


def check_disk(config: GateboxConfig, data_dir: Path) -> Check:
    probe = data_dir if data_dir.exists() else next((p for p in data_dir.parents if p.exists()), Path("/"))
    free_mb = shutil.disk_usage(probe).free / 2**20
    budget = config.link.outbox_budget_mb
    if free_mb < budget:
        return Check("disk", "FAIL", f"{free_mb:.0f} MB free at {probe}, the outbox may need {budget:.0f} MB",
                     "free disk space, or lower link.outbox_budget_mb to what the disk can hold")  # fmt: skip
    return Check("disk", "OK", f"{free_mb:.0f} MB free at {probe} (outbox budget {budget:.0f} MB)")


def check_lists(config: GateboxConfig, data_dir: Path) -> Check:
    try:
        store = ListStore(data_dir)
    except GateboxError as e:
        return Check("lists", "FAIL", str(e), f"make {data_dir} writable by the gatebox user")
    try:
        versions, subjects, embedders = store.versions(), store.subjects(), store.embedders(config.lists)
    finally:
        store.close()
    try:
        running = configured_embedder_id(config.recognition)
    except GateboxError:
        running = None  # the models check reports the missing model file
    foreign = sorted({e for made in embedders.values() for e in made} - {running}) if running else []
    if foreign:
        return Check("lists", "FAIL", f"faces made by {', '.join(foreign)}, but recognition.embedder is {running}: "
                     "the box will not start", "re-enrol those subjects and rebuild the centre's lists with the "
                     "configured embedder, or set recognition.embedder back")  # fmt: skip
    counts = {name: sum(s.list_name == name for s in subjects) for name in config.lists}
    text = ", ".join(f"{n}: {c} ({'v' + str(versions[n]) if n in versions else 'local'})" for n, c in counts.items())
    if not subjects:
        return Check("lists", "WARN", "nothing enrolled or synced: no alert can fire",
                     "publish the lists from the centre, or enrol with gatebox enroll")  # fmt: skip
    return Check("lists", "OK", text)


def check_centre_key(config: GateboxConfig) -> Check:
    """The key that commands and lists from the centre are checked against (what `run` loads)."""
    path = config.link.centre_public_key
    if path is None:
        return Check("centre key", "WARN", "link.centre_public_key is not set: commands (acknowledgements) and "
                     "lists from the centre will be refused", "copy the centre's centre_ed25519.pub.pem (from "
                     "`gatebox centre keygen`) to the box and set link.centre_public_key to its path")  # fmt: skip
    try:
        load_public_key(path)
    except GateboxError as e:
        return Check("centre key", "FAIL", str(e), "copy the centre's public key file again: the PEM file "
                     "centre_ed25519.pub.pem that `gatebox centre keygen` wrote (never the private key)")  # fmt: skip
    return Check("centre key", "OK", f"{path}: an Ed25519 public key")


def check_panic_receivers(config: GateboxConfig, timeout: float = 5.0) -> list[Check]:
    """Each panic receiver's own prerequisites: what it needs to start as `run` starts it."""
    panic = config.panic
    receivers = len(panic.gpio) + len(panic.serial) + bool(panic.http) + bool(panic.mqtt)
    if not receivers:
        return []
    checks = []
    if not panic.devices:
        checks.append(Check("panic", "WARN", f"{receivers} receiver(s) configured but no device registered: `run` "
                            "starts none of them", "register the buttons under panic.devices"))  # fmt: skip
    checks += [check_gpio(receiver) for receiver in panic.gpio]
    for receiver in panic.serial:
        try:
            serial.serial_for_url(receiver.port, baudrate=receiver.baudrate, timeout=0.5).close()
            checks.append(Check(f"panic serial {receiver.port}", "OK", f"{receiver.baudrate} baud"))
        except (serial.SerialException, ValueError) as e:
            checks.append(Check(f"panic serial {receiver.port}", "FAIL", f"cannot open it: {e}",
                                "plug in the radio receiver, or fix panic.serial[].port"))  # fmt: skip
    if panic.http:
        checks.append(check_http_receiver(panic.http))
    if panic.mqtt:
        checks.append(check_mqtt_login("panic mqtt", mqtt_receiver_broker(panic.mqtt), "panic.mqtt", timeout))
    return checks


def check_http_receiver(config: HttpReceiverConfig) -> Check:
    """The IP buttons' token and the address the receiver listens on."""
    try:
        read_token(config)
    except GateboxError as e:
        return Check("panic http", "FAIL", str(e), "write a random token of 16+ characters to that file")
    where = f"{config.host}:{config.port}"
    try:
        with socket.socket(socket.AF_INET6 if ":" in config.host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the receiver's server binds
            probe.bind((config.host, config.port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:  # the running box's own receiver, or another program
            return Check("panic http", "WARN", f"{where} is in use: by this box's running `gatebox run`, or by "
                         "another program (then `run` retries until it is free)",
                         f"if gatebox is not running, stop what listens there (ss -ltnp 'sport = :{config.port}') "
                         "or choose another panic.http.port")  # fmt: skip
        fix = "set panic.http.host to an address of this machine (or 0.0.0.0) and a port above 1023"
        return Check("panic http", "FAIL", f"cannot listen on {where}: {e.strerror or e}", fix)
    return Check("panic http", "OK", f"{where} free; token in {config.token_file}")


def check_gpio(config: GpioReceiverConfig) -> Check:
    """The button's pin can be claimed as an input (gpiozero, with the pin factory it picks here)."""
    name = f"panic gpio {config.pin}"
    try:
        from gpiozero import Button

        Button(config.pin, pull_up=config.pull_up).close()
    except Exception as e:  # gpiozero's errors: no pin factory, no such pin, pin busy, no permission
        return Check(name, "FAIL", f"cannot use the pin: {type(e).__name__}: {e}",
                     "check panic.gpio[].pin (BCM number), that the gatebox user is in the gpio group, and that "
                     "no other program holds the pin (a running gatebox does: stop it first)")  # fmt: skip
    return Check(name, "OK", f"input for {config.device_id}")


def check_cameras(config: GateboxConfig) -> list[Check]:
    if config.cameras:
        return [check_camera(c) for c in config.cameras]
    if config.panic.devices:
        return [Check("cameras", "OK", f"none configured: this box relays panic buttons only "
                      f"({len(config.panic.devices)} device(s)); no face alerts")]  # fmt: skip
    return [Check("cameras", "FAIL", "no camera and no panic button configured: gatebox run refuses to start",
                  "add the gate camera under cameras: (or the panic buttons under panic.devices:)")]  # fmt: skip


def diagnose(config_path: Path | None, data_dir: Path | None) -> list[Check]:
    try:
        config = load_config(config_path)
    except GateboxError as e:
        return [Check("config", "FAIL", str(e).replace("\n", "; "), "fix the fields named above")]
    checks = [Check("config", "OK", f"{config_path or 'built-in defaults'} is valid")]
    data = data_dir or config.data_dir
    if config.cameras:  # a panic-only box loads no model
        checks += check_models(config)
    checks += check_cameras(config)
    checks += [check_centre_key(config), *check_panic_receivers(config)]
    checks += [check_broker(config), check_clock(), check_disk(config, data)]
    if config.cameras:  # lists are matched against faces and plates on cameras
        checks.append(check_lists(config, data))
    return checks


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status:<4}  {c.name:<{width}}  {c.detail}")
        if c.fix:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {c.fix}")
    failed = sum(c.status == "FAIL" for c in checks)
    warned = sum(c.status == "WARN" for c in checks)
    lines.append(f"doctor: {len(checks) - failed - warned} ok, {warned} warning(s), {failed} failure(s)")
    return "\n".join(lines)
