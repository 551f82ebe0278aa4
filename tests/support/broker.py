"""A real mosquitto broker on a free loopback port, started and stopped by the tests."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from pathlib import Path

from tests.support.tls import Certificates
from tests.support.waiting import wait_listening

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto")


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or next((p for p in MOSQUITTO_PATHS if Path(p).exists()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


REPO = Path(__file__).resolve().parent.parent.parent


def _password_file(workdir: Path, passwords: dict[str, str]) -> Path:
    path = workdir / "passwd"
    path.write_text("")
    for user, password in passwords.items():
        subprocess.run(["mosquitto_passwd", "-b", str(path), user, password], check=True)
    return path


class Mosquitto:
    """Plain (anonymous) by default; plain with `passwords` alone: only those logins, no ACL; with
    `secure`, the project's own config/mosquitto setup: TLS only, a password per user,
    config/mosquitto/acl (or `acl`) and the shipped limits. `port` is the boxes' listener (client id =
    login) and `centre_port` the centre's own (client ids as chosen); without `secure` both are the one
    listener."""

    def __init__(
        self, workdir: Path, port: int | None = None, secure: Certificates | None = None,
        passwords: dict[str, str] | None = None, centre_port: int | None = None, acl: Path | None = None,
    ) -> None:  # fmt: skip
        binary = find_mosquitto()
        if binary is None:
            raise RuntimeError("mosquitto is not installed (./scripts/test installs it when run as root)")
        self.binary = binary
        self.port = port or free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        # `user root`: as root mosquitto would otherwise drop to user `mosquitto` and lose access
        # to files in the test's tmp dir.
        # max_queued_messages as in config/mosquitto/gatebox.conf: mosquitto's default (1000) drops QoS 1
        # messages for a subscriber that falls that far behind.
        common = (
            "user root\npersistence true\nmax_queued_messages 100000\nset_tcp_nodelay true\n"
            f"persistence_location {workdir}/\nautosave_interval 1\nlog_dest file {workdir}/mosquitto.log\n"
        )
        if secure is None:
            self.centre_port = self.port
            if passwords is None:
                self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{common}")
            else:
                self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous false\n"
                                     f"password_file {_password_file(workdir, passwords)}\n{common}")  # fmt: skip
        else:
            self.centre_port = centre_port or free_port()
            self.password_file = _password_file(workdir, passwords or {})
            self.conf.write_text(self._secure_config(secure, acl) + common)
        self.process: subprocess.Popen[bytes] | None = None

    def _secure_config(self, secure: Certificates, acl: Path | None) -> str:
        """config/mosquitto/gatebox.conf line by line, in its order (listener options belong to the
        listener line above them): its listeners moved to loopback test ports, its paths to the test's."""
        ports = iter([self.port, self.centre_port])
        paths = {"password_file": self.password_file, "acl_file": acl or REPO / "config" / "mosquitto" / "acl",
                 "cafile": secure.ca, "certfile": secure.server_cert, "keyfile": secure.server_key}  # fmt: skip
        lines = []
        for line in (REPO / "config" / "mosquitto" / "gatebox.conf").read_text().splitlines():
            option = line.split(" ")[0]
            if option == "listener":
                lines.append(f"listener {next(ports)} 127.0.0.1")
            elif option in paths:
                lines.append(f"{option} {paths[option]}")
            elif option != "persistence_location":
                lines.append(line)
        if next(ports, None) is not None:  # a config with one listener serves the centre there too
            self.centre_port = self.port
        return "\n".join(lines) + "\n"

    def set_password(self, user: str, password: str) -> None:
        """Add or change a login (secure only); a running broker sees it after `reload()`."""
        subprocess.run(["mosquitto_passwd", "-b", str(self.password_file), user, password], check=True)

    def delete_login(self, user: str) -> None:
        """`mosquitto_passwd -D`, as the README says to revoke a box; then `reload()`."""
        subprocess.run(["mosquitto_passwd", "-D", str(self.password_file), user], check=True)

    def reload(self) -> None:
        """SIGHUP: mosquitto re-reads its password file and ACL, as `systemctl reload mosquitto` does."""
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def start(self) -> Mosquitto:
        process = self.process = subprocess.Popen([self.binary, "-c", str(self.conf)], stderr=subprocess.PIPE)
        stderr = process.stderr
        assert stderr is not None  # stderr=PIPE
        for port in dict.fromkeys((self.port, self.centre_port)):  # every listener: they open one after another
            wait_listening(process, port, 10, "mosquitto", lambda: stderr.read().decode())
        return self

    def kill(self) -> None:
        """SIGKILL: no goodbye, no final save (autosave_interval 1 keeps what was saved)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
