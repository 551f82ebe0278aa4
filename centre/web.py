"""`gatebox centre serve`: the operators' web console (FastAPI), one page over a small JSON API.

Reads go straight to the store; actions (acks, list versions) go through the Console. Every `/api`
route but login needs an operator's session cookie, snapshots and the API's schema included; every
state-changing one the `X-Gatebox-CSRF` header from the console's own origin, and every body stays
under its route's limit (`centre.guard`, before any body is read). The page learns of changes
over server-sent events (`/api/stream`) and refetches what changed."""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterable, Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Literal

import uvicorn
from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, Response, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from centre.auth import new_session_token, token_hash, verify_password
from centre.config import CentreConfig, ConsoleConfig
from centre.console import Conflict, Console, NotFound, Unavailable
from centre.export import csv_lines
from centre.guard import RequestGuard
from centre.store import AmbiguousEvent, BoxRow, EventFilter, HistoryFilter
from edge.protocol.errors import GateboxError

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "gatebox_session"
LOGIN_ATTEMPTS, LOGIN_WINDOW_S = 5, 300  # failed logins per operator name before a pause
LOGIN_BODY_BYTES = 4 * 1024  # a name and a password
JSON_BODY_BYTES = 16 * 1024  # an ack's note (1,000 characters of up to 4 bytes each, escaped)
REMOVAL_BODY_BYTES = 128 * 1024  # up to 1,000 subject ids of up to 64 characters
FORM_OVERHEAD_BYTES = 64 * 1024  # an upload's multipart boundaries and part headers, beyond its files
UPLOAD_PATH = re.compile(r"/api/lists/[^/]+/versions")
REMOVAL_PATH = re.compile(r"/api/lists/[^/]+/remove")
MAX_OFFSET = 10_000  # the feed walks offset + limit rows: deeper paging is a way to make it slow
EventKind = Literal["alert", "panic", "face_match", "elder_leaving", "plate_match", "long_press", "cancel"]
EventState = Literal["new", "acked", "closed", "open"]
EXPORT_MAX_EVENTS = 100_000  # one CSV; narrow the dates for more
CURSOR = re.compile(r"^(\d{1,12}(?:\.\d{1,9})?):(\d{1,19})$")  # `received_at:rowid` of the last event given
PLAN_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"  # an SVG plan opened on its own
PAGE_POLICY = (
    "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'"
)


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class Action(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=1000, description="What was done (patrol sent, family called...).")


class PreviewAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    camera: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$", description="One camera; none: every camera.")


class Removal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=1000)


def session_operator(connection: HTTPConnection) -> str | None:
    """The operator whose live session the request carries, if any."""
    token = connection.cookies.get(COOKIE)
    return connection.app.state.console.store.session_operator(token_hash(token)) if token else None


def current_operator(request: Request) -> str:
    """The logged-in operator's name; 401 without a live session."""
    name = session_operator(request)
    if name is None:
        raise HTTPException(401, "log in first")
    return name


Operator = Annotated[str, Depends(current_operator)]


def history_filter(
    subject: Annotated[str | None, Query(max_length=64, description="Part of a subject id or name")] = None,
    list_name: Annotated[str | None, Query(alias="list", max_length=64)] = None,
    site: Annotated[str | None, Query(max_length=64)] = None,
    box_id: Annotated[str | None, Query(max_length=64)] = None,
    gate: Annotated[str | None, Query(max_length=100)] = None,
    kind: EventKind | None = None,
    state: EventState | None = None,
    since: Annotated[datetime | None, Query(description="Received at or after (ISO 8601; UTC if no zone)")] = None,
    until: Annotated[datetime | None, Query(description="Received before (ISO 8601; UTC if no zone)")] = None,
) -> HistoryFilter:
    return HistoryFilter(subject=subject or None, list_name=list_name or None, site=site or None,
                         box_id=box_id or None, gate=gate or None, kind=kind, state=state,
                         since=_epoch(since), until=_epoch(until))  # fmt: skip


Search = Annotated[HistoryFilter, Depends(history_filter)]  # a history search, from the query


@contextmanager
def _as_http() -> Iterator[None]:
    """The console's exceptions as HTTP answers; anything else is a bug (500, logged)."""
    try:
        yield
    except NotFound as e:
        raise HTTPException(404, f"unknown: {e}") from None
    except (Conflict, AmbiguousEvent) as e:
        raise HTTPException(409, str(e)) from None
    except Unavailable as e:
        raise HTTPException(503, str(e)) from None
    except GateboxError as e:
        raise HTTPException(400, str(e)) from None


