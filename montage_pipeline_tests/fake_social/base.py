"""Shared machinery of the local fake platforms: an HTTP server in a thread, OAuth tokens, injected faults.

The real platforms are unreachable here, so the clients are tested against fakes that speak their
protocols and fail the way they do: 5xx, 429 with Retry-After, a connection dropped before the request
is handled, a response lost *after* the platform acted, an expired access token, a 200 whose body is
not the platform's JSON (a proxy's error page). Each fake keeps the posts a user would see, so a test
can prove "exactly one".
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Literal, Self, TypedDict
from urllib.parse import parse_qs

log = logging.getLogger(__name__)

COMMON_FAULTS = frozenset({"500", "503", "429", "drop", "lost_response", "expire_token", "garbage", "stall"})
STALL_LIMIT_S = 300.0  # a stalled request is answered after this even if no one calls `resume()`
TokenState = Literal["live", "expired", "unknown"]


class ServerOptions(TypedDict, total=False):
    """Constructor options every fake takes."""

    client_id: str
    client_secret: str
    processing_polls: int
    port: int


@dataclass
class Fault:
    """The next `times` requests matching `method` and `path_contains` (None: any) get `kind`, once
    the first `after` matching requests have passed untouched."""

    kind: str
    method: str | None = None
    path_contains: str | None = None
    times: int = 1
    retry_after: int = 1
    after: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path_contains is None or self.path_contains in path
        )


class BadRequest(Exception):
    """A malformed request: answered with the platform's bad-parameters error."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query, doubled slashes collapsed
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            raise BadRequest(f"the body is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise BadRequest("the body must be a JSON object")
        return data

    def params(self) -> dict[str, str]:
        """Query parameters overlaid by form (or JSON object) body parameters, as the Graph API reads them."""
        merged = dict(self.query)
        content_type = self.headers.get("content-type", "")
        if not self.body:
            return merged
        if "json" in content_type:
            merged.update({k: _param(v) for k, v in self.json().items()})
        elif not content_type or "x-www-form-urlencoded" in content_type:
            form = parse_qs(self.body.decode(errors="replace"), keep_blank_values=True)
            merged.update({k: v[0] for k, v in form.items()})
        return merged

    def bearer(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any) -> Response:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json; charset=UTF-8"})


class Refused(Exception):
    """Raised inside a handler to answer with `response` at once (an auth or lookup failure)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


class FakeServer:
    """One fake platform on 127.0.0.1; a subclass routes requests (`handle`) and shapes errors (`api_error`).

    All state sits behind `lock` (reentrant, so public helpers can be called from inside a handler);
    a request is handled entirely under it, so a fault, the action and the log entry are one step.
    """

    fault_kinds: ClassVar[frozenset[str]] = COMMON_FAULTS

    def __init__(
        self,
        *,
        client_id: str = "test-client-id",
        client_secret: str = "test-client-secret",
        processing_polls: int = 1,
        port: int = 0,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.processing_polls = processing_polls
        self.lock = threading.RLock()
        self.requests_log: list[tuple[str, str, int]] = []  # (method, path, status; 0 = dropped)
        self.posts: list[dict[str, Any]] = []
        self.access_tokens: dict[str, str] = {}  # token -> account id
        self.refresh_tokens: dict[str, str] = {}
        self.expired: set[str] = set()
        self.faults: list[Fault] = []
        self.audience = Audience()  # each posted video's growing counts (statistics endpoints)
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        # "stall": the request's bytes have arrived and it waits, outside the lock, until `resume()`;
        # a test kills its client meanwhile (a worker dying with its last chunk in flight).
        self.stalled = threading.Event()
        self._resumed = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> Self:
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", self._port), _handler_for(self))
            self._server.daemon_threads = True
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},  # stop() waits up to one interval
                name=type(self).__name__,
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut kept-alive connections, so no client talks to a stopped fake."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self.lock:
            live = list(self._connections)
        for conn in live:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("start() the fake first")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- tokens ---------------------------------------------------------------------------------------
    def issue_tokens(self, account_id: str) -> dict[str, Any]:
        """Fresh tokens for an account, as if its owner had just connected it."""
        with self.lock:
            refresh = secrets.token_urlsafe(32)
            self.refresh_tokens[refresh] = account_id
            return {
                "access_token": self.mint_access_token(account_id),
                "refresh_token": refresh,
                "expires_in": 3600,
            }

    def mint_access_token(self, account_id: str) -> str:
        with self.lock:
            token = secrets.token_urlsafe(32)
            self.access_tokens[token] = account_id
            return token

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired from now on."""
        with self.lock:
            self.expired |= set(self.access_tokens)

    def token_state(self, token: str | None) -> TokenState:
        with self.lock:
            if token is None or token not in self.access_tokens:
                return "unknown"
            return "expired" if token in self.expired else "live"

    def account_for(self, token: str | None) -> str | None:
        """The account of a live access token; None when it is unknown or expired."""
        with self.lock:
            return None if token is None or token in self.expired else self.access_tokens.get(token)

    def request_token(self, request: Request) -> str | None:
        """Where the platform reads the access token from (a bearer header unless overridden)."""
        return request.bearer()

    def authenticate(self, request: Request) -> str:
        """The account the request acts for; raises `Refused` with the platform's token error."""
        token = self.request_token(request)
        state = self.token_state(token)
        if state == "live":
            return self.access_tokens[token or ""]
        raise Refused(self.api_error("expired_token" if state == "expired" else "invalid_token"))

    # -- faults ---------------------------------------------------------------------------------------
    def inject(
        self,
        kind: str,
        method: str | None = None,
        path_contains: str | None = None,
        times: int = 1,
        retry_after: int = 1,
        after: int = 0,
    ) -> None:
        """The next `times` matching requests (the token endpoint included) meet `kind`, after `after`
        matching requests passed (e.g. the status query that comes before an upload's chunk)."""
        if kind not in self.fault_kinds:
            raise ValueError(
                f"{type(self).__name__} has no fault {kind!r}; one of {sorted(self.fault_kinds)}"
            )
        with self.lock:
            self.faults.append(Fault(kind, method, path_contains, times, retry_after, after))

    def resume(self) -> None:
        """Let a stalled request go on: it is handled as if it had just arrived."""
        self._resumed.set()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, path):
                if fault.after > 0:
                    fault.after -= 1
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    # -- what a platform defines ----------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def api_error(self, kind: str, message: str | None = None, status: int | None = None) -> Response:
        """The platform's error answer. Every fake knows the kinds "invalid_token", "expired_token",
        "rate_limit", "server" (status 500 or 503), "bad_request" and "not_found"."""
        raise NotImplementedError

    # -- plumbing -------------------------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        path, query = _split_target(handler.path)
        response: Response | None
        try:
            body = _read_body(handler)
        except ValueError:
            handler.close_connection = True  # the body's framing is unknown: the connection is unusable
            with self.lock:
                response = self.api_error("bad_request", "unreadable request body")
                self.requests_log.append((handler.command, path, response.status))
            _send(handler, response)
            return
        headers = {k.lower(): v for k, v in handler.headers.items()}
        request = Request(handler.command, path, query, headers, body)
        with self.lock:
            fault = self._take_fault(request.method, path)
            stall = fault is not None and fault.kind == "stall"
            if not stall:
                response = self._answer(request, fault)
        if stall:  # the bytes have arrived; the answer waits, outside the lock, until `resume()`
            self.stalled.set()
            self._resumed.wait(STALL_LIMIT_S)
            with self.lock:
                response = self._answer(request, None)
        if response is None:
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
        else:
            with contextlib.suppress(OSError):  # the client may be gone (killed while it was stalled)
                _send(handler, response)

    def _answer(self, request: Request, fault: Fault | None) -> Response | None:
        """The response to a request (under the lock), logged."""
        response = self._respond(request, fault)
        self.requests_log.append((request.method, request.path, 0 if response is None else response.status))
        return response

    def _respond(self, request: Request, fault: Fault | None) -> Response | None:
        """The answer to send; None to close the connection without one."""
        if fault is None:
            return self._handle(request)
        if fault.kind == "drop":
            return None
        if fault.kind == "lost_response":
            self._handle(request)
            return None
        if fault.kind == "expire_token":
            with contextlib.suppress(BadRequest):
                token = self.request_token(request)
                if token is not None:
                    self.expired.add(token)
            return self.api_error("expired_token")
        if fault.kind == "429":
            response = self.api_error("rate_limit")
            response.headers["Retry-After"] = str(fault.retry_after)
            return response
        if fault.kind in ("500", "503"):
            return self.api_error("server", status=int(fault.kind))
        if fault.kind == "garbage":
            return Response(200, b"<html><body>502 Bad Gateway</body></html>", {"Content-Type": "text/html"})
        return self.api_error(fault.kind)

    def _handle(self, request: Request) -> Response:
        try:
            return self.handle(request)
        except Refused as exc:
            return exc.response
        except BadRequest as exc:
            return self.api_error("bad_request", str(exc))
        except Exception:
            log.exception("%s failed on %s %s", type(self).__name__, request.method, request.path)
            return self.api_error("server", status=500)

    def _track(self, conn: socket.socket, open_: bool) -> None:
        with self.lock:
            if open_:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


