"""Shared machinery of the local fake social platforms: an HTTP server in a thread, tokens, faults.

The fakes speak each platform's real protocol closely enough that our clients cannot tell the
difference, and they inject the faults real platforms produce: 5xx, 429 with Retry-After, a dropped
connection before the request is handled, a response lost *after* the platform acted, and an expired
access token. They count the posts a user would see, so tests can prove "exactly one".
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

FAULT_KINDS = {"500", "503", "429", "drop", "lost_response", "expire_token", "quota", "upload_limit"}


@dataclass
class Fault:
    kind: str
    method: str | None
    path_contains: str | None
    times: int
    retry_after: int = 1


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body or b"{}")
        return data

    def form(self) -> dict[str, str]:
        merged = dict(self.query)
        if self.body and "json" not in self.headers.get("content-type", ""):
            merged.update({k: v[0] for k, v in parse_qs(self.body.decode(errors="replace")).items()})
        return merged

    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] | None = None

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(
            status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
        )


class DropConnection(Exception):
    """Close the socket without a response (after acting, for a lost response)."""


class FakeServer:
    """Subclasses implement `handle(request) -> Response` and the platform's error bodies."""

    def __init__(
        self,
        client_id: str = "test-client-id",
        client_secret: str = "test-client-secret",  # noqa: S107 (a fake server's own test value)
        processing_polls: int = 1,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.processing_polls = processing_polls
        self.lock = threading.RLock()
        self.requests_log: list[tuple[str, str, int]] = []
        self.posts: list[dict[str, Any]] = []
        self.access_tokens: dict[str, str] = {}  # token -> account
        self.refresh_tokens: dict[str, str] = {}
        self.expired: set[str] = set()
        self.faults: list[Fault] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # paths may carry tokens
                pass

            def _serve(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- tokens ------------------------------------------------------------------------------------
    def issue_tokens(self, account_id: str) -> dict[str, Any]:
        with self.lock:
            access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            self.access_tokens[access] = account_id
            self.refresh_tokens[refresh] = account_id
            return {"access_token": access, "refresh_token": refresh, "expires_in": 3600}

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.expired |= set(self.access_tokens)

    def account_for(self, token: str | None) -> str | None:
        """The account of a valid token; None if unknown or expired."""
        with self.lock:
            if token is None or token in self.expired:
                return None
            return self.access_tokens.get(token)

    def new_access_token(self, account_id: str) -> str:
        token = secrets.token_urlsafe(24)
        self.access_tokens[token] = account_id
        return token

    # -- faults ------------------------------------------------------------------------------------
    def inject(
        self,
        kind: str,
        method: str | None = None,
        path_contains: str | None = None,
        times: int = 1,
        retry_after: int = 1,
    ) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(FAULT_KINDS)}")
        with self.lock:
            self.faults.append(Fault(kind, method, path_contains, times, retry_after))

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if (fault.method in (None, method)) and (
                    fault.path_contains is None or fault.path_contains in path
                ):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # -- platform hooks ------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def error(self, status: int, kind: str, message: str, retry_after: int | None = None) -> Response:
        """The platform's error body for a fault kind ('server', 'rate', 'token', 'quota'...)."""
        raise NotImplementedError

    # -- plumbing ----------------------------------------------------------------------------------
    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        path = "/" + "/".join(p for p in split.path.split("/") if p)
        if split.path.endswith("/") and path != "/":
            path += "/"
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = Request(
            handler.command,
            path,
            {k: v[0] for k, v in parse_qs(split.query).items()},
            {k.lower(): v for k, v in handler.headers.items()},
            body,
        )
        fault = self._take_fault(handler.command, path)
        response: Response | None
        try:
            if fault is None:
                response = self.handle(request)
            elif fault.kind == "drop":
                raise DropConnection
            elif fault.kind == "lost_response":
                self.handle(request)
                raise DropConnection
            elif fault.kind == "expire_token":
                token = request.bearer() or request.form().get("access_token")
                if token:
                    with self.lock:
                        self.expired.add(token)
                response = self.error(401, "token", "access token expired")
            elif fault.kind == "429":
                response = self.error(429, "rate", "rate limit exceeded", fault.retry_after)
            elif fault.kind in ("500", "503"):
                response = self.error(int(fault.kind), "server", "backend error")
            else:
                response = self.error(403 if fault.kind == "quota" else 400, fault.kind, fault.kind)
        except DropConnection:
            response = None
        if response is None:
            self._log(handler.command, path, 0)
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        self._log(handler.command, path, response.status)
        handler.send_response(response.status)
        for key, value in (response.headers or {}).items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(response.body)))
        handler.end_headers()
        handler.wfile.write(response.body)

    def _log(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self.requests_log.append((method, path, status))
