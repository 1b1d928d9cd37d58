"""GPU windows with a stand-in `ray` executable on PATH that records its calls: `ray down`
follows success, failure, Ctrl-C, SIGTERM and the budget cap (hours and dollars); --dry-run
starts nothing. The success case submits to the real local head as if it were the forwarded one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.cluster.config import WindowConfig
from tracebridge.cluster.window import Watchdog, billed_rate, load_launcher, plan_window

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "tests" / "data" / "train_views"
FAKE_RAY = f"""#!{sys.executable}
import json, os, sys, time
with open(os.environ["FAKE_RAY_LOG"], "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1] == "up":
    time.sleep(float(os.environ.get("FAKE_RAY_UP_SLEEP", "0")))
    sys.exit(int(os.environ.get("FAKE_RAY_UP_RC", "0")))
if sys.argv[1] == "dashboard":  # the port-forward runs until it is stopped
    while True:
        time.sleep(1)
if sys.argv[1] == "down":
    sys.exit(int(os.environ.get("FAKE_RAY_DOWN_RC", "0")))
"""


@pytest.fixture
def fake_ray(tmp_path, monkeypatch):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "ray").write_text(FAKE_RAY)
    (bin_ / "ray").chmod(0o755)
    log = tmp_path / "ray_calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_RAY_LOG", str(log))
    monkeypatch.chdir(ROOT)
    return lambda: [json.loads(x)[0] for x in log.read_text().splitlines()] if log.is_file() else []


def launcher(tmp: Path, token_file: str | Path) -> str:
    """infra/aws-gpu.yaml shipping ``token_file`` as the head's token (as the window's token_file must be)."""
    import yaml

    cfg = yaml.safe_load((ROOT / "infra" / "aws-gpu.yaml").read_text())
    cfg["file_mounts"] = {"~/.tracebridge/auth_token": str(token_file)}
    path = tmp / "aws-gpu.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def window_args(tmp: Path, *extra: str) -> list[str]:
    return ["window", "configs/sweep/smoke.yaml", f"bundle={BUNDLE}", f"storage={tmp}/storage", f"work_dir={tmp}/work",
            f"window.token_file={tmp}/tok", f"window.reports_dir={tmp}/reports", "window.poll_s=0.5",
            "window.connect_timeout_s=5", "--cluster", launcher(tmp, tmp / "tok"), *extra]


def run(args: list[str]) -> tuple[int, dict]:
    res = CliRunner().invoke(app, [*args, "--json"])
    return res.exit_code, json.loads(res.stdout)


def test_dry_run_prints_plan_and_cost_without_calling_ray(fake_ray, tmp_path):
    code, out = run(window_args(tmp_path, "--max-hours", "2", "--max-usd", "30", "--dry-run"))
    assert code == 0 and out["dry_run"] and fake_ray() == []
    plan = out["plan"]
    assert plan["max_usd_estimate"] == 30.0 and plan["base_usd"] == pytest.approx(0.192)
    assert plan["commands"][0].startswith("ray up") and plan["commands"][-1].startswith("ray down")
    assert plan["unpriced"] == []


def test_cluster_set_overrides_reach_the_jobs_cluster_config(fake_ray, tmp_path):
    """``--cluster-set KEY=VALUE`` as for submit/status/logs: applied to the cluster config the job is
    submitted with (the dry run shows it); a bad key or value, or a key the window sets itself, exits 2
    naming it, every problem at once, before ray is called."""
    code, out = run(window_args(tmp_path, "--dry-run", "--cluster-set", "request_timeout_s=5",
                                "--cluster-set", "wait_patience_s=600", "--cluster-set", "env_vars.MODE=x"))
    assert code == 0 and out["dry_run"], out
    ccfg = out["cluster"]
    assert ccfg["request_timeout_s"] == 5.0 and ccfg["wait_patience_s"] == 600.0 and ccfg["env_vars"] == {"MODE": "x"}
    assert ccfg["kind"] == "remote" and ccfg["address"] == "http://127.0.0.1:8265"  # the window's own
    code, default = run(window_args(tmp_path, "--dry-run"))
    assert code == 0 and default["cluster"]["request_timeout_s"] == 30.0
    code, out = run(window_args(tmp_path, "--dry-run", "--cluster-set", "request_timeout=5",
                                "--cluster-set", "address=http://10.0.0.1:8265"))
    assert code == 2 and out["ok"] is False and out["exit_code"] == 2
    assert "2 problem(s)" in out["error"]
    assert "request_timeout: unknown key; did you mean 'request_timeout_s'" in out["error"]
    assert "--cluster-set address=http://10.0.0.1:8265: the window sets address itself" in out["error"]
    assert "window.dashboard_port" in out["error"]
    code, out = run(window_args(tmp_path, "--dry-run", "--cluster-set", "wait_patience_s=-1"))
    assert code == 2 and "wait_patience_s=-1.0: must be >= 0 seconds" in out["error"], out
    assert fake_ray() == []


def test_teardown_after_failed_up(fake_ray, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_RAY_UP_RC", "1")
    code, out = run(window_args(tmp_path, "--max-hours", "1"))
    assert code == 1 and out["outcome"] == "failed" and "ray up failed" in out["error"]
    assert fake_ray() == ["up", "down"]


def test_teardown_at_hours_cap(fake_ray, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_RAY_UP_SLEEP", "60")
    t0 = time.time()
    code, out = run(window_args(tmp_path, "--max-hours", "0.0005"))  # 1.8 s
    assert code == 1 and out["outcome"] == "budget" and "hours cap" in out["error"]
    assert time.time() - t0 < 30 and fake_ray() == ["up", "down"]


def test_teardown_at_dollar_cap(fake_ray, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_RAY_UP_SLEEP", "60")
    code, out = run(window_args(tmp_path, "--max-hours", "1", "--max-usd", "0.0001"))  # head $0.192/h: ~2 s
    assert code == 1 and out["outcome"] == "budget" and "dollar cap" in out["error"]
    assert out["cost_usd_accrued"] >= 0.0001 and fake_ray() == ["up", "down"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_teardown_after_interrupt(fake_ray, tmp_path, sig):
    """SIGHUP: the terminal or SSH session closed (before, it killed the window with the cluster up)."""
    env = {**os.environ, "FAKE_RAY_UP_SLEEP": "120"}
    # a suite run under nohup (or a script's background job) ignores SIGHUP (SIGINT), and the window keeps
    # an ignored signal ignored: the window of this test is one a user starts, taking it
    ignored = signal.signal(sig, signal.SIG_DFL) if signal.getsignal(sig) == signal.SIG_IGN else None
    try:
        proc = subprocess.Popen([sys.executable, "-m", "tracebridge.cli.__main__",
                                 *window_args(tmp_path, "--max-hours", "1"), "--json"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        if ignored is not None:
            signal.signal(sig, ignored)
    end = time.time() + 120
    while "up" not in fake_ray():
        assert time.time() < end and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert json.loads(out)["outcome"] == "interrupted"
    assert json.loads(out)["error"] == f"interrupted ({signal.Signals(sig).name})"
    assert fake_ray() == ["up", "down"]


def test_a_window_under_nohup_outlives_its_terminal(fake_ray, tmp_path):
    """Started ignoring SIGHUP (``nohup tracebridge window ...``), a closed terminal must not tear the window
    down: SIGHUP stays ignored; SIGTERM still ends it with the teardown."""
    env = {**os.environ, "FAKE_RAY_UP_SLEEP": "120"}
    proc = subprocess.Popen(["nohup", sys.executable, "-m", "tracebridge.cli.__main__",
                             *window_args(tmp_path, "--max-hours", "1"), "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.time() + 120
    while "up" not in fake_ray():
        assert time.time() < end and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGHUP)
    time.sleep(1.5)
    assert proc.poll() is None and fake_ray() == ["up"]  # still working, nothing torn down
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and json.loads(out)["error"] == "interrupted (SIGTERM)", err[-2000:]
    assert fake_ray() == ["up", "down"]


def test_a_failed_teardown_is_an_error_whatever_the_outcome(fake_ray, tmp_path, monkeypatch):
    """`ray down` failing leaves nodes billing: the window says so (``down_ok``, ``teardown_error``, stderr)."""
    monkeypatch.setenv("FAKE_RAY_UP_RC", "1")
    monkeypatch.setenv("FAKE_RAY_DOWN_RC", "1")
    res = CliRunner().invoke(app, [*window_args(tmp_path, "--max-hours", "1"), "--json"])
    out = json.loads(res.stdout)
    assert res.exit_code == 1 and out["outcome"] == "failed" and out["down_exit_code"] == 1, out
    assert out["down_ok"] is False and f"down -y {tmp_path}/aws-gpu.yaml` failed (exit 1)" in out["teardown_error"]
    assert "may still be running" in res.stderr and fake_ray() == ["up", "down"]


@pytest.mark.cluster
@pytest.mark.parametrize("down_rc", [0, 1], ids=["down", "down_fails"])
def test_success_submits_waits_pulls_and_tears_down(fake_ray, ray_head, smoke_storage, tmp_path, monkeypatch,
                                                    down_rc):
    """A failed `ray down` after a sweep that succeeded exits 1 (before: 0, with the cluster maybe still up)."""
    monkeypatch.setenv("FAKE_RAY_DOWN_RC", str(down_rc))
    port = ray_head["info"].address.rsplit(":", 1)[1]
    args = ["window", "configs/sweep/smoke.yaml", f"bundle={BUNDLE}", f"storage={smoke_storage}/storage",
            f"work_dir={smoke_storage}/work", f"window.dashboard_port={port}",
            f"window.token_file={ray_head['info'].token_file}", f"window.reports_dir={tmp_path}/reports",
            "window.poll_s=0.5", "--cluster", launcher(tmp_path, ray_head["info"].token_file), "--max-hours", "1"]
    code, out = run(args)
    assert code == down_rc and out["down_ok"] is (down_rc == 0), out
    assert out["outcome"] == "succeeded" and out["status"] == "SUCCEEDED" and out["report_problems"] == []
    assert Path(out["report"]).is_file() and fake_ray() == ["up", "dashboard", "down"]


def test_plan_and_billing_are_pure():
    launcher = load_launcher(ROOT / "infra" / "aws-gpu.yaml")
    plan = plan_window(Path("infra/aws-gpu.yaml"), launcher, WindowConfig(), max_hours=2, max_usd=0)
    worst = 0.192 + 2 * 1.006 + 2 * 0.805 + 32.77 + 98.32
    assert plan.hourly_usd == pytest.approx(worst) and plan.max_usd_estimate == pytest.approx(worst * 2, abs=0.01)
    report = {"autoscaler_report": {"active_nodes": {"head_cpu": 1, "gpu_a10g": 2}, "idle_nodes": {},
                                    "pending_nodes": [["10.0.0.9", "gpu_l4", "launching"]], "pending_launches": {}}}
    assert billed_rate(report, plan.node_types, plan.head_type) == pytest.approx(0.192 + 2 * 1.006 + 0.805)
    assert billed_rate({"autoscaler_report": {"active_nodes": {"mystery": 1}}}, plan.node_types,
                       plan.head_type) == pytest.approx(0.192 + 98.32)  # unknown type bills at the dearest
    assert billed_rate(None, plan.node_types, plan.head_type) is None
    dog = Watchdog(cap_hours=1, max_usd=1.0, rate=3600.0, start=time.time() - 2)  # $1/s for 2 s
    assert "dollar cap" in (dog.reason() or "")
    assert Watchdog(cap_hours=1, max_usd=0, rate=3600.0).reason() is None


@pytest.mark.cluster
def test_a_failed_sweep_says_why_and_still_tears_down(fake_ray, ray_head, tmp_path):
    """The job cannot create its work_dir (a file is in the way) and exits 2 before any trial: the window's
    ``error`` gives that reason (before: outcome "failed" with error None; the reason was in the job log only)."""
    (tmp_path / "file").write_text("")
    port = ray_head["info"].address.rsplit(":", 1)[1]
    args = ["window", "configs/sweep/smoke.yaml", f"bundle={BUNDLE}", f"storage={tmp_path}/storage",
            f"work_dir={tmp_path}/file/work", f"window.dashboard_port={port}",
            f"window.token_file={ray_head['info'].token_file}", f"window.reports_dir={tmp_path}/reports",
            "window.poll_s=0.5", "--cluster", launcher(tmp_path, ray_head["info"].token_file), "--max-hours", "1"]
    code, out = run(args)
    assert code == 1 and out["outcome"] == "failed" and out["status"] == "FAILED", out
    assert out["error"].startswith(f"job {out['submission']['submission_id']} FAILED: it stopped before training: "
                                   f"work_dir={tmp_path}/file/work: "), out["error"]
    assert out["failures"] == [] and fake_ray() == ["up", "dashboard", "down"]
    # the job's config names the cluster the window ran it on (its report manifest's config.sweep.cluster), not
    # the sweep YAML's `cluster: local`
    assert f"cluster={Path(args[args.index('--cluster') + 1]).resolve()}" in out["submission"]["entrypoint"], out


@pytest.mark.cluster
def test_the_hours_cap_stops_the_job_and_says_what_it_left(fake_ray, ray_head, tmp_path):
    """The cap passes while the sweep trains: its job is stopped (Tune saves its state), the window's outcome
    is budget and its error names the cap and the --resume that continues it, with what the job's summary
    said (``failures``) and, had a trial finished, its report pulled (before: a BudgetExceeded that dropped
    the job's summary and report)."""
    port = ray_head["info"].address.rsplit(":", 1)[1]
    args = ["window", "configs/sweep/smoke.yaml", f"bundle={BUNDLE}", f"storage={tmp_path}/storage",
            f"work_dir={tmp_path}/work", "variants=[baseline]", "overrides.train.max_steps=2000",
            "overrides.train.save_steps=0", f"window.dashboard_port={port}",
            f"window.token_file={ray_head['info'].token_file}", f"window.reports_dir={tmp_path}/reports",
            "window.poll_s=0.5", "--cluster", launcher(tmp_path, ray_head["info"].token_file), "--max-hours", "0.006"]  # 21.6 s
    code, out = run(args)
    assert code == 1 and out["outcome"] == "budget" and out["status"] == "STOPPED", out
    assert out["error"].startswith("hours cap reached (0.006 h); job ") and "--resume` continues it" in out["error"]
    assert "failures" in out and fake_ray() == ["up", "dashboard", "down"]


def test_a_token_file_the_launcher_does_not_ship_is_refused_before_ray_up(fake_ray, tmp_path):
    """The launcher YAML ships ~/.tracebridge/window_auth_token as the head's token: a window.token_file other
    than that one would start a head that refuses every request of the window (before: found after `ray up`,
    as a Jobs API that "did not answer" for connect_timeout_s). Named with the budget's problems, exit 2."""
    args = window_args(tmp_path, "--max-hours", "0", "--dry-run")
    args[args.index("--cluster") + 1] = "infra/aws-gpu.yaml"
    code, out = run(args)
    assert code == 2 and "2 problem(s)" in out["error"], out
    assert (f"window.token_file={tmp_path}/tok: infra/aws-gpu.yaml:file_mounts ships ~/.tracebridge/window_auth_token "
            "as the head's token (~/.tracebridge/auth_token)") in out["error"]
    assert "--max-hours 0: must be a finite number of hours > 0" in out["error"] and fake_ray() == []
    code, out = run(window_args(tmp_path, "--dry-run"))  # the launcher ships that file: accepted
    assert code == 0 and out["dry_run"], out


def test_dry_run_counts_the_trials_it_trains_beside_the_grid_cells(fake_ray, tmp_path):
    """A dpo.beta ablation's baseline cells train one model (shared): the dry run said "N trials" of the grid's
    cells; it now gives ``trained_trials`` too, and its text says both."""
    args = window_args(tmp_path, "ablations.dpo.beta=[0.1,0.3]", "--dry-run")
    code, out = run(args)
    assert code == 0 and out["trained_trials"] < out["trials"], out
    text = CliRunner().invoke(app, args)
    assert f"{out['trained_trials']} trials for {out['trials']} grid cells" in text.stdout, text.output
