"""The embedded head: loopback-only dashboard (its socket; refused on other interfaces), token
auth on (requests without or with a wrong token are refused), reuse of a running head, and stop
by process group (no `ray stop`)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tracebridge.cluster.client import ClusterError, connect, list_jobs
from tracebridge.cluster.config import ClusterConfig
from tracebridge.cluster.head import ensure_token, running_head, start_head

pytestmark = pytest.mark.cluster


def _status(url: str, token: str | None) -> int:
    req = urllib.request.Request(url)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_dashboard_binds_loopback_and_token_is_private(ray_head):
    info = ray_head["info"]
    assert info.address.startswith("http://127.0.0.1:")
    assert oct(Path(info.token_file).stat().st_mode & 0o777) == "0o600"
    assert len(ray_head["token"]) >= 32


def test_dashboard_socket_listens_on_loopback_only(ray_head):
    """The Jobs API port is bound to 127.0.0.1 (not 0.0.0.0): no listening socket on another
    address, and a connection through this machine's other interfaces is refused."""
    import psutil

    port = int(ray_head["info"].address.rsplit(":", 1)[1])
    listening = {c.laddr.ip for c in psutil.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
    assert listening == {"127.0.0.1"}
    others = [a.address for addrs in psutil.net_if_addrs().values() for a in addrs
              if a.family == socket.AF_INET and not a.address.startswith("127.")]
    for ip in others:
        with socket.socket() as s, pytest.raises(ConnectionRefusedError):
            s.settimeout(5)
            s.connect((ip, port))


def test_request_without_token_is_refused(ray_head):
    url = f"{ray_head['info'].address}/api/jobs/"
    assert _status(url, None) == 401
    assert _status(url, "not-the-token") == 403
    assert _status(url, ray_head["token"]) == 200
    with pytest.raises(ClusterError, match="(?i)auth|unauthorized|token"):
        list_jobs(connect(ray_head["info"].address, None))
    assert isinstance(list_jobs(connect(ray_head["info"].address, ray_head["token"])), list)


def test_ray_cli_without_token_is_refused(ray_head):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    ray = str(Path(sys.executable).parent / "ray")
    res = subprocess.run([ray, "job", "list", "--address", ray_head["info"].address], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode != 0
    assert "auth" in (res.stdout + res.stderr).lower()
    ok = subprocess.run([ray, "job", "list", "--address", ray_head["info"].address], capture_output=True,
                        text=True, timeout=120, check=False,
                        env={**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": ray_head["info"].token_file})
    assert ok.returncode == 0, ok.stderr[-2000:]


def test_running_head_is_reused_not_restarted(ray_head):
    again = start_head(ray_head["cfg"])
    assert again.pid == ray_head["info"].pid and again.started is False
    state = json.loads((Path(ray_head["cfg"].state_dir) / "head.json").read_text())
    assert state["pid"] == ray_head["info"].pid and state["address"] == ray_head["info"].address


def test_no_head_in_an_empty_state_dir(tmp_path):
    assert running_head(ClusterConfig(state_dir=str(tmp_path))) is None


def test_ensure_token_creates_once(tmp_path):
    t = ensure_token(tmp_path / "x" / "tok")
    assert ensure_token(tmp_path / "x" / "tok") == t
    assert oct((tmp_path / "x" / "tok").stat().st_mode & 0o777) == "0o600"
