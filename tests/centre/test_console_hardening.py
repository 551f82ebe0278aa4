"""The console's HTTP side under attack (issue 13, items 5, 6, 11, 16, 17, 18): cross-site requests,
oversized and unauthenticated bodies, hostile zips, old bundles that keep removed subjects, the API
schema, failed logins, absurd query parameters and a binary config file.

`gatebox centre serve` runs in its own process on a real mosquitto, with its temporary files in a
folder of the test's own (what it spools of a request shows there); the zip checks also run in
process, on the function the console uses."""

from __future__ import annotations

import io
import select
import socket
import time
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from centre.lists import by_subject, read_bundle
from centre.uploads import ZipLimits, unzip_photos
from edge.protocol.errors import InputError
from tests.conftest import run_cli
from tests.support.broker import Mosquitto
from tests.support.console import CSRF_HEADER, OPERATOR, PASSWORD, ConsoleServer

PROXY_ORIGIN = "https://centre.example"  # the console's address behind its HTTPS proxy (configured)
UPLOAD_MB = 1


@pytest.fixture(scope="module")
def spool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The console's TMPDIR: where a request body it reads would be spooled."""
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(scope="module")
def console(
    tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto, keys: tuple[Path, Path], spool: Path
) -> Iterator[ConsoleServer]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TMPDIR", str(spool))
        server = ConsoleServer(tmp_path_factory.mktemp("console"), broker.port, keys[0], prefix="hardening",
                               max_upload_mb=UPLOAD_MB, allowed_origins=[PROXY_ORIGIN])  # fmt: skip
    yield server
    server.stop()
    log = server.log.read_text()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def api(console: ConsoleServer) -> Iterator[httpx.Client]:
    with closing(console.client()) as client:
        yield client


def plate_csv(*plates: str) -> bytes:
    return ("plate,subject_id,name\n" + "".join(f"{p},{p},car {i}\n" for i, p in enumerate(plates))).encode()


def publish_plates(client: httpx.Client, *plates: str, mode: str = "replace", **headers: str) -> httpx.Response:
    return client.post("/api/lists/plate_watchlist/versions", data={"mode": mode}, headers=headers,
                       files={"plates": ("plates.csv", plate_csv(*plates), "text/csv")})  # fmt: skip


def published_version(api: httpx.Client, list_name: str) -> int | None:
    lists = {item["list"]: item for item in api.get("/api/lists").json()["lists"]}
    return (lists[list_name]["published"] or {}).get("version")


def log_has(console: ConsoleServer, *parts: str) -> bool:
    return any(all(p in line for p in parts) for line in console.log.read_text().splitlines())


# --- item 5: cross-site requests ---------------------------------------------------------------------


def test_a_cross_site_form_post_with_the_operators_cookie_is_refused(console: ConsoleServer,
                                                                      api: httpx.Client) -> None:  # fmt: skip
    # What a page on another port of the same host can send with `no-cors`: the browser attaches the
    # cookie (same site) and an Origin, but no header of its own.
    before = published_version(api, "plate_watchlist")
    with closing(console.client(csrf=False)) as browser:
        browser.cookies = api.cookies
        evil = f"http://127.0.0.1:{console.port + 1}"
        response = publish_plates(browser, "粤B12345", Origin=evil)
        assert response.status_code == 403, response.text
        assert response.json()["detail"]
        # The custom header alone does not do either when the Origin is another one (or null), and
        # neither does a missing Origin with a foreign Referer.
        assert publish_plates(browser, "粤B12345", Origin=evil, **{CSRF_HEADER: "1"}).status_code == 403
        assert publish_plates(browser, "粤B12345", Origin="null", **{CSRF_HEADER: "1"}).status_code == 403
        assert publish_plates(browser, "粤B12345", Referer=f"{evil}/x", **{CSRF_HEADER: "1"}).status_code == 403
        # The console's own origin without the header: still refused (a form can come from anywhere).
        assert publish_plates(browser, "粤B12345", Origin=console.url).status_code == 403
    assert published_version(api, "plate_watchlist") == before
    assert log_has(console, "security", "refused", "/api/lists/plate_watchlist/versions", repr(evil))


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/login", {"name": OPERATOR, "password": PASSWORD}),
        ("/api/logout", None),
        ("/api/events/x/ack", {}),
        ("/api/events/x/close", {}),
        ("/api/lists/plate_watchlist/remove", {"subject_ids": ["粤B12345"]}),
    ],
)
def test_every_state_changing_route_needs_the_csrf_header(console: ConsoleServer, api: httpx.Client, path: str,
                                                           body: dict | None) -> None:  # fmt: skip
    with closing(console.client(csrf=False)) as browser:
        browser.cookies = api.cookies
        assert browser.post(path, json=body).status_code == 403
        assert browser.post(path, json=body, headers={"Origin": "http://localhost:9"}).status_code == 403
    assert api.get("/api/me").status_code == 200  # the logout was refused: the session lives


