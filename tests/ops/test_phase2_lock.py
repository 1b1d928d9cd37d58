"""``ops phase2-report`` run lock: two runs into one ``phase2.out_dir`` at once (a cron and a manual run) both
trained and both wrote a report; the second now exits 3 naming ``<out_dir>/.phase2.lock`` and its holder, having
trained and written nothing, and a holder killed by SIGKILL leaves the lock free (the kernel lets it go)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.ops.test_phase2 import FAST
from tracebridge.ops.locks import holder_path
from tracebridge.ops.phase2 import PHASE2_LOCK

ROOT = Path(__file__).resolve().parents[2]
POLICIES = "phase2.policies=[{name: baseline, variant: baseline}, {name: optimized, variant: optimized}]"
DIE_HOLDING = ("import os, signal, sys\nfrom pathlib import Path\nfrom tracebridge.ops.phase2 import hold_run\n"
               "with hold_run(Path(sys.argv[1])):\n    os.kill(os.getpid(), signal.SIGKILL)\n")


def _cmd(bundle: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "tracebridge.cli", "ops", "phase2-report", "--config",
            str(ROOT / "configs/ops/phase2.yaml"), "--bundle", str(bundle), f"phase2.out_dir={out}", "agree_with=[]",
            "phase2.role=verifier", "phase2.seeds=[0]", "phase2.n_boot=200", POLICIES,
            f"phase2.overrides=[{','.join(FAST)}]", "--json"]


def _bundle(tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(ROOT / "tests/data/train_views", tmp_path / "bundle")
    return tmp_path / "bundle"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def test_a_second_phase2_report_exits_3_naming_the_lock_and_the_running_one(tmp_path: Path) -> None:
    bundle, out = _bundle(tmp_path), tmp_path / "out"
    lock = out / PHASE2_LOCK
    first = subprocess.Popen(_cmd(bundle, out), cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not holder_path(lock).is_file():  # the first run has passed its checks and holds the lock
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        before = sorted(p.name for p in out.iterdir())
        second = subprocess.run(_cmd(bundle, out), cwd=ROOT, env=_env(), capture_output=True, text=True,
                                timeout=300, check=False)
        after = sorted(p.name for p in out.iterdir())
        still_running = first.poll() is None
        stdout, stderr = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert still_running, "the first run ended before the second could meet its lock; the test proves nothing"
    assert second.returncode == 3, (second.stdout, second.stderr)
    doc = json.loads(second.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 3 and doc["lock"] == str(lock)
    assert doc["error"].startswith(f"another phase2-report holds {lock}; try again; held by pid {first.pid} on "), doc
    assert doc["holder"]["pid"] == first.pid
    assert after == before  # the second trained nothing and wrote no report or trial folder
    assert first.returncode in (0, 1), stderr  # 1 = ran, no clear winner
    reports = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert [str(p) for p in reports] == [json.loads(stdout)["path"]]  # one report, the first run's
    assert not holder_path(lock).exists()


def test_a_phase2_report_takes_the_lock_of_a_run_killed_holding_it(tmp_path: Path) -> None:
    bundle, out = _bundle(tmp_path), tmp_path / "out"
    dead = subprocess.Popen([sys.executable, "-c", DIE_HOLDING, str(out)], cwd=ROOT, env=_env())
    assert dead.wait(timeout=120) == -signal.SIGKILL and holder_path(out / PHASE2_LOCK).is_file()
    res = subprocess.run(_cmd(bundle, out), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300,
                         check=False)
    assert res.returncode in (0, 1), (res.stdout, res.stderr)
    assert f"{out / PHASE2_LOCK}: took over the lock from pid {dead.pid} on " in res.stderr, res.stderr
    assert (Path(json.loads(res.stdout)["path"]) / "report.json").is_file()
    assert not holder_path(out / PHASE2_LOCK).exists()
