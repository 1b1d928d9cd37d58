"""The loopback webhook: a wrong secret is refused and records nothing; updates are harvested once."""

from __future__ import annotations

import dataclasses
import threading
import urllib.error
import urllib.request

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
    t = threading.Thread(target=srv.serve_forever, daemon=True)
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