def test_the_pages_own_origin_and_a_configured_proxy_origin_pass(console: ConsoleServer) -> None:
    for origin in (console.url, PROXY_ORIGIN, f"{PROXY_ORIGIN}:443"):
        with closing(console.client(login=False)) as client:
            response = client.post("/api/login", json={"name": OPERATOR, "password": PASSWORD},
                                   headers={"Origin": origin})  # fmt: skip
            assert response.status_code == 200, (origin, response.text)
            assert client.post("/api/logout", headers={"Referer": f"{origin}/"}).status_code == 200
    with closing(console.client(login=False)) as client:  # same host, other scheme: another origin
        response = client.post("/api/login", json={"name": OPERATOR, "password": PASSWORD},
                               headers={"Origin": "http://centre.example"})  # fmt: skip
        assert response.status_code == 403


# --- item 6: request sizes, checked before the body is read --------------------------------------------


def raw_request(port: int, path: str, headers: dict[str, str], body: Iterable[bytes], chunked: bool = False,
                timeout: float = 10) -> tuple[int, int, bytes]:  # fmt: skip
    """POST `body` (piece by piece) until the console answers; returns its status, how many body bytes
    were sent before the answer, and the answer's body. A console reading a body it should refuse
    unread never answers before the body is all sent."""
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"{CSRF_HEADER}: 1", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()] + (["Transfer-Encoding: chunked"] if chunked else [])
    sent = 0
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        for piece in body:
            # A moment between pieces for the answer: what sits in socket buffers is not what was read.
            if select.select([sock], [], [], 0.02)[0] or time.monotonic() > deadline:
                break  # answered (or closed) already
            try:
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            except OSError:  # the console closed the connection on a body it will not read
                break
            sent += len(piece)
        answer = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            answer += data
    assert answer.startswith(b"HTTP/1.1 "), f"no answer after {sent} body bytes: {answer[:200]!r}"
    head_text, _, content = answer.partition(b"\r\n\r\n")
    return int(head_text.split()[1]), sent, content


