"""Run locks of the ops cadence: two ``ops weekly`` runs never overlap (before, cron firing while the last
run still held its GPU window started a second export/push/window beside it), a second run and a second
shadow cycle name the lock file and the holder's pid, and a lock whose holder died is taken over, saying so."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest

from tests.conftest import record_sample_run
from tests.ops.test_cycle_interrupt import STUB, _alive, _wait_for
from tracebridge.ops.artifacts import cycle_stamp
from tracebridge.ops.config import OpsConfig, WeeklyConfig
from tracebridge.ops.cycle import LOCK, CycleLocked, run_cycle
from tracebridge.ops.groups import CommandCancelled, run_in_group
from tracebridge.ops.locks import holder_path
from tracebridge.ops.retention_sources import weekly_runs
from tracebridge.ops.weekly import WEEKLY_LOCK, run_weekly

ROOT = Path(__file__).resolve().parents[2]
# export and push end at once (and are logged); window runs STUB: it never ends
BIN = ("import runpy, sys\nopen(sys.argv[0] + '.log', 'a').write(sys.argv[1] + '\\n')\n"
       "if sys.argv[1] == 'window':\n    runpy.run_path(sys.argv[0] + '.stub')\n")
# a process that takes a run lock, then dies holding it (SIGKILL: no finally runs, the note stays)
DIE_HOLDING = ("import os, signal, sys\nfrom pathlib import Path\nfrom tracebridge.ops.locks import run_lock\n"
               "with run_lock(Path(sys.argv[1]), 'busy', 0):\n    os.kill(os.getpid(), signal.SIGKILL)\n")


def _weekly_cmd(tmp_path: Path, fake: Path) -> list[str]:
    return [sys.executable, "-m", "tracebridge.cli", "ops", "weekly", "--config", str(ROOT / "configs/ops/weekly.yaml"),
            "--bin", f"{sys.executable} {fake}", "agree_with=[]", f"weekly.traces={tmp_path}/traces",
            f"weekly.bundles_dir={tmp_path}/bundles", f"weekly.artifacts_dir={tmp_path}/artifacts",
            "weekly.feedback_ledger=null", "--json"]


def _run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300, check=False)


def _fake(tmp_path: Path) -> Path:
    record_sample_run(tmp_path / "traces")
    fake = tmp_path / "fake_tb.py"
    fake.write_text(BIN)
    Path(str(fake) + ".stub").write_text(STUB)
    return fake


def test_a_second_weekly_run_exits_3_naming_the_lock_and_the_holder_pid(tmp_path: Path) -> None:
    fake, pids = _fake(tmp_path), tmp_path / "pids.json"
    env = {**os.environ, "STUB_PIDS": str(pids)}
    first = subprocess.Popen(_weekly_cmd(tmp_path, fake), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env)
    try:
        _wait_for(pids, first)  # the first run is in its window step, holding the lock
        second = _run(_weekly_cmd(tmp_path, fake), env)
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
        for p in json.loads(pids.read_text()) if pids.exists() else []:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
    assert second.returncode == 3, (second.stdout, second.stderr)
    err = json.loads(second.stdout)["error"]
    lock = tmp_path / "bundles" / WEEKLY_LOCK
    assert err.startswith(f"{lock}: another weekly run is running; held by pid {first.pid} "), err
    # the second run started no step and staged nothing: only the first run's three calls are logged
    assert Path(str(fake) + ".log").read_text().split() == ["export", "push", "window"]
    assert len(list((tmp_path / "bundles").glob(".weekly-*"))) == 1


def test_a_weekly_run_takes_over_the_lock_of_a_run_that_died_holding_it(tmp_path: Path) -> None:
    fake, lock = _fake(tmp_path), tmp_path / "bundles" / WEEKLY_LOCK
    Path(str(fake) + ".stub").write_text("")  # the window ends at once this time
    lock.parent.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", DIE_HOLDING, str(lock)], cwd=ROOT)
    assert dead.wait(timeout=120) == -signal.SIGKILL and holder_path(lock).is_file()
    res = _run(_weekly_cmd(tmp_path, fake))
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert f"{lock}: took over the lock from pid {dead.pid} on " in res.stderr, res.stderr
    man = orjson.loads(Path(json.loads(res.stdout)["manifest"]).read_bytes())
    assert man["lock"]["took_over_from"]["pid"] == dead.pid
    assert not holder_path(lock).exists()  # let go with the lock: the next run takes over nothing
    record_sample_run(tmp_path / "traces")  # the next week starts where this one ended: a run of its own
    again = _run(_weekly_cmd(tmp_path, fake))
    assert again.returncode == 0 and "took over" not in again.stderr and "lock" not in json.loads(again.stdout)


def test_a_second_shadow_cycle_names_the_holder_pid(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    hold = ("import sys\nfrom pathlib import Path\nfrom tracebridge.ops.locks import run_lock\n"
            "with run_lock(Path(sys.argv[1]), 'busy', 0):\n    print('held', flush=True)\n    sys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(work / LOCK)], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        cfg = OpsConfig(artifacts_dir=str(tmp_path / "art"))
        cfg.shadow.work_dir = str(work)
        with pytest.raises(CycleLocked, match=rf"another shadow cycle is running; held by pid {holder.pid} on "):
            run_cycle(cfg, [], ["true"])
    finally:
        holder.communicate("", timeout=60)
    assert not (tmp_path / "art").exists()


def test_a_cancelled_command_raises_instead_of_returning_nothing() -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CommandCancelled, match="stopped, its cancel event was set"):
        run_in_group([sys.executable, "-c", "import time; time.sleep(600)"], cancel=cancel, grace_s=1)
    done = run_in_group([sys.executable, "-c", "print('ok')"])  # no cancel: always the finished command
    assert done.returncode == 0 and done.stdout == "ok\n"


WEEKLY = ["ops", "weekly", "--config", "configs/ops/weekly.yaml", "agree_with=[]", "weekly.traces={t}/traces",
          "weekly.bundles_dir={t}/b", "weekly.artifacts_dir={t}/art"]
CYCLE = ["shadow-cycle", "--config", "configs/ops/shadow.yaml", "shadow.work_dir={t}/w", "artifacts_dir={t}/art"]


@pytest.mark.parametrize("command", [WEEKLY, CYCLE], ids=["weekly", "shadow-cycle"])
def test_a_bin_that_cannot_be_found_is_a_usage_error_before_any_work(tmp_path: Path, command: list[str]) -> None:
    # before: weekly died with a FileNotFoundError traceback after staging (no manifest), and the shadow
    # cycle wrote a failed cycle (every step: "No such file or directory"), which the review counts
    record_sample_run(tmp_path / "traces")
    res = _run([sys.executable, "-m", "tracebridge.cli", *(a.format(t=tmp_path) for a in command),
                "--bin", f"{tmp_path}/no-such-tb --x", "--json"])
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert json.loads(res.stdout)["error"].startswith(f"--bin '{tmp_path}/no-such-tb --x': {tmp_path}/no-such-tb is "
                                                      "no executable program"), res.stdout
    assert not (tmp_path / "art").exists() and not (tmp_path / "b").exists() and not (tmp_path / "w").exists()


def test_a_weekly_step_that_cannot_start_is_a_failed_step_in_the_manifest(tmp_path: Path) -> None:
    record_sample_run(tmp_path / "traces")
    cfg = WeeklyConfig(traces=str(tmp_path / "traces"), bundles_dir=str(tmp_path / "b"), feedback_ledger=None)
    man = run_weekly(cfg, tmp_path / "art", [str(tmp_path / "gone-after-the-check")])
    assert man["status"] == "failed" and man["steps"]["export"]["status"] == "failed"
    assert man["steps"]["export"]["reason"].startswith(f"cannot start {tmp_path}/gone-after-the-check: ")
    assert man["steps"]["push"] == {"status": "skipped", "reason": "needs the previous step"}
    assert orjson.loads(Path(man["manifest"]).read_bytes())["status"] == "failed"


def test_two_weekly_runs_of_the_same_second_get_folders_of_their_own(tmp_path: Path) -> None:
    # before: the second (a rerun right after a quick failure, or a clock set back) staged into the first
    # one's .weekly-<stamp>/traces and died on FileExistsError, with no manifest
    run_id = record_sample_run(tmp_path / "traces")
    cfg = WeeklyConfig(traces=str(tmp_path / "traces"), bundles_dir=str(tmp_path / "b"), feedback_ledger=None)
    now = dt.datetime.now(dt.UTC)
    # the first fails (its export): the rerun's window is the same week (after a good one it would start at its end)
    first, second = (run_weekly(cfg, tmp_path / "art", [exe], now=now) for exe in ("false", "true"))
    stamp = cycle_stamp(now)
    assert (first["status"], second["status"]) == ("failed", "ok")
    assert [m["plan"][0].split()[2] for m in (first, second)] == \
        [str(tmp_path / "b" / f".weekly-{s}" / "traces") for s in (stamp, f"{stamp}-1")]
    assert all(os.listdir(tmp_path / "b" / f".weekly-{s}" / "traces") == [run_id] for s in (stamp, f"{stamp}-1"))
    assert [r.stamp for r in weekly_runs(tmp_path / "b")] == [stamp, f"{stamp}-1"]  # retention sees both, in order
    plan = run_weekly(cfg, tmp_path / "art", ["true"], now=now, dry_run=True)
    assert plan["plan"][0].split()[2] == str(tmp_path / "b" / f".weekly-{stamp}-2" / "traces")
