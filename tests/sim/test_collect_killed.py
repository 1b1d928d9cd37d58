"""``collect`` (workers=2, a forkserver pool) SIGKILLed mid-collection: its fork server and workers end
with it. Before, they went on writing runs into the trace root after the kill (and stayed): a folder
the user had just cleared to collect again filled with the dead collection's runs."""

from __future__ import annotations

import json
import os
import signal
import time

from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.cli.sim import LOCK
from tracebridge.ops.locks import run_lock
from tracebridge.testing.procs import ROOT, cli, descendants, run_cli, wait_gone


def test_a_killed_collection_stops_writing_runs(tmp_path):
    out = tmp_path / "traces"
    p = cli(
        "collect",
        str(ROOT / "configs/collect/smoke.yaml"),
        "workers=2",
        "chunk=2",
        "--out",
        str(out),
    )
    deadline = time.monotonic() + 60
    while p.poll() is None and time.monotonic() < deadline:
        if out.is_dir() and sum(1 for d in out.iterdir() if (d / "session.json").is_file()) >= 2:
            break
        time.sleep(0.005)
    kids = descendants(p.pid)
    assert p.poll() is None and len(kids) >= 3, (
        "the collection ended before it could be killed midway"
    )
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    assert not wait_gone(kids), "the collection's processes outlived it"
    runs = sorted(d.name for d in out.iterdir())
    time.sleep(0.5)
    assert sorted(d.name for d in out.iterdir()) == runs  # nothing writes into the root any more
    again = run_cli("collect", str(ROOT / "configs/collect/smoke.yaml"), "--out", str(out))
    # the killed collection's lock is taken over, saying so; its episodes are not written twice
    assert f"took over the lock from pid {p.pid} on " in again.stderr, again.stderr
    assert again.returncode == 2 and "complete run(s) of these episodes" in again.stderr, (
        again.stderr
    )


def test_a_second_collection_into_the_same_root_is_refused_naming_the_first(tmp_path):
    """Before, two collections into one root both passed the 'already holds these episodes' check and
    each wrote every episode: 64 runs of a 32-episode matrix, both exiting 0."""
    out = tmp_path / "traces"
    out.mkdir()
    with run_lock(out / LOCK, "held by this test", 0):
        r = CliRunner().invoke(
            app, ["collect", str(ROOT / "configs/collect/smoke.yaml"), "--out", str(out), "--json"]
        )
    assert r.exit_code == 3, r.output  # locked: try again later (as a running shadow cycle)
    err = json.loads(r.stdout)["error"]
    assert f"another collect into {out} is running; held by pid {os.getpid()} on " in err
    assert "nothing was collected" in err and [p.name for p in out.iterdir()] == [LOCK]
