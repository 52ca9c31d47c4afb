"""A local stand-in for Resend's HTTP API, to test the real sending code against.

It answers POST /emails with whatever the test queued (a status, optionally after a delay)
and records every request with its Idempotency-Key. It delivers a mail once per key, as
Resend does: a repeated key gets the first answer again without a second delivery.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int = 200
    delay: float = 0.0


@dataclass
class FakeResend:
    port: int = 0
    answers: list[Answer] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    delivered: dict[str, dict[str, Any]] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeResend:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                key = self.headers.get("idempotency-key", "")
                fake.requests.append(
                    {
                        "path": self.path,
                        "key": key,
                        "body": body,
                        "authorization": self.headers.get("authorization"),
                    }
                )
                answer = fake.answers.pop(0) if fake.answers else Answer()
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.status == 200:
                    fake.delivered.setdefault(key, body)
                    payload = {"id": f"email-{len(fake.delivered)}"}
                else:
                    payload = {
                        "statusCode": answer.status,
                        "name": "application_error",
                        "message": "fake failure",
                    }
                data = json.dumps(payload).encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the socket: from now on connections are refused."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