def _handler_for(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real clients use it

        def setup(self) -> None:
            super().setup()
            fake._track(self.connection, True)

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                fake._track(self.connection, False)

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: a request line can carry `access_token=` (Instagram)."""

        def _serve(self) -> None:
            fake._serve(self)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler


def _split_target(target: str) -> tuple[str, dict[str, str]]:
    raw_path, _, query = target.partition("?")
    if "://" in raw_path:  # absolute-form request target
        raw_path = "/" + raw_path.split("://", 1)[1].partition("/")[2]
    path = re.sub("/{2,}", "/", raw_path) or "/"  # a rootUrl ending in "/" doubles the slash
    return path, {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The whole body, sized by Content-Length or chunked; ValueError when the framing is broken."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        parts: list[bytes] = []
        while size := int(handler.rfile.readline().split(b";")[0].strip() or b"x", 16):
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
        while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(parts)
    length = int(handler.headers.get("Content-Length") or 0)
    if length < 0:
        raise ValueError("negative Content-Length")
    return handler.rfile.read(length) if length else b""


def _send(handler: BaseHTTPRequestHandler, response: Response) -> None:
    handler.send_response(response.status)
    for name, value in response.headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(response.body)))
    handler.end_headers()
    handler.wfile.write(response.body)


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


class Audience:
    """Views, likes and comments that grow with a settable clock, as a posted video's do.

    A video's views approach its audience (`audience[id]`, else `default_audience`) as
    audience x (1 - e^(-age / 3 days)); likes are 6 % and comments 1 % of the views. `clock` (epoch
    seconds) is None for the real time; a test sets or `advance`s it to live through a month.
    """

    def __init__(self, default_audience: int = 1000) -> None:
        self.default_audience = default_audience
        self.audience: dict[str, int] = {}
        self.born: dict[str, float] = {}
        self.clock: float | None = None

    def now(self) -> float:
        return time.time() if self.clock is None else self.clock

    def advance(self, days: float) -> None:
        self.clock = self.now() + days * 86400

    def publish(self, video_id: str) -> None:
        self.born.setdefault(video_id, self.now())

    def counts(self, video_id: str) -> tuple[int, int, int]:
        age_days = max(0.0, self.now() - self.born.get(video_id, self.now())) / 86400
        views = int(self.audience.get(video_id, self.default_audience) * (1 - math.exp(-age_days / 3)))
        return views, int(views * 0.06), int(views * 0.01)
