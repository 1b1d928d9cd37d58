"""Optional Telegram webhook receiver on loopback.

Telegram sends each update as a POST with the header ``X-Telegram-Bot-Api-Secret-Token`` set to
the secret given to ``setWebhook``; a request without the right secret is refused (401) and
records nothing. The receiver binds to loopback only: put the TLS endpoint Telegram needs (a
reverse proxy) in front of it. Accepted updates go through the same harvest as getUpdates dumps
(idempotent by update id), with source ``webhook``.
"""

from __future__ import annotations

import hmac
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from tracebridge.feedback.config import FeedbackConfig
from tracebridge.feedback.harvest import harvest_updates

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
LOOPBACK = ("127.0.0.1", "::1", "localhost")


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer

    def log_message(self, fmt: str, *args: Any) -> None:  # route to logging, not stderr
        log.debug("webhook: " + fmt, *args)

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        data = orjson.dumps(body)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        srv = self.server
        given = self.headers.get(SECRET_HEADER) or ""
        if not hmac.compare_digest(given.encode(), srv.secret.encode()):
            srv.refused += 1
            self._reply(401, {"ok": False, "error": "wrong or missing secret token"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > srv.cfg.max_body_bytes:
            self._reply(413 if length > 0 else 400, {"ok": False, "error": f"body of {length} bytes"})
            return
        body = self.rfile.read(length)
        try:
            update = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            update = f"invalid JSON: {exc}"
        rep = harvest_updates(srv.cfg, [(f"webhook:{srv.accepted + 1}", update)], "webhook", ["webhook"])
        srv.accepted += 1
        self._reply(200, {"ok": True, "added": rep.added, "duplicates": rep.duplicates, "quarantined": rep.quarantined})

    def do_GET(self) -> None:
        self._reply(405, {"ok": False, "error": "POST Telegram updates here"})


class WebhookServer(ThreadingHTTPServer):
    """The receiver; ``serve_forever()`` to run, ``shutdown()`` to stop."""

    def __init__(self, cfg: FeedbackConfig, secret: str) -> None:
        if cfg.webhook_host not in LOOPBACK:
            raise ValueError(f"webhook_host={cfg.webhook_host}: the receiver binds to loopback only")
        if len(secret) < 8:
            raise ValueError("the webhook secret must be at least 8 characters")
        super().__init__((cfg.webhook_host, cfg.webhook_port), _Handler)
        self.cfg, self.secret = cfg, secret
        self.accepted = self.refused = 0

    @property
    def url(self) -> str:
        """The address the receiver listens on, ``http://<host>:<port>/``."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"
