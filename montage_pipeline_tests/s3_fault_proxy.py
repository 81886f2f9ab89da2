"""An HTTP proxy in front of the S3 server that can drop requests, to fail uploads for real.

boto3 talks to it exactly as to S3; `fail_puts(n)` makes the next n PUT requests (single-part uploads
and multipart parts) lose their connection after the body was sent, so boto3's own retries run out and
the upload fails the way a network outage would make it fail.
"""

from __future__ import annotations

import http.client
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class S3FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.puts_to_fail = 0
        self.failed = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.command == "PUT" and "x-amz-copy-source" not in self.headers and proxy._take():
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.netloc, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = proxy.upstream.netloc
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                skip = {"transfer-encoding", "connection"} | (
                    {"content-length"} if self.command != "HEAD" else set()
                )
                for k, v in resp.getheaders():
                    if k.lower() not in skip:
                        self.send_header(k, v)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _take(self) -> bool:
        with self._lock:
            if self.puts_to_fail > 0:
                self.puts_to_fail -= 1
                self.failed += 1
                return True
            return False

    def fail_puts(self, n: int) -> None:
        with self._lock:
            self.puts_to_fail = n

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> S3FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
