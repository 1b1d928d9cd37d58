"""Cluster errors, without a Ray head: a head that does not answer (a closed 127.0.0.1 port) is
``ClusterUnreachable`` and exit 3 (try again later, as unreachable storage); a head that answers and
refuses the token (a stub answering 401) stays ``ClusterError`` and exit 2."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.cluster.client import ClusterError, ClusterUnreachable, cluster_error, connect

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "tests" / "data" / "train_views"


@pytest.fixture
def dead() -> str:
    """A dashboard URL on a 127.0.0.1 port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


class _Refuse(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"Unauthorized: missing or invalid token"
        self.send_response(401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing() -> Iterator[str]:
    """A dashboard URL on 127.0.0.1 that answers every request with 401 (token refused)."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    t = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_a_closed_port_is_unreachable(dead: str) -> None:
    with pytest.raises(ClusterUnreachable, match="did not answer"):
        connect(dead, "tok")


def test_a_refused_token_is_not_unreachable(refusing: str) -> None:
    with pytest.raises(ClusterError) as exc:
        connect(refusing, "wrong")
    assert not isinstance(exc.value, ClusterUnreachable) and "Authentication" in str(exc.value)


def test_timeouts_and_resets_are_unreachable_other_errors_are_not() -> None:
    import requests

    for e in (requests.exceptions.ReadTimeout("read timed out"), requests.exceptions.ConnectionError("reset"),
              TimeoutError("timed out"), ConnectionResetError("reset")):
        assert isinstance(cluster_error("job x", e), ClusterUnreachable), e
    for e in (RuntimeError("Request failed with status code 404: job not found"), ValueError("bad runtime_env"),
              FileNotFoundError("working_dir")):
        err = cluster_error("job x", e)
        assert type(err) is ClusterError and str(err).startswith("job x: "), e


@pytest.mark.parametrize("args", [["status", "s-a1"], ["logs", "s-a1"], ["stop", "s-a1"], ["list"], ["pull", "s-a1"]])
def test_every_cluster_command_exits_3_when_the_head_does_not_answer(args: list[str], dead: str) -> None:
    res = CliRunner().invoke(app, [*args, "--cluster", dead])
    assert res.exit_code == 3, (args, res.exit_code, res.output)
    assert dead in res.stderr and "did not answer" in res.stderr, res.stderr


def test_submit_exits_3_when_the_head_does_not_answer(dead: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    res = CliRunner().invoke(app, ["submit", "configs/sweep/smoke.yaml", f"bundle={BUNDLE}", f"storage={tmp_path}/s",
                                   f"work_dir={tmp_path}/w", "--cluster", dead, "--json"])
    assert res.exit_code == 3, res.output
    assert json.loads(res.stdout)["exit_code"] == 3 and not (tmp_path / "s").exists()


def test_a_refused_token_exits_2(refusing: str) -> None:
    res = CliRunner().invoke(app, ["status", "s-a1", "--cluster", refusing, "--json"])
    assert res.exit_code == 2, res.output
    doc = json.loads(res.stdout)
    assert doc["exit_code"] == 2 and "Authentication" in doc["error"], doc
