"""A local head that cannot start ends ``submit --cluster <local yaml>`` with a located error and no
traceback: exit 2 when a retry would fail the same way (the configured dashboard port taken, no such
``ray``, a broken Ray install), exit 3 when it may not (a head that exited for another reason, e.g. a
port picked free and taken first, or that did not answer within ``start_timeout_s``). The failed
head's log is kept in ``<state_dir>/failed-start/``. Starts no Ray head that succeeds."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.cluster.head import free_port

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "tests" / "data" / "train_views"


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A 127.0.0.1 port another process (this test) listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield s.getsockname()[1]


def _submit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **keys: object) -> tuple[int, str, dict]:  # type: ignore[type-arg]
    """``submit`` the smoke sweep to a local head configured by ``keys`` (a cluster YAML): exit code,
    stderr, the --json document."""
    monkeypatch.chdir(ROOT)
    state = tmp_path / "ray"
    yaml = tmp_path / "cluster.yaml"
    yaml.write_text("".join(f"{k}: {v}\n" for k, v in {"kind": "local", "state_dir": state, **keys}.items()))
    res = CliRunner().invoke(app, ["submit", "configs/sweep/smoke.yaml", f"bundle={BUNDLE}", f"storage={tmp_path}/s",
                                   f"work_dir={tmp_path}/w", "--cluster", str(yaml), "--json"])
    assert "Traceback" not in res.output, res.output
    assert not (state / "head.json").exists() and not (tmp_path / "s").exists()
    return res.exit_code, res.stderr, json.loads(res.stdout)


def _fake_ray(tmp_path: Path, body: str) -> Path:
    ray = tmp_path / "bin" / "ray"
    ray.parent.mkdir(exist_ok=True)
    ray.write_text(f"#!/bin/sh\n{body}\n")
    ray.chmod(0o755)
    return ray


def test_a_taken_dashboard_port_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, taken_port: int) -> None:
    code, err, doc = _submit(tmp_path, monkeypatch, dashboard_port=taken_port)
    assert code == 2 and doc["exit_code"] == 2, err
    assert f"dashboard_port={taken_port}: 127.0.0.1:{taken_port} cannot be bound" in doc["error"]
    assert "use another port or 0" in doc["error"]


def test_a_missing_ray_executable_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, err, doc = _submit(tmp_path, monkeypatch, ray_command=tmp_path / "no" / "ray")
    assert code == 2 and doc["error"].startswith(f"ray_command={tmp_path / 'no' / 'ray'}: no such executable"), err


def test_ray_refusing_the_configured_port_exits_2_with_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The port was free when checked and taken before Ray bound it: Ray's own error names it."""
    port = free_port()
    ray = _fake_ray(tmp_path, f"echo \"ValueError: Failed to bind to 127.0.0.1:{port} because it's already occupied.\"\n"
                              "exit 1")
    code, err, doc = _submit(tmp_path, monkeypatch, ray_command=ray, dashboard_port=port)
    log = tmp_path / "ray" / "failed-start" / "head.log"
    assert code == 2 and f"dashboard_port={port} is in use" in doc["error"] and f"log: {log}" in doc["error"], err
    assert "already occupied" in log.read_text()


def test_a_broken_ray_install_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ray = _fake_ray(tmp_path, "echo \"ModuleNotFoundError: No module named 'ray._raylet'\"\nexit 1")
    code, err, doc = _submit(tmp_path, monkeypatch, ray_command=ray)
    assert code == 2 and "No module named 'ray._raylet'" in doc["error"], err


def test_a_head_that_exits_otherwise_exits_3_with_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A port picked free (the GCS's) and taken before Ray bound it: a retry picks others."""
    ray = _fake_ray(tmp_path, "echo 'starting'\necho \"ValueError: Failed to bind to 127.0.0.1:39999 because it's "
                              "already occupied.\"\nexit 1")
    code, err, doc = _submit(tmp_path, monkeypatch, ray_command=ray)
    log = tmp_path / "ray" / "failed-start" / "head.log"
    assert code == 3 and doc["exit_code"] == 3, err
    assert doc["error"].startswith("local Ray head exited (code 1) while starting") and f"log: {log}" in doc["error"]
    assert log.read_text() == "starting\nValueError: Failed to bind to 127.0.0.1:39999 because it's already occupied.\n"


def test_a_head_that_never_answers_is_stopped_and_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pid_file = tmp_path / "pid"
    ray = _fake_ray(tmp_path, f"echo $$ > {pid_file}\nexec sleep 600")
    t0 = time.monotonic()
    code, err, doc = _submit(tmp_path, monkeypatch, ray_command=ray, start_timeout_s=1)
    assert code == 3 and "did not answer within start_timeout_s=1" in doc["error"], err
    assert time.monotonic() - t0 < 60
    with pytest.raises(ProcessLookupError):  # stopped, not left behind
        os.kill(int(pid_file.read_text()), 0)
