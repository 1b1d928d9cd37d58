"""Optional Telegram webhook receiver on loopback.

Telegram sends each update as a POST with the header ``X-Telegram-Bot-Api-Secret-Token`` set to
the secret given to ``setWebhook``; a request without the right secret, or to another path than
the receiver's, is refused (401, 404) and records nothing. The receiver binds to loopback only:
put the TLS endpoint Telegram needs (a reverse proxy) in front of it. Accepted updates go through
the same harvest as getUpdates dumps (idempotent by update id), with source ``webhook``, one at a
time. Telegram resends an update until it gets a 2xx, so an authenticated body that is no usable
update (not JSON, no ``update_id``, over ``max_body_bytes``) is quarantined and answered 200.
A client that stalls is dropped after ``timeout_s``; a body must declare its ``Content-Length``.
The receiver keeps what the harvest checks of the ledger, and the quarantine's keys, between updates
(``ledger_cache``), so an update reads only the bytes appended since the last one (its own rows, another
harvest's), not the whole ledger and quarantine.
Telegram sends reactions only when ``setWebhook`` lists ``message_reaction`` (and
``message_reaction_count``) in ``allowed_updates``, and in groups and channels only to an admin bot.
"""

from __future__ import annotations

import hmac
import logging
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import orjson

from tracebridge.feedback.config import FeedbackConfig
from tracebridge.feedback.harvest import harvest_updates, preflight
from tracebridge.feedback.ledger_cache import LedgerCache
from tracebridge.feedback.telegram import ReadError
from tracebridge.importers.jsonl import json_error

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _as_update(body: bytes, length: int, limit: int) -> Any:
    """The update in a request body, or a ``ReadError`` (quarantined) for a body that holds none."""
    if length > limit:
        return ReadError.of(f"body of {length} bytes is over max_body_bytes={limit}", b"")
    try:
        update = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ReadError.of(f"invalid JSON: {json_error(body)}", body)
    uid = update.get("update_id") if isinstance(update, dict) else None
    if isinstance(uid, bool) or not isinstance(uid, int):  # every Bot API Update has one
        return ReadError.of("not a Telegram update: no integer update_id", body)
    return update


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer

    def setup(self) -> None:
        self.timeout = self.server.timeout_s  # every socket read and write waits at most this long
        super().setup()

    def log_message(self, fmt: str, *args: Any) -> None:  # route to logging, not stderr
        log.debug("webhook: " + fmt, *args)

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        data = orjson.dumps(body)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if code == 405:
            self.send_header("Allow", "POST")
        self.end_headers()
        self.wfile.write(data)

    def _length(self) -> int | None:
        """The declared body length, or None after refusing a request that declares none or nonsense."""
        if self.headers.get("Transfer-Encoding"):  # Telegram sends Content-Length; chunked would be read as empty
            self._reply(411, {"ok": False, "error": "send the body with a Content-Length, not chunked"})
            return None
        values = self.headers.get_all("Content-Length") or []
        if not values:
            self._reply(411, {"ok": False, "error": "a Content-Length is required"})
            return None
        text = values[0]
        if len(set(values)) > 1 or not (text.isascii() and text.isdigit() and len(text) < 19):  # negative, NaN, two
            self._reply(400, {"ok": False, "error": f"Content-Length {', '.join(values)[:40]}: not one byte count"})
            return None
        return int(text)

    def _read_body(self, length: int, keep: bool) -> bytes | None:
        """Read the whole body within ``timeout_s`` (a client that trickles bytes cannot hold its
        thread forever), dropping it unless ``keep``; None if the client closed early. An unkept
        body is still read so that the client, which may be sending yet, gets its reply."""
        deadline, parts, got = time.monotonic() + self.server.timeout_s, [], 0
        while got < length:
            if time.monotonic() > deadline:
                raise TimeoutError(f"body of {length} bytes not received in {self.server.timeout_s} s")
            chunk = self.rfile.read1(min(1 << 16, length - got))
            if not chunk:
                return None
            if keep:
                parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def do_POST(self) -> None:
        srv = self.server
        if urlsplit(self.path).path != srv.path:
            self._reply(404, {"ok": False, "error": "not the webhook path"})
            return
        given = self.headers.get(SECRET_HEADER) or ""
        if not hmac.compare_digest(given.encode(), srv.secret.encode()):
            with srv.lock:
                srv.refused += 1
            self._reply(401, {"ok": False, "error": "wrong or missing secret token"})
            return
        length = self._length()
        if length is None:
            return
        body = self._read_body(length, keep=length <= srv.cfg.max_body_bytes)
        if body is None:  # a truncated body is no update: nothing recorded, the sender retries
            self.close_connection = True
            return
        update = _as_update(body, length, srv.cfg.max_body_bytes)
        try:
            with srv.lock:  # the harvest reads the ledger, then appends: two at once could both accept an id
                rep = harvest_updates(srv.cfg, [(f"webhook:{srv.accepted + 1}", update)], "webhook", ["webhook"],
                                      cache=srv.ledger_cache)
                srv.accepted += 1
        except (OSError, ValueError) as exc:  # ledger locked or unwritable, bad mapping: Telegram retries
            log.error("webhook: update not harvested: %s", exc)
            self._reply(500, {"ok": False, "error": "update not harvested; see the receiver's log"})
            return
        self._reply(200, {"ok": True, "added": rep.added, "duplicates": rep.duplicates, "quarantined": rep.quarantined})

    def do_GET(self) -> None:
        self._reply(405, {"ok": False, "error": "POST Telegram updates here"})

    do_PUT = do_DELETE = do_PATCH = do_GET


class WebhookServer(ThreadingHTTPServer):
    """The receiver; ``serve_forever()`` to run, ``shutdown()`` to stop.

    Args:
        cfg: the feedback config (``webhook_host`` must be loopback).
        secret: the ``secret_token`` given to ``setWebhook`` (8+ characters).
        path: the only path that takes updates (what the reverse proxy forwards to).
        timeout_s: how long a client may stall one read, and take to send a whole body.
        cache_ledger: keep the ledger's state between updates (``ledger_cache.LedgerCache``); False reads the
            whole ledger for each update (the same result, in time that grows with the ledger: for comparison).
    """

    def __init__(self, cfg: FeedbackConfig, secret: str, *, path: str = "/", timeout_s: float = 10.0,
                 cache_ledger: bool = True) -> None:
        if cfg.webhook_host not in LOOPBACK:
            raise ValueError(f"webhook_host={cfg.webhook_host}: the receiver binds to loopback only")
        if len(secret) < 8:
            raise ValueError("the webhook secret must be at least 8 characters")
        if not path.startswith("/"):
            raise ValueError(f"path={path!r}: must start with /")
        preflight(cfg)  # no salt, or a ledger that is no ledger: refused now, not on every update
        if ":" in cfg.webhook_host:  # ::1 needs an IPv6 socket
            self.address_family = socket.AF_INET6
        super().__init__((cfg.webhook_host, cfg.webhook_port), _Handler)
        self.cfg, self.secret, self.path, self.timeout_s = cfg, secret, path, timeout_s
        self.lock = threading.Lock()
        self.accepted = self.refused = 0
        self.ledger_cache = LedgerCache(cfg.ledger, quarantine=cfg.quarantine) if cache_ledger else None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a request that failed (a client gone before its reply) in one line, not a traceback."""
        log.warning("webhook: request from %s dropped: %r", client_address[0], sys.exc_info()[1])

    @property
    def url(self) -> str:
        """The address the receiver listens on, ``http://<host>:<port><path>``."""
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}{self.path}"
