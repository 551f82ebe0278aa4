"""District brokers bridged to the centre's broker, as config/mosquitto/ sets them up: the templates
(district.conf, centre-bridges.conf, acl-district) rendered for loopback test ports and the test's
paths, and the bridges' own certificate authority. One source: the tests and the city benchmark run
the shipped templates, changed only where a test must (ports, paths, a short reconnect backoff)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.broker import REPO, Mosquitto, free_port
from tests.support.tls import Certificates, make_certificates
from tests.support.waiting import wait_listening

MOSQUITTO_CONFIG = REPO / "config" / "mosquitto"
DISTRICT_TEMPLATE = MOSQUITTO_CONFIG / "district.conf"
CENTRE_BRIDGES_TEMPLATE = MOSQUITTO_CONFIG / "centre-bridges.conf"
ACL_DISTRICT_TEMPLATE = MOSQUITTO_CONFIG / "acl-district"
# The templates' placeholders: a setting holding SITE is written once per site of the district.
DISTRICT, SITE, CENTRE_HOST = "DISTRICT", "SITE", "CENTRE_HOST"
# Reconnect at once and back off to 2 s (district.conf: 2 s, then up to 30 s): a test restores a cut
# and waits for the bridge; it should not wait out a production backoff.
TEST_RESTART_TIMEOUT = "restart_timeout 1 2"


def fill(template: str, district: str, sites: Sequence[str]) -> str:
    """The template with DISTRICT replaced and each setting (not comment) holding SITE written once per site."""
    lines: list[str] = []
    for line in template.splitlines():
        if SITE in line and not line.startswith("#"):
            lines += [line.replace(SITE, site) for site in sites]
        else:
            lines.append(line)
    return "\n".join(lines).replace(DISTRICT, district) + "\n"


def centre_acl(path: Path, districts: Mapping[str, Sequence[str]]) -> Path:
    """config/mosquitto/acl with one acl-district block per district (name -> its sites), at `path`."""
    blocks = [fill(ACL_DISTRICT_TEMPLATE.read_text(), name, sites) for name, sites in districts.items()]
    path.write_text((MOSQUITTO_CONFIG / "acl").read_text() + "\n" + "\n".join(blocks))
    return path


@dataclass(frozen=True)
class ClientCertificate:
    cert: Path
    key: Path


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())  # fmt: skip


class BridgeAuthority:
    """The bridges' own CA (centre-bridges.conf's `cafile`): it signs one client certificate per
    district, whose CN is the district's login at the centre."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gatebox bridges test CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        ca = (
            x509.CertificateBuilder().subject_name(self._name).issuer_name(self._name)
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )  # fmt: skip
        self.ca = directory / "bridge-ca.crt"
        self.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def issue(self, common_name: str) -> ClientCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .sign(self._key, hashes.SHA256())
        )  # fmt: skip
        name = common_name.replace("/", "_")
        paths = ClientCertificate(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths.key.write_bytes(_pem_key(key))
        return paths


def _test_lines(workdir: Path) -> str:
    """What every test broker adds (tests/support/broker.py says why): run as root, log to a file."""
    return f"user root\nlog_dest file {workdir}/mosquitto.log\n"


def _localise(template: str, listener_ports: Sequence[int], paths: Mapping[str, Path | str],
              replace: Mapping[str, str]) -> str:  # fmt: skip
    """A template's lines with its listeners on loopback `listener_ports` (in order), the options in
    `paths` pointing at the test's files, and whole lines starting with a key of `replace` replaced."""
    ports = iter(listener_ports)
    lines = []
    for line in template.splitlines():
        option = line.split(" ")[0]
        if option == "listener":
            lines.append(f"listener {next(ports)} 127.0.0.1")
        elif option in paths:
            lines.append(f"{option} {paths[option]}")
        elif option in replace:
            lines.append(replace[option])
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


class CentreBroker(Mosquitto):
    """The centre's broker: config/mosquitto/gatebox.conf as Mosquitto(secure=...) runs it (boxes on
    `port`, the centre's processes on `centre_port`) plus centre-bridges.conf's listener on
    `bridge_port`, with the acl and one acl-district block per district."""

    def __init__(self, workdir: Path, server: Certificates, bridges: BridgeAuthority, passwords: dict[str, str],
                 districts: Mapping[str, Sequence[str]], bridge_port: int | None = None) -> None:  # fmt: skip
        workdir.mkdir(parents=True, exist_ok=True)
        acl = centre_acl(workdir / "acl", districts)
        super().__init__(workdir, secure=server, passwords=passwords, acl=acl)
        self.bridge_port = bridge_port or free_port()
        paths = {"cafile": bridges.ca, "certfile": server.server_cert, "keyfile": server.server_key}
        listener = _localise(CENTRE_BRIDGES_TEMPLATE.read_text(), [self.bridge_port], paths, {})
        with self.conf.open("a") as conf:
            conf.write(listener)

    def start(self) -> CentreBroker:
        super().start()
        process, stderr = self.process, self.process.stderr if self.process else None
        assert process is not None and stderr is not None
        wait_listening(process, self.bridge_port, 10, "mosquitto", lambda: stderr.read().decode())
        return self


class DistrictBroker(Mosquitto):
    """A district's broker from config/mosquitto/district.conf: its boxes on `port` (TLS, a login per
    box, the acl), bridged over TLS to `centre`'s bridge listener with `certificate` (CN: the district's
    name). `open_boxes`: the boxes' listener plain and anonymous instead (the city benchmark's simulated
    boxes have neither TLS nor logins; the bridge stays as shipped). `bridge_port`: where the bridge
    connects instead of the centre's bridge listener (a link the benchmark can cut); `restart_timeout`:
    the bridge's reconnect backoff line (None: the template's own)."""

    def __init__(self, workdir: Path, name: str, sites: Sequence[str], centre: CentreBroker, server: Certificates,
                 certificate: ClientCertificate, passwords: dict[str, str] | None = None, port: int | None = None,
                 open_boxes: bool = False, bridge_port: int | None = None,
                 restart_timeout: str | None = TEST_RESTART_TIMEOUT) -> None:  # fmt: skip
        super().__init__(workdir, port=port, passwords=None if open_boxes else passwords or {})
        self.name, self.sites = name, list(sites)
        paths: dict[str, Path | str] = {
            "acl_file": MOSQUITTO_CONFIG / "acl", "cafile": server.ca, "certfile": server.server_cert,
            "keyfile": server.server_key, "persistence_location": f"{workdir}/", "bridge_cafile": server.ca,
            "bridge_certfile": certificate.cert, "bridge_keyfile": certificate.key,
        }  # fmt: skip
        if not open_boxes:
            paths["password_file"] = workdir / "passwd"  # Mosquitto(passwords=...) wrote it
        replace = {"address": f"address 127.0.0.1:{bridge_port or centre.bridge_port}"}
        if restart_timeout is not None:
            replace["restart_timeout"] = restart_timeout
        text = _localise(fill(DISTRICT_TEMPLATE.read_text(), name, sites), [self.port], paths, replace)
        if open_boxes:
            dropped = ("password_file", "acl_file", "cafile", "certfile", "keyfile", "tls_version",
                       "use_username_as_clientid")  # fmt: skip
            text = "".join(line + "\n" for line in text.splitlines() if line.split(" ")[0] not in dropped)
            text = text.replace("allow_anonymous false", "allow_anonymous true")
        self.password_file = workdir / "passwd"
        self.conf.write_text(text + _test_lines(workdir))


def certificates(directory: Path) -> tuple[Certificates, BridgeAuthority]:
    """The brokers' server certificates (one CA, `localhost` and 127.0.0.1) and the bridges' CA."""
    return make_certificates(directory / "server"), BridgeAuthority(directory / "bridges")
