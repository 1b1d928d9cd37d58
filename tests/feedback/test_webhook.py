"""The loopback webhook: a wrong secret, path, method or length is refused and records nothing; a stalled
client is dropped; what is no update is answered and quarantined; updates are harvested once, one at a time."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest

from tests.feedback.conftest import reaction
from tracebridge.feedback.ledger import read_ledger
from tracebridge.feedback.webhook import SECRET_HEADER, WebhookServer

SECRET = "s3cret-token-for-tests"


def _post(url: str, body: object, secret: str | None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=orjson.dumps(body), method="POST",
                                 headers={"Content-Type": "application/json", **({SECRET_HEADER: secret} if secret else {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, orjson.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


@pytest.fixture
def server(cfg):
    srv = WebhookServer(dataclasses.replace(cfg, webhook_port=0), SECRET)
    t = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_webhook_refuses_a_wrong_secret(server, cfg):
    assert _post(server.url, reaction(1, 10, [], ["👍"]), "wrong-secret")[0] == 401
    assert _post(server.url, reaction(1, 10, [], ["👍"]), None)[0] == 401
    assert server.refused == 2 and read_ledger(cfg.ledger).rows == []


def test_webhook_harvests_updates_idempotently(server, cfg):
    assert server.url.startswith("http://127.0.0.1:")
    code, body = _post(server.url, reaction(1, 10, [], ["👍"]), SECRET)
    assert code == 200 and body == {"ok": True, "added": 1, "duplicates": 0, "quarantined": 0}
    assert _post(server.url, reaction(1, 10, [], ["👍"]), SECRET)[1]["duplicates"] == 1
    assert _post(server.url, {"update_id": 3, "message_reaction": {"chat": {}}}, SECRET)[1]["quarantined"] == 1
    (row,) = read_ledger(cfg.ledger).rows
    assert row.source == "webhook" and row.emoji == "👍"


def test_webhook_binds_to_loopback_only(cfg):
    with pytest.raises(ValueError, match="loopback"):
        WebhookServer(dataclasses.replace(cfg, webhook_host="0.0.0.0", webhook_port=0), SECRET)
    with pytest.raises(ValueError, match="8 characters"):
        WebhookServer(dataclasses.replace(cfg, webhook_port=0), "short")


def _raw(srv: WebhookServer, data: bytes, timeout: float = 5) -> tuple[int, bytes]:
    """Send raw bytes and read to the close: (status, body), status 0 when closed without a reply."""
    with socket.create_connection(srv.server_address[:2], timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(1 << 16):
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    return (int(head.split()[1]) if head else 0), body


def _request(body: bytes, *, method: str = "POST", path: str = "/", length: str | None = None,
             extra: str = "") -> bytes:
    cl = "" if length == "" else f"Content-Length: {len(body) if length is None else length}\r\n"
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n{SECRET_HEADER}: {SECRET}\r\n{cl}{extra}\r\n".encode() + body


def test_webhook_refuses_bad_lengths_with_an_answer(server, cfg):
    body = orjson.dumps(reaction(1, 10, [], ["👍"]))
    assert _raw(server, _request(body, length="abc"))[0] == 400  # was a traceback and no answer
    assert _raw(server, _request(body, length="-5"))[0] == 400
    assert _raw(server, _request(body, length="9" * 5000))[0] == 400
    assert _raw(server, _request(body, length=""))[0] == 411
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    assert _raw(server, _request(chunked, length="", extra="Transfer-Encoding: chunked\r\n"))[0] == 411
    assert read_ledger(cfg.ledger).rows == [] and not Path(cfg.quarantine).exists()


def test_webhook_refuses_other_paths_and_methods(server, cfg):
    body = orjson.dumps(reaction(1, 10, [], ["👍"]))
    assert _raw(server, _request(body, path="/elsewhere"))[0] == 404  # was harvested
    for method in ("PUT", "DELETE", "GET"):
        assert _raw(server, _request(body, method=method))[0] == 405  # PUT, DELETE were 501 HTML
    assert read_ledger(cfg.ledger).rows == []


def test_webhook_drops_a_stalled_client_and_serves_others(cfg):
    srv = WebhookServer(dataclasses.replace(cfg, webhook_port=0), SECRET, timeout_s=0.5)
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    try:
        body = orjson.dumps(reaction(1, 10, [], ["👍"]))
        with socket.create_connection(srv.server_address[:2], timeout=5) as stalled:
            stalled.sendall(_request(body, length=str(len(body) + 10)))  # promises more than it sends
            assert _post(srv.url, reaction(2, 11, [], ["👍"]), SECRET)[0] == 200  # not blocked by it
            t0 = time.monotonic()
            assert stalled.recv(100) == b"" and time.monotonic() - t0 < 3  # closed, no reply; was never
        assert len(read_ledger(cfg.ledger).rows) == 1  # the unfinished body recorded nothing
    finally:
        srv.shutdown()
        srv.server_close()


def test_webhook_answers_and_quarantines_what_is_no_update(cfg):
    srv = WebhookServer(dataclasses.replace(cfg, webhook_port=0, max_body_bytes=1024), SECRET)
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    try:
        for body in (b"hello", b'{"foo": 1}', b"[1, 2]", b"x" * 300_000):  # Telegram resends what is not a 2xx
            code, reply = _raw(srv, _request(body))
            assert code == 200 and orjson.loads(reply)["quarantined"] == 1, (body[:10], code)
    finally:
        srv.shutdown()
        srv.server_close()
    rows = [orjson.loads(line) for line in Path(cfg.quarantine).read_bytes().splitlines()]
    assert [r["raw"] for r in rows[:3]] == ["hello", '{"foo": 1}', "[1, 2]"]  # the body, not the error text
    assert "over max_body_bytes=1024" in rows[3]["reason"] and len(rows) == 4


def test_webhook_harvests_concurrent_updates_one_at_a_time(server, cfg, monkeypatch):
    from tracebridge.feedback import harvest

    def slow_read(path, *args):  # widen the read-ledger-then-append window the lock must close
        time.sleep(0.05)
        return read_ledger(path, *args)

    monkeypatch.setattr(harvest, "read_ledger", slow_read)
    ups = [reaction(100 + i % 4, 10 + i % 4, [], ["👍" if i < 4 else "👎"]) for i in range(8)]  # 4 ids, 2 bodies
    with ThreadPoolExecutor(8) as ex:
        replies = [r[1] for r in ex.map(lambda u: _post(server.url, u, SECRET), ups)]
    rows = read_ledger(cfg.ledger).rows
    assert sorted(r.raw["update_id"] for r in rows) == [100, 101, 102, 103]  # one update per id
    assert sum(r["added"] for r in replies) == 4 and sum(r["quarantined"] for r in replies) == 4
    assert server.accepted == 8


def test_webhook_binds_ipv6_loopback(cfg):
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError as exc:  # a host without IPv6 loopback
        pytest.skip(str(exc))
    srv = WebhookServer(dataclasses.replace(cfg, webhook_host="::1", webhook_port=0), SECRET)
    try:
        assert srv.url.startswith("http://[::1]:")  # was "Address family for hostname not supported"
    finally:
        srv.server_close()
