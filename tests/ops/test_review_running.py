"""The 3-day review tells the cycle running now (its folder named by the live holder of the cycle lock) from a
crashed one: a review run at 02:40 while the 02:15 cycle still runs does not count that cycle as not ok."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
from pathlib import Path

import orjson

from tests.ops.test_cycle import _cfg
from tests.ops.test_review import good_set
from tracebridge.ops.artifacts import new_bundle_dir
from tracebridge.ops.config import ReviewConfig
from tracebridge.ops.cycle import LOCK, Step, run_cycle
from tracebridge.ops.locks import holder_path
from tracebridge.ops.review import review

NOW = dt.datetime(2026, 3, 4, 8, 0, tzinfo=dt.UTC)


def test_a_review_during_a_cycle_leaves_the_running_cycle_out(tmp_path):
    cfg = _cfg(tmp_path)
    good_set(cfg.artifacts_dir)
    seen = {}

    def review_now(ctx):  # the review runs while this cycle holds the lock and has no manifest yet
        seen["live"] = review(cfg.artifacts_dir, ReviewConfig(), NOW + dt.timedelta(minutes=25), cfg.shadow.work_dir)
        seen["blind"] = review(cfg.artifacts_dir, ReviewConfig(), NOW + dt.timedelta(minutes=25))
        return {}

    man = run_cycle(cfg, [Step("import", review_now)], cli=[], now=NOW)
    live, blind = seen["live"], seen["blind"]
    cyc = {ln.criterion: ln for ln in live.lines}["cycles"]
    assert live.running == [man["cycle_id"]] and man["cycle_id"] not in live.cycles
    assert cyc.passed and cyc.evidence.startswith("3 of 3 cycles ok")
    assert f"still running (no manifest yet), not counted: {man['cycle_id']}" in cyc.evidence
    assert "no manifest.json" not in cyc.evidence
    assert live.to_dict()["running"] == [man["cycle_id"]]
    # without the work dir the review cannot see the lock: the unfinished folder reads as not ok
    assert {ln.criterion: ln for ln in blind.lines}["cycles"].evidence.startswith("3 of 4 cycles ok")
    # once finished, the cycle is an ordinary one and the lock names no folder
    after = review(cfg.artifacts_dir, ReviewConfig(), NOW + dt.timedelta(hours=1), cfg.shadow.work_dir)
    assert after.running == [] and man["cycle_id"] in after.cycles


def test_a_folder_named_by_a_dead_holder_is_a_crash(tmp_path):
    cfg = _cfg(tmp_path)
    good_set(cfg.artifacts_dir)
    folder = new_bundle_dir(cfg.artifacts_dir, NOW - dt.timedelta(minutes=30))  # died before its manifest
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    lock = Path(cfg.shadow.work_dir) / LOCK
    lock.parent.mkdir(parents=True)
    note = {"pid": int(dead.stdout), "host": socket.gethostname(), "since": "x", "bundle": str(folder.resolve())}
    holder_path(lock).write_bytes(orjson.dumps(note))  # SIGKILL leaves the note behind
    rep = review(cfg.artifacts_dir, ReviewConfig(), NOW, cfg.shadow.work_dir)
    cyc = {ln.criterion: ln for ln in rep.lines}["cycles"]
    assert rep.running == [] and folder.name in rep.cycles
    assert cyc.evidence.startswith("3 of 4 cycles ok") and "no manifest" in cyc.evidence
