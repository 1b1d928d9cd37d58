"""A Ray head that accepts the connection and never answers (a socket server on 127.0.0.1 that
accepts and stays silent) ends every cluster command within the cluster's ``request_timeout_s`` as
``ClusterUnreachable``, exit 3; the Ray SDK alone would wait forever. Waiting on a job is many such
requests: a long job, or one slow poll, does not end ``logs --follow``; only ``wait_patience_s`` of
silence does. No Ray head is started (a stub Jobs API plays the head)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import ray
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.cluster.client import ClusterUnreachable, connect

pytestmark = pytest.mark.timeout(90)  # the bug is a hang: fail, do not wait forever

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "tests" / "data" / "train_views"
SHORT = ["--cluster-set", "request_timeout_s=0.5"]


@pytest.fixture
def silent() -> Iterator[str]:
    """A dashboard URL on 127.0.0.1 whose server accepts every connection and never sends a byte."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    srv.settimeout(0.1)
    conns: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                conns.append(srv.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    done.set()
    t.join(5)
    for c in conns:
        c.close()
    srv.close()


class _JobsApi(BaseHTTPRequestHandler):
    """Ray's Jobs API for one job, ``j-a1``: each info request takes the next step of ``server.script``
    (a status; ``slow:<status>``, answered after 1.5 s; ``silent``, never answered); its log has one
    line per info request served."""

    server: _Stub

    def _send(self, doc: object) -> None:
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        srv = self.server
        if self.path == "/api/version":
            return self._send({"ray_version": ray.__version__, "version": "4", "session_name": "stub"})
        if self.path == "/api/jobs/j-a1/logs":
            return self._send({"logs": "".join(f"step {i}\n" for i in range(1, srv.served + 1))})
        step = srv.script[min(srv.served, len(srv.script) - 1)]
        srv.served += 1
        if step == "silent":
            srv.done.wait()
            return None
        if step.startswith("slow:"):
            srv.done.wait(1.5)
            step = step[5:]
        return self._send({"type": "SUBMISSION", "submission_id": "j-a1", "status": step, "entrypoint": "python x.py"})

    def log_message(self, *args: object) -> None:
        pass


class _Stub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: list[str]) -> None:
        super().__init__(("127.0.0.1", 0), _JobsApi)
        self.script, self.served, self.done = script, 0, threading.Event()


@pytest.fixture
def stub() -> Iterator[Callable[..., str]]:
    servers: list[_Stub] = []

    def make(*script: str) -> str:
        srv = _Stub(list(script))
        threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield make
    for srv in servers:
        srv.done.set()
        srv.shutdown()
        srv.server_close()


def test_connect_gives_up_on_a_silent_head_within_the_timeout(silent: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(ClusterUnreachable, match="did not answer within the cluster's request_timeout_s"):
        connect(silent, "tok", timeout_s=0.5)
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("args", [["status", "j-a1"], ["logs", "j-a1"], ["logs", "j-a1", "--follow"],
                                  ["stop", "j-a1"], ["list"], ["pull", "j-a1"]])
def test_every_command_exits_3_on_a_silent_head(args: list[str], silent: str) -> None:
    t0 = time.monotonic()
    res = CliRunner().invoke(app, [*args, "--cluster", silent, *SHORT])
    assert res.exit_code == 3, (args, res.output)
    assert silent in res.stderr and "request_timeout_s" in res.stderr and "Traceback" not in res.output
    assert time.monotonic() - t0 < 20


def test_the_timeout_is_a_key_of_the_cluster_yaml(silent: str, tmp_path: Path) -> None:
    yaml = tmp_path / "silent.yaml"
    yaml.write_text(f"kind: remote\naddress: {silent}\nrequest_timeout_s: 0.5\n")
    res = CliRunner().invoke(app, ["status", "j-a1", "--cluster", str(yaml), "--json"])
    assert res.exit_code == 3, res.output
    assert json.loads(res.stdout)["exit_code"] == 3


def test_a_bad_timeout_is_a_config_error(silent: str) -> None:
    res = CliRunner().invoke(app, ["list", "--cluster", silent, "--cluster-set", "request_timeout_s=0"])
    assert res.exit_code == 2 and "request_timeout_s=0" in res.stderr, res.output


def test_submit_exits_3_on_a_silent_head(silent: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    res = CliRunner().invoke(app, ["submit", "configs/sweep/smoke.yaml", f"bundle={BUNDLE}", f"storage={tmp_path}/s",
                                   f"work_dir={tmp_path}/w", "--cluster", silent, *SHORT, "--json"])
    assert res.exit_code == 3, res.output
    assert json.loads(res.stdout)["exit_code"] == 3 and not (tmp_path / "s").exists()


def test_a_head_that_answers_then_goes_silent_exits_3(stub: Callable[..., str]) -> None:
    url = stub("silent")  # the version check is answered, the job's status never is
    res = CliRunner().invoke(app, ["status", "j-a1", "--cluster", url, *SHORT])
    assert res.exit_code == 3 and "ReadTimeout" in res.stderr, res.output


def test_follow_outlives_the_request_timeout_and_a_slow_poll(stub: Callable[..., str]) -> None:
    """The job runs for seconds, several times the 0.5 s request timeout, and one poll is answered after
    1.5 s: the follow goes on and prints the whole log."""
    url = stub("RUNNING", "slow:RUNNING", "RUNNING", "SUCCEEDED")
    t0 = time.monotonic()
    res = CliRunner().invoke(app, ["logs", "j-a1", "--follow", "--cluster", url, *SHORT])
    assert res.exit_code == 0, res.output
    assert res.stdout == "step 1\nstep 2\nstep 3\nstep 4\n"
    assert time.monotonic() - t0 > 2  # it did wait across the polls


def test_follow_gives_up_after_wait_patience_s_of_silence(stub: Callable[..., str]) -> None:
    url = stub("RUNNING", "silent")
    res = CliRunner().invoke(app, ["logs", "j-a1", "--follow", "--cluster", url, "--cluster-set",
                                   "request_timeout_s=0.3", "--cluster-set", "wait_patience_s=1"])
    assert res.exit_code == 3, res.output
    assert res.stdout == "step 1\n" and "wait_patience_s=1" in res.stderr and "may still be running" in res.stderr