def pieces(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


def rss_mb(console: ConsoleServer) -> float:
    status = Path(f"/proc/{console.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


def spooled(spool: Path) -> list[Path]:
    return [p for p in spool.rglob("*") if p.is_file()]


def test_a_huge_login_is_refused_before_it_is_read(console: ConsoleServer) -> None:
    json_type = {"Content-Type": "application/json"}
    status, sent, _ = raw_request(console.port, "/api/login", {**json_type, "Content-Length": str(64 * 2**20)},
                                  pieces(64 * 2**20))  # fmt: skip
    assert status == 413 and sent < 2**20
    memory = rss_mb(console)
    status, sent, _ = raw_request(console.port, "/api/login", json_type, pieces(64 * 2**20), chunked=True)
    assert status == 413 and sent < 2**20  # no length given: counted as it streams, stopped at the limit
    assert rss_mb(console) - memory < 16


def test_an_unauthenticated_upload_is_refused_before_anything_is_spooled(console: ConsoleServer,
                                                                         spool: Path) -> None:  # fmt: skip
    form = {"Content-Type": "multipart/form-data; boundary=b0undary"}
    start = time.monotonic()
    for chunked, headers in ((False, {**form, "Content-Length": str(200 * 2**20)}), (True, form)):
        status, sent, content = raw_request(console.port, "/api/lists/watchlist/versions", headers,
                                            pieces(200 * 2**20), chunked=chunked)  # fmt: skip
        assert status == 401 and sent < 4 * 2**20, (status, sent, content)
        assert spooled(spool) == []
    assert time.monotonic() - start < 10


def test_an_upload_over_the_limit_is_cut_off_as_it_streams(console: ConsoleServer, api: httpx.Client,
                                                           spool: Path) -> None:  # fmt: skip
    cookie = {"Cookie": f"gatebox_session={api.cookies['gatebox_session']}"}
    form = {"Content-Type": "multipart/form-data; boundary=b0undary", **cookie}
    preamble = [b'--b0undary\r\nContent-Disposition: form-data; name="plates"; filename="p.csv"\r\n\r\n']
    status, sent, _ = raw_request(
        console.port,
        "/api/lists/watchlist/versions",
        {**form, "Content-Length": str(200 * 2**20)},
        [*preamble, *pieces(200 * 2**20)],
    )
    assert status == 413 and sent < 2**20
    status, sent, _ = raw_request(console.port, "/api/lists/watchlist/versions", form,
                                  [*preamble, *pieces(200 * 2**20)], chunked=True)  # fmt: skip
    assert status == 413 and UPLOAD_MB * 2**20 <= sent < 8 * UPLOAD_MB * 2**20
    assert spooled(spool) == []  # what was spooled went with the request


def test_json_bodies_are_limited_and_a_refused_login_body_is_not_echoed(api: httpx.Client,
                                                                         console: ConsoleServer) -> None:  # fmt: skip
    assert api.post("/api/events/x/ack", json={"note": "x" * 20_000}).status_code == 413
    with closing(console.client(login=False)) as client:
        response = client.post("/api/login", json={"name": OPERATOR, "password": "hunter2-secret", "admin": True})
        assert response.status_code == 422
        assert "hunter2-secret" not in response.text and "admin" in response.text  # names the field only


# --- item 11: zips -----------------------------------------------------------------------------------------

LIMITS = ZipLimits(total_bytes=4 * 2**20, member_bytes=2**20, members=20, ratio=100)


def make_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def noise(size: int, seed: int = 0) -> bytes:
    return bytes((i * 7919 + seed * 104729) % 251 ^ (i >> 8) % 253 for i in range(size))  # compresses little


@pytest.mark.parametrize("member", ["/gatebox-i13-{tag}.jpg", "../gatebox-i13-{tag}.jpg",
                                    "a/../../gatebox-i13-{tag}.jpg", "subject/../../gatebox-i13-{tag}.jpg",
                                    "C:\\gatebox-i13-{tag}\\x.jpg"])  # fmt: skip
def test_a_zip_member_cannot_escape_the_upload_folder(tmp_path: Path, member: str) -> None:
    tag = uuid.uuid4().hex
    name = member.format(tag=tag)
    out = tmp_path / "deep" / "photos"
    escapes = [Path("/") / f"gatebox-i13-{tag}.jpg", tmp_path / "deep" / f"gatebox-i13-{tag}.jpg",
               tmp_path / f"gatebox-i13-{tag}.jpg"]  # fmt: skip
    try:
        with pytest.raises(InputError, match="unsafe"):
            unzip_photos(make_zip({name: noise(100), "kit/kit1.jpg": noise(100)}), out, LIMITS)
        assert not any(p.exists() for p in escapes)
    finally:
        for p in escapes:
            p.unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({f"s{i}/p.jpg": noise(10, i) for i in range(21)}, "members"),  # too many entries
        ({"s/p.jpg": b"\0" * (2**20 // 2)}, "ratio"),  # one member that inflates 1,000-fold
        ({f"s{i}/p.jpg": noise(900_000, i) for i in range(5)}, "MB unpacked"),  # too much in all
        ({"s/p.jpg": noise(2**20 + 1)}, "larger than"),  # one photo too large
    ],
)
def test_a_zip_bomb_is_refused_from_its_directory_before_anything_is_written(tmp_path: Path, members: dict,
                                                                             message: str) -> None:  # fmt: skip
    out = tmp_path / "photos"
    with pytest.raises(InputError, match=message):
        unzip_photos(make_zip(members), out, LIMITS)
    assert not out.exists() or not any(out.rglob("*"))


def test_a_member_whose_directory_understates_its_size_is_not_trusted(tmp_path: Path) -> None:
    data = bytearray(make_zip({"s/p.jpg": noise(3 * 2**20)}, zipfile.ZIP_STORED))
    directory = data.rfind(b"PK\x01\x02")
    data[directory + 20 : directory + 28] = (1000).to_bytes(4, "little") * 2  # compressed and full size
    out = tmp_path / "photos"
    with pytest.raises(InputError):
        unzip_photos(bytes(data), out, LIMITS)
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) <= LIMITS.member_bytes


def test_a_good_zip_is_unpacked_by_subject(tmp_path: Path) -> None:
    out = unzip_photos(make_zip({"upload/kit/1.jpg": b"a", "upload/kit/2.JPG": b"b", "rose/1.png": b"c",
                                 "__MACOSX/._x.jpg": b"", "notes.txt": b"", "kit/.hidden.jpg": b""}),
                       tmp_path / "photos", LIMITS)  # fmt: skip
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "kit/1.jpg", "kit/2.JPG", "rose/1.png"]  # fmt: skip


def test_a_zip_bomb_upload_is_refused_quickly(api: httpx.Client) -> None:
    bomb = make_zip({f"s{i}/p.jpg": b"\0" * (20 * 2**20) for i in range(15)})  # 300 MB of zeros, ~300 kB
    start = time.monotonic()
    response = api.post("/api/lists/watchlist/versions", data={"mode": "add"},
                        files={"photos": ("bomb.zip", bomb, "application/zip")})  # fmt: skip
    assert response.status_code == 400 and "ratio" in response.json()["detail"], response.text
    assert time.monotonic() - start < 5


def crc_broken_zip() -> bytes:
    """A stored member with a byte flipped: its CRC fails when it is read."""
    data = bytearray(make_zip({"s/p.jpg": noise(5000)}, zipfile.ZIP_STORED))
    data[100] ^= 0xFF
    return bytes(data)


ONE_PHOTO = make_zip({"s/p.jpg": noise(100)})


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"photos": ("crc.zip", crc_broken_zip(), "application/zip")}, "s/p.jpg"),
        ({"plates": ("p.csv", "plate,name\n粤B12345,车\n".encode("gb18030"), "text/csv")}, "UTF-8"),
        ({"photos": ("p.zip", ONE_PHOTO, "application/zip"),
          "meta": ("m.csv", "subject_id,name\ns,王\n".encode("gb18030"), "text/csv")}, "UTF-8"),
        ({"photos": ("p.zip", ONE_PHOTO, "application/zip"),
          "meta": ("m.csv", b"name,priority\nx,1\n", "text/csv")}, "subject_id"),
        ({"photos": ("p.zip", ONE_PHOTO, "application/zip"),
          "meta": ("m.csv", b"subject_id,priority\ns,high\n", "text/csv")}, "meta.csv:2"),
    ],
)  # fmt: skip
def test_broken_uploads_are_400_not_500(api: httpx.Client, files: dict, message: str) -> None:
    list_name = "plate_watchlist" if "plates" in files else "watchlist"  # what each list's kind takes
    response = api.post(f"/api/lists/{list_name}/versions", data={"mode": "add"}, files=files)
    assert response.status_code == 400, response.text
    assert message in response.json()["detail"]


