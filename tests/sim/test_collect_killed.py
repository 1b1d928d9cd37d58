"""``collect`` (workers=2, a forkserver pool) SIGKILLed mid-collection: its fork server and workers end
with it. Before, they went on writing runs into the trace root after the kill (and stayed): a folder
the user had just cleared to collect again filled with the dead collection's runs. The rerun resumes:
before, it refused the root (exit 2, 'already holds complete runs') and the only way on was to delete
the episodes already collected."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.cli.sim import LOCK
from tracebridge.ops.locks import run_lock
from tracebridge.sim.hashing import root_content_hash
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
    again = run_cli("collect", str(ROOT / "configs/collect/smoke.yaml"), "--out", str(out), "--json")
    # the killed collection's lock is taken over, saying so; the rerun picks up where it stopped
    assert f"took over the lock from pid {p.pid} on " in again.stderr, again.stderr
    assert again.returncode == 0, again.stderr
    resumed = json.loads(again.stdout)
    before = [r for r in runs if not r.startswith(".")]
    kept, aside = [r for r in before if (out / r).is_dir()], {Path(x).name for x in resumed["set_aside"]}
    # each run of the killed pass is kept (a finished episode, not run again) or set aside (run again)
    assert sorted(kept + sorted(aside)) == before and len(kept) == resumed["resumed"] >= 2
    assert all(json.loads((out / r / "session.json").read_text()) for r in kept)
    # exactly once: one complete run per episode in the root
    refs = Counter(json.loads((d / "session.json").read_text())["source"]["ref"]
                   for d in out.iterdir() if d.is_dir() and not d.name.startswith("."))
    assert len(refs) == 32 and set(refs.values()) == {1} and resumed["episodes"] == 32
    ref = run_cli("collect", str(ROOT / "configs/collect/smoke.yaml"), "--out", str(tmp_path / "ref"), "--json")
    assert root_content_hash(out) == root_content_hash(tmp_path / "ref")  # as one uninterrupted collection
    whole = json.loads(ref.stdout)
    same = ("episodes", "verdicts", "event_types", "failure_classes", "by_family", "seeds", "recovery_episodes")
    assert {k: resumed[k] for k in same} == {k: whole[k] for k in same}


def test_ctrl_c_stops_a_collection_and_the_rerun_resumes_it(tmp_path):
    """Ctrl-C (SIGINT to the foreground process group): before, the command went on to run every queued
    chunk (63 of 64 episodes) before it exited 130; it now stops at once. The episodes it interrupted
    closed their runs as failed (episode_error): the rerun sets them aside and runs them again."""
    out, seeds = tmp_path / "traces", "seeds.fixed=[0,1,2,3]"
    args = [sys.executable, "-m", "tracebridge.cli", "collect", str(ROOT / "configs/collect/smoke.yaml"), "workers=2",
            "chunk=2", seeds, "--out", str(out)]
    p = subprocess.Popen(args, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while p.poll() is None and time.monotonic() < deadline:
        if out.is_dir() and sum(1 for d in out.iterdir() if (d / "session.json").is_file()) >= 4:
            break
        time.sleep(0.005)
    assert p.poll() is None, "the collection ended before it could be interrupted"
    os.killpg(p.pid, signal.SIGINT)
    assert p.wait(60) == 130
    runs = [d for d in out.iterdir() if d.is_dir() and not d.name.startswith(".")]
    assert len(runs) <= 32, f"{len(runs)} of 64 episodes ran after Ctrl-C"
    again = json.loads(run_cli("collect", str(ROOT / "configs/collect/smoke.yaml"), seeds, "--out", str(out),
                               "--json").stdout)
    assert again["episodes"] == 64 and again["resumed"] + len(again["set_aside"]) <= len(runs)
    refs = Counter(json.loads((d / "session.json").read_text())["source"]["ref"]
                   for d in out.iterdir() if d.is_dir() and not d.name.startswith("."))
    assert len(refs) == 64 and set(refs.values()) == {1}
    run_cli("collect", str(ROOT / "configs/collect/smoke.yaml"), "workers=1", seeds, "--out", str(tmp_path / "ref"))
    assert root_content_hash(out) == root_content_hash(tmp_path / "ref")  # no interrupted episode kept as failed


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
