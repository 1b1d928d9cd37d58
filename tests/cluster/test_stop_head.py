"""``tracebridge stop-head`` stops the local head ``submit --keep`` left running, and only its processes:
before it there was no command for that, and ``ray stop`` (what a user reaches for) stops every Ray head on
the machine. It refuses while jobs run on the head unless ``--force``; no head there exits 1; a remote
cluster exits 2. Runs its own small head (another state dir) so the session's shared head stays up."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.cluster.client import connect
from tracebridge.cluster.config import ClusterConfig
from tracebridge.cluster.head import running_head, start_head, stop_head

pytestmark = pytest.mark.cluster


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stop_head_stops_only_the_kept_head_and_not_under_running_jobs(tmp_path: Path) -> None:
    cfg = ClusterConfig(state_dir=str(tmp_path / "ray"), num_cpus=1, num_gpus=0)
    head = start_head(cfg)
    where = ["--cluster-set", f"state_dir={cfg.state_dir}"]
    try:
        client = connect(head.address, Path(head.token_file).read_text().strip())
        client.submit_job(entrypoint="sleep 300", submission_id="sleeper")
        refused = CliRunner().invoke(app, ["stop-head", *where])
        assert refused.exit_code == 1, refused.output
        assert "runs 1 job(s): sleeper" in refused.output and "--force" in refused.output
        assert running_head(cfg) is not None and _group_alive(head.pid)  # refused: the head and its job go on
        refused = CliRunner().invoke(app, ["stop-head", *where, "--json"])  # the jobs in the JSON (before: only in the text)
        doc = json.loads(refused.stdout)
        assert refused.exit_code == 1 and doc["stopped"] is False and doc["jobs_running"] == ["sleeper"], doc
        assert (doc["address"], doc["pid"]) == (head.address, head.pid)

        res = CliRunner().invoke(app, ["stop-head", *where, "--force", "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout) == {"stopped": True, "address": head.address, "pid": head.pid,
                                          "jobs_ended": ["sleeper"]}
        assert not _group_alive(head.pid) and running_head(cfg) is None
        assert not (Path(cfg.state_dir) / "head.json").exists()
    finally:
        if running_head(cfg) is not None:
            stop_head(head)

    again = CliRunner().invoke(app, ["stop-head", *where])
    assert again.exit_code == 1 and "no local Ray head is running" in again.output, again.output
    remote_yaml = Path(__file__).resolve().parents[2] / "configs" / "cluster" / "remote.yaml"
    remote = CliRunner().invoke(app, ["stop-head", "--cluster", str(remote_yaml)])
    assert remote.exit_code == 2 and "a remote cluster is not stopped from here" in remote.output, remote.output