# --- item 16: old bundles ----------------------------------------------------------------------------------


def test_a_removed_subject_is_in_no_bundle_left_on_disk(api: httpx.Client, console: ConsoleServer) -> None:
    assert publish_plates(api, "粤B12345", "京A88888").status_code == 201
    assert publish_plates(api, "沪C55555", mode="add").status_code == 201
    removed = api.post("/api/lists/plate_watchlist/remove", json={"subject_ids": ["京A88888"]})
    assert removed.status_code == 201, removed.text
    bundles = sorted((console.db.parent / "lists" / "plate_watchlist").iterdir())
    assert [p.name for p in bundles] == [f"v{removed.json()['version']}.gbl"]  # the base of the next one
    for bundle in bundles:
        _, subjects = by_subject(read_bundle(bundle)[2])
        assert "粤B12345" in subjects and "京A88888" not in subjects
    # ... and the next version still builds on it.
    assert publish_plates(api, "粤B12345", mode="add").json()["entries"] == 2


# --- item 17: the API's schema -------------------------------------------------------------------------


def test_the_api_schema_needs_a_session_and_there_are_no_docs(console: ConsoleServer, api: httpx.Client) -> None:
    with closing(console.client(login=False)) as anonymous:
        assert anonymous.get("/api/openapi.json").status_code == 401
        for path in ("/docs", "/redoc", "/openapi.json", "/api/docs"):
            assert anonymous.get(path).status_code in (401, 404), path
    schema = api.get("/api/openapi.json")
    assert schema.status_code == 200 and "/api/events" in schema.json()["paths"]


# --- item 18: failed logins logged, bounded parameters, a binary config ---------------------------------


def test_failed_logins_and_the_pause_are_logged_without_the_password(console: ConsoleServer) -> None:
    name = f"eve-{uuid.uuid4().hex[:8]}"
    with closing(console.client(login=False)) as client:
        statuses = [client.post("/api/login", json={"name": name, "password": f"pw-secret-{i}"}).status_code
                    for i in range(6)]  # fmt: skip
    assert statuses == [401] * 5 + [429]
    assert log_has(console, "failed login", repr(name), "127.0.0.1")
    assert log_has(console, "paused", repr(name), "127.0.0.1")
    assert "pw-secret" not in console.log.read_text()


@pytest.mark.parametrize(
    "params",
    [
        {"offset": "9223372036854775807"},
        {"offset": str(10**30)},
        {"offset": "-1"},
        {"limit": "-5"},
        {"limit": "9223372036854775807"},
        {"site": "s" * 1000},
    ],
)
def test_absurd_feed_parameters_are_4xx(api: httpx.Client, params: dict) -> None:
    response = api.get("/api/events", params=params)
    assert response.status_code == 422, response.text


@pytest.mark.slow  # the CLI
def test_a_binary_config_file_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "centre.yaml"
    config.write_bytes(b"\x80\x81\xfe\xffcentre:\x00\x9c")
    result = run_cli("--config", config, "centre", "operator", "list", timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("gatebox: error:") and str(config) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