def create_app(console: Console) -> FastAPI:
    settings = console.settings
    store = console.store
    # The schema is served below, to logged-in operators only; no docs pages.
    app = FastAPI(title="gatebox centre console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = console
    max_upload = settings.max_upload_mb * 2**20

    def body_limit(path: str) -> int:
        if path == "/api/login":
            return LOGIN_BODY_BYTES
        if UPLOAD_PATH.fullmatch(path):
            return max_upload + FORM_OVERHEAD_BYTES
        if REMOVAL_PATH.fullmatch(path):
            return REMOVAL_BODY_BYTES
        return JSON_BODY_BYTES

    app.add_middleware(
        RequestGuard,
        allowed_origins=settings.allowed_origins,
        body_limit=body_limit,
        needs_session=lambda path: path.startswith("/api/") and path != "/api/login",
        has_session=lambda connection: session_operator(connection) is not None,
    )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        """Where and what, never the input itself (a password, or megabytes of a body, echoed back)."""
        detail = [{key: e[key] for key in ("type", "loc", "msg") if key in e} for e in error.errors()]
        return JSONResponse({"detail": jsonable_encoder(detail)}, 422)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # Not `no-referrer`: with it a browser sends `Origin: null` on the page's own POSTs, and the
        # guard refuses those.
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    failures: dict[str, deque[float]] = defaultdict(deque)  # name -> recent failed logins

    @app.post("/api/login")
    def login(body: Login, request: Request, response: Response) -> dict[str, str]:
        client = request.client.host if request.client else "?"
        cutoff = time.monotonic() - LOGIN_WINDOW_S
        if len(failures) > 10_000:  # names sprayed by a scanner: forget the ones whose window passed
            for stale in [n for n, times in failures.items() if not times or times[-1] < cutoff]:
                del failures[stale]
        recent = failures[body.name]
        while recent and recent[0] < cutoff:
            recent.popleft()
        if len(recent) >= LOGIN_ATTEMPTS:
            raise HTTPException(429, f"too many failed logins for {body.name}; wait {LOGIN_WINDOW_S // 60} minutes")
        if not verify_password(body.password, store.operator_password(body.name)):
            recent.append(time.monotonic())
            log.warning("security: failed login for %r from %s", body.name, client)
            if len(recent) == LOGIN_ATTEMPTS:
                log.warning("security: logins for %r paused for %d minutes after %d failures (the last from %s)",
                            body.name, LOGIN_WINDOW_S // 60, LOGIN_ATTEMPTS, client)  # fmt: skip
            raise HTTPException(401, "wrong name or password")
        recent.clear()
        token = new_session_token()
        store.start_session(token_hash(token), body.name, time.time() + settings.session_hours * 3600)
        response.set_cookie(COOKIE, token, max_age=int(settings.session_hours * 3600), httponly=True,
                            samesite="strict", secure=settings.secure_cookie)  # fmt: skip
        return {"name": body.name}

    @app.post("/api/logout")
    def logout(request: Request, response: Response, name: Operator) -> dict[str, str]:
        store.end_session(token_hash(request.cookies[COOKIE]))
        response.delete_cookie(COOKIE)
        return {"name": name}

    @app.get("/api/me")
    def me(name: Operator) -> dict[str, object]:
        return {"name": name, "broker_connected": console.broker_connected, "receiving": console.receiving,
                "lists": [{"list": name, "kind": kind} for name, kind in console.config.lists.items()],
                "ack_resend_after_s": settings.ack_resend_after_s,
                "group_window_s": settings.group_window_s}  # fmt: skip

    @app.get("/api/events")
    def events(
        name: Operator,
        site: Annotated[str | None, Query(max_length=64)] = None,
        box_id: Annotated[str | None, Query(max_length=64)] = None,
        kind: EventKind | None = None,
        state: EventState | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> dict[str, object]:
        where = EventFilter(site=site, box_id=box_id, kind=kind, state=state, limit=limit, offset=offset)
        return {"events": console.describe(store.events(where))}

    @app.get("/api/history")
    def history(
        name: Operator,
        where: Search,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        before: Annotated[str | None, Query(max_length=40, description="`next` of the page before")] = None,
    ) -> dict[str, object]:
        cursor = None
        if before:
            if not (parts := CURSOR.fullmatch(before)):
                raise HTTPException(422, "before: give back the `next` of the page before")
            cursor = (float(parts[1]), int(parts[2]))
        found, after = store.history(where, limit, cursor)
        return {"events": console.describe(found), "next": None if after is None else f"{after[0]!r}:{after[1]}"}

    @app.get("/api/history.csv")
    def history_csv(name: Operator, where: Search) -> StreamingResponse:
        count = store.count_history(where)
        if count > EXPORT_MAX_EVENTS:
            raise HTTPException(400, f"{count} events match, over {EXPORT_MAX_EVENTS} in one file: narrow the dates")
        rows = (event for event in console.describe_each(store.history_with_actions(where)))
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        return StreamingResponse(csv_lines(rows), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="gatebox-events-{stamp}.csv"'})  # fmt: skip

    # `site` and `box_id` say whose event is meant; needed only when several boxes sent the id (409 without).
    @app.get("/api/events/{event_id}")
    def event(event_id: str, name: Operator, site: str | None = None, box_id: str | None = None) -> dict[str, object]:
        with _as_http():
            found = store.event(event_id, site, box_id)
        if found is None:
            raise HTTPException(404, f"unknown event {event_id}")
        return console.describe([found])[0]

    @app.get("/api/events/{event_id}/snapshot.jpg")
    def snapshot(event_id: str, name: Operator, site: str | None = None, box_id: str | None = None) -> Response:
        with _as_http():
            jpeg = store.snapshot(event_id, site, box_id)
        if not jpeg:
            raise HTTPException(404, f"no snapshot for {event_id}")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/api/subjects/{list_name}/{subject_id}/reference.jpg")
    def reference(list_name: str, subject_id: str, name: Operator) -> Response:
        jpeg = store.reference(list_name, subject_id)
        if not jpeg:
            raise HTTPException(404, f"no reference photo of {subject_id} on {list_name}")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=600"})

    @app.get("/api/map")
    def site_map(name: Operator) -> dict[str, object]:
        return console.site_map()

    @app.get("/api/map/{site}/plan")
    def site_plan(site: str, name: Operator) -> FileResponse:
        plan = settings.site_plans.get(site)
        if plan is None or not plan.image.is_file():
            raise HTTPException(404, f"no plan for {site}")
        return FileResponse(plan.image, headers={"Cache-Control": "private, max-age=600",
                                                 "Content-Security-Policy": PLAN_POLICY})  # fmt: skip

    @app.post("/api/events/{event_id}/ack", status_code=202)
    def ack(event_id: str, body: Action, name: Operator, site: str | None = None,
            box_id: str | None = None) -> dict[str, object]:  # fmt: skip
        with _as_http():
            return console.act(event_id, "acked", body.note, name, site, box_id)

    @app.post("/api/events/{event_id}/close", status_code=202)
    def close(event_id: str, body: Action, name: Operator, site: str | None = None,
              box_id: str | None = None) -> dict[str, object]:  # fmt: skip
        with _as_http():
            return console.act(event_id, "closed", body.note, name, site, box_id)

    @app.get("/api/boxes")
    def boxes(name: Operator) -> dict[str, object]:
        now = time.time()
        return {"boxes": [_box_view(b, now, settings.silent_after_s) for b in store.boxes()],
                "silent_after_s": settings.silent_after_s}  # fmt: skip

    @app.post("/api/boxes/{site}/{box_id}/preview", status_code=202)
    def ask_preview(site: str, box_id: str, body: PreviewAsk, name: Operator) -> dict[str, object]:
        """Ask the box for a camera preview; it arrives later (a `previews` change on the stream)."""
        with _as_http():
            return console.request_preview(site, box_id, body.camera, name)

    @app.get("/api/boxes/{site}/{box_id}/previews")
    def box_previews(site: str, box_id: str, name: Operator) -> dict[str, object]:
        return {"previews": [p.view() for p in console.previews.of_box(site, box_id)]}

    @app.get("/api/boxes/{site}/{box_id}/previews/{camera}.jpg")
    def preview_image(site: str, box_id: str, camera: str, name: Operator) -> Response:
        held = console.previews.image(site, box_id, camera)
        if held is None or held.jpeg is None:
            raise HTTPException(404, f"no preview of {camera} from {site}/{box_id}")
        return Response(held.jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, no-cache"})

    from centre.passages_api import passage_routes  # the passage log's own module

    app.include_router(passage_routes(store.passages, current_operator))

    @app.get("/api/lists")
    def lists(name: Operator) -> dict[str, object]:
        return {"lists": console.lists()}

    @app.post("/api/lists/{list_name}/versions", status_code=201)
    async def new_version(
        list_name: str,
        name: Operator,
        mode: Annotated[Literal["add", "replace"], Form()] = "add",
        photos: Annotated[UploadFile | None, File(description="zip: one folder of photos per subject")] = None,
        plates: Annotated[UploadFile | None, File(description="CSV: plate[,subject_id,name,...]")] = None,
        meta: Annotated[UploadFile | None, File(description="CSV: subject_id,name,category,priority,...")] = None,
    ) -> dict[str, object]:
        uploads = {}
        for field, upload in (("photos_zip", photos), ("plates_csv", plates), ("meta_csv", meta)):
            if upload is not None and upload.filename:
                data = await upload.read(max_upload + 1)
                if len(data) > max_upload:
                    raise HTTPException(413, f"{upload.filename} is larger than {settings.max_upload_mb} MB")
                uploads[field] = data
        with _as_http():
            return await run_in_threadpool(console.publish_upload, list_name, name, mode, **uploads)

    @app.post("/api/lists/{list_name}/remove", status_code=201)
    def remove(list_name: str, body: Removal, name: Operator) -> dict[str, object]:
        with _as_http():
            return console.remove_subjects(list_name, body.subject_ids, name)

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi(name: Operator) -> dict[str, object]:
        return app.openapi()

    @app.get("/api/stream", response_class=EventSourceResponse)
    async def stream(name: Operator) -> AsyncIterable[ServerSentEvent]:
        page = console.changes.subscribe()
        try:
            yield ServerSentEvent(event="hello", data={"name": name})
            while (change := await page.get()) is not None:
                yield ServerSentEvent(event="change", data=change)
        finally:
            console.changes.unsubscribe(page)

    return app


def _box_view(box: BoxRow, now: float, silent_after_s: float) -> dict[str, object]:
    """One box's health for the page: status, heartbeat age, cameras' fps, outbox, list versions."""
    beat = box["heartbeat"] if isinstance(box["heartbeat"], dict) else {}
    last_seen = box["last_seen"] if isinstance(box["last_seen"], float) else None
    age = None if last_seen is None else round(now - last_seen, 1)
    if box["online"] is False:
        status = "offline"  # the box said goodbye, or the broker published its will
    elif age is None or age > silent_after_s:
        status = "silent"
    else:
        status = "online"
    # The store keeps only heartbeats its model passed; still, nothing a box wrote may break this page.
    outbox, cameras, receivers = beat.get("outbox"), beat.get("cameras"), beat.get("panic_receivers")
    outbox = outbox if isinstance(outbox, dict) else {}
    cameras = cameras if isinstance(cameras, dict) else {}
    receivers = receivers if isinstance(receivers, dict) else {}
    return {
        "site": box["site"], "box_id": box["box_id"], "status": status, "last_seen_age_s": age,
        "version": beat.get("version"), "uptime_s": beat.get("uptime_s"),
        "cameras": {n: {"fps": c.get("fps"), "connected": c.get("connected")}
                    for n, c in cameras.items() if isinstance(c, dict)},
        "outbox_depth": outbox.get("depth"), "outbox_oldest_s": outbox.get("oldest_unconfirmed_age_s"),
        "lists": box["lists"],
        # Panic receivers (serial radio, HTTP, GPIO, MQTT bridge): `ok`, `down` (since when, why) or `starting`.
        "panic_receivers": {n: _receiver_view(r) for n, r in receivers.items() if isinstance(r, dict)},
    }  # fmt: skip


def _receiver_view(report: dict[str, object]) -> dict[str, object]:
    connected, error = report.get("connected"), report.get("error")
    state = "ok" if connected else "down" if error else "starting"  # not yet listening, never failed
    return {"state": state, "error": error, "down_since": report.get("down_since"),
            "reconnects": report.get("reconnects")}  # fmt: skip


def _epoch(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def serve(config: CentreConfig, settings: ConsoleConfig, key_path: Path | None) -> None:
    """Run the console until SIGINT/SIGTERM."""
    console = Console(config, settings, key_path)
    try:
        server = uvicorn.Server(uvicorn.Config(
            create_app(console), host=settings.host, port=settings.port, log_level="warning",
            timeout_graceful_shutdown=3, proxy_headers=False,
        ))  # fmt: skip
        server.run()
    finally:
        console.close()
