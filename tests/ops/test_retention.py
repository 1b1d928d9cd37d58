"""Retention of the shadow cycle: old bundles and models go, evidence, the review, promoted models
and rollback stay, crashed cycles lose their models (not their evidence), and ``tracebridge shadow-prune`` reports it.

The cycles run through the real runner (``run_cycle``: lock, manifest, retention) with cheap steps
that write what the real ones write, where they write it: the export of the whole trace history
as ``work/bundles/<sha256 id>/`` with the consumer check's ``.hf-cache``, model weights under
``work/optimize/<cycle id>/``, and the evidence the review reads into the cycle's artifacts folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock
from typer.testing import CliRunner

from tests.ops.test_promotion import gate_report
from tracebridge.cli import app
from tracebridge.config import ConfigError, load_config
from tracebridge.ops.artifacts import list_cycles, sha256_file, verify_bundle
from tracebridge.ops.config import OpsConfig, ReviewConfig
from tracebridge.ops.cycle import Step, run_cycle
from tracebridge.ops.promotion import PolicyState, active_record, promote, rollback
from tracebridge.ops.retention import prune
from tracebridge.ops.review import review

ROOT = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 3, 1, 2, 15, tzinfo=dt.UTC)
runner = CliRunner()


# --------------------------------------------------------------------------- a cheap cycle, real layout


def _validate(ctx):
    return {"runs_total": len(list(ctx.traces.glob("*.json"))), "schema_valid_pct": 100.0,
            "lineage_valid_pct": 100.0, "incomplete_pct": 0.0}


def _export(ctx):
    """The whole trace root as one bundle named by its content hash (same runs = same bundle)."""
    runs = sorted(ctx.traces.glob("*.json"))
    rows = "".join(p.read_text() for p in runs)
    bid = hashlib.sha256(rows.encode()).hexdigest()
    b = ctx.work / "bundles" / bid
    (b / "views" / "worker_sft").mkdir(parents=True, exist_ok=True)
    (b / "views" / "worker_sft" / "train.jsonl").write_text(rows)
    (b / "manifest.json").write_text(json.dumps({"bundle_id": bid}))
    cache = ctx.work / "bundles" / ".hf-cache" / "json"  # the consumer check's datasets cache
    cache.mkdir(parents=True, exist_ok=True)
    (cache / f"{bid[:12]}.arrow").write_text(rows)
    (ctx.bundle / "export").mkdir()
    shutil.copy2(b / "manifest.json", ctx.bundle / "export" / "manifest.json")
    return {"bundle_dir": str(b), "bundle_id": bid, "counts": {"read": len(runs), "accepted": len(runs), "quarantined": 0}}


def _optimize(ctx):
    final = ctx.work / "optimize" / ctx.bundle.name / "worker-optimized-s0" / "sft" / "final"
    final.mkdir(parents=True)
    (final / "model.safetensors").write_bytes(os.urandom(32 * 1024))
    (final.parents[1] / "trial.json").write_text('{"variant": "optimized"}')
    (ctx.bundle / "optimize").mkdir()
    (ctx.bundle / "optimize" / "results.json").write_text('{"worker": {"action_match": 0.55}}')
    return {"uplift": {"metric": "worker/action_match", "baseline": 0.5, "optimized": 0.55, "uplift": 0.05},
            "work_dir": str(ctx.work / "optimize" / ctx.bundle.name)}


def _feedback(ctx):
    day = (ctx.now - dt.timedelta(days=1)).date().isoformat()
    (ctx.bundle / "feedback").mkdir()
    audit = ctx.bundle / "feedback" / f"{day}.json"
    audit.write_text(json.dumps({"day": day, "harvest_ran": True}))
    return {"feedback": {"audited_day": day, "harvest_ran": True, "audit_file": f"feedback/{day}.json",
                         "audit_sha256": sha256_file(audit)}}


STEPS = [
    Step("runtime_hook", lambda ctx: {"summary": {"passed": True}}),
    Step("feedback", _feedback),
    Step("validate", _validate),
    Step("export", _export, ("validate",)),
    Step("optimize", _optimize, ("validate",)),
    Step("chunk_policy", lambda ctx: {"chunk_policy": {"doc": "docs/p.md", "doc_sha256": "abc", "applied": True,
                                                       "batches": 1, "batches_in_export": 1, "batches_labelled": 1,
                                                       "violations": 0}}, ("export",)),
]


def _cfg(tmp_path, *overrides):
    return load_config(OpsConfig, None, _overrides(tmp_path, *overrides))


def _day(cfg, k, new_runs=1):
    """Cycle of day ``k`` (02:15 UTC) after ``new_runs`` sessions arrived; return its manifest."""
    traces = Path(cfg.shadow.work_dir) / "traces"
    traces.mkdir(parents=True, exist_ok=True)
    for i in range(new_runs):
        (traces / f"run-{k:03d}-{i}.json").write_text(json.dumps({"day": k, "i": i, "text": "x" * 2000}) + "\n")
    return run_cycle(cfg, STEPS, cli=[], now=T0 + dt.timedelta(days=k))


def _ids(path):
    return sorted(p.name for p in Path(path).iterdir()) if Path(path).is_dir() else []


def _size(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def _tree(root):
    return {str(p.relative_to(root)): p.stat().st_size for p in Path(root).rglob("*")}


def _cli(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


# --------------------------------------------------------------------------- tests


def test_old_bundles_and_models_go_while_evidence_and_the_review_stay(tmp_path):
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=3")
    mans = [_day(cfg, k) for k in range(6)]
    work = tmp_path / "work"
    assert all(m["status"] == "ok" for m in mans)
    newest = mans[-3:]
    # only the newest 3 cycles keep their bundle (the whole history each) and their model weights
    assert _ids(work / "bundles") == sorted(m["steps"]["export"]["outputs"]["bundle_id"] for m in newest)
    assert _ids(work / "optimize") == [m["cycle_id"] for m in newest]
    # every cycle's evidence stays: the folder verifies against its manifest, file for file
    assert [p.name for _, p in list_cycles(tmp_path / "artifacts")] == [m["cycle_id"] for m in mans]
    assert all(verify_bundle(Path(m["path"])) == [] for m in mans)
    end = T0 + dt.timedelta(days=5, hours=6)
    for days in (3, 6):  # the 3-day review, and one over every cycle, pruned ones included
        rep = review(tmp_path / "artifacts", ReviewConfig(days=days), now=end)
        assert rep.passed and len(rep.cycles) == min(days, 6), [(ln.criterion, ln.evidence) for ln in rep.lines]
    # each cycle's manifest records what it removed: day 3 dropped day 0's bundle and model, and the cache
    ret = mans[3]["retention"]
    kinds = sorted((i["kind"], i["cycle_id"]) for i in ret["items"])
    assert kinds == [("cache", None), ("export bundle", mans[0]["cycle_id"]), ("optimize folder", mans[0]["cycle_id"])]
    assert ret["removed"] == 3 and ret["failed"] == 0 and ret["bytes_freed"] == ret["bytes_planned"] > 2000
    assert json.loads((Path(mans[3]["path"]) / "manifest.json").read_text())["retention"] == ret
    assert ret["kept_cycles"] == [m["cycle_id"] for m in mans[1:4]]


def test_a_bundle_named_by_a_kept_cycle_stays(tmp_path):
    # no new sessions on day 1: its export is day 0's bundle (same id), which it keeps alive
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=1")
    m0, m1 = _day(cfg, 0), _day(cfg, 1, new_runs=0)
    bid = m0["steps"]["export"]["outputs"]["bundle_id"]
    assert m1["steps"]["export"]["outputs"]["bundle_id"] == bid
    assert _ids(tmp_path / "work" / "bundles") == [bid]
    assert _ids(tmp_path / "work" / "optimize") == [m1["cycle_id"]]
    # by hand after the cycle, the kept cycle's manifest is what keeps the bundle: nothing more to remove
    rep = prune(cfg)
    assert rep.items == [] and rep.kept_cycles == [m1["cycle_id"]] and _ids(tmp_path / "work" / "bundles") == [bid]
    m2 = _day(cfg, 2)
    assert _ids(tmp_path / "work" / "bundles") == [m2["steps"]["export"]["outputs"]["bundle_id"]]


def test_promoted_models_are_pinned_and_rollback_still_works(tmp_path):
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=1")
    st = PolicyState(tmp_path / "state")
    opt = tmp_path / "work" / "optimize"
    # day 0's model, then day 1's, went through the canary and were promoted: policy ids are their folders
    m0 = _day(cfg, 0)
    v0 = str(opt / m0["cycle_id"] / "worker-optimized-s0")
    promote(st, gate_report(tmp_path / "g0.json", v0, "baseline"))
    m1 = _day(cfg, 1)
    v1 = str(opt / m1["cycle_id"] / "worker-optimized-s0")
    promote(st, gate_report(tmp_path / "g1.json", v1, v0))
    state_before = {p.name: p.read_bytes() for p in st.root.iterdir()}
    m2 = _day(cfg, 2)
    # day 2's model is in canary, not promoted yet: the operator pins it
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=1", f"shadow.retention.pin=[{m2['cycle_id']}]")
    m3, m4 = _day(cfg, 3), _day(cfg, 4)
    # keep_cycles=1 keeps day 4 only; the active model (day 1), the rollback target (day 0) and the pin stay
    assert _ids(opt) == [m["cycle_id"] for m in (m0, m1, m2, m4)] and not (opt / m3["cycle_id"]).exists()
    assert sorted(m4["retention"]["pinned"]) == [str(opt / m["cycle_id"]) for m in (m0, m1, m2)]
    assert {p.name: p.read_bytes() for p in st.root.iterdir()} == state_before  # history and active.json untouched
    assert Path(active_record(st)["active_policy"]).is_dir()
    rec = rollback(st, note="canary regression")
    assert rec["active_policy"] == v0 and Path(v0, "sft", "final", "model.safetensors").is_file()
    _day(_cfg(tmp_path, "shadow.retention.keep_cycles=1"), 5)
    # a policy rolled back from stays pinned (the history keeps naming it); the unpinned canary model goes
    assert _ids(opt) == [m0["cycle_id"], m1["cycle_id"], (T0 + dt.timedelta(days=5)).strftime("%Y%m%dT%H%M%SZ")]


def test_an_unreadable_policy_history_holds_back_every_model_and_bundle(tmp_path):
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=1")
    m0 = _day(cfg, 0)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "history.jsonl").write_text("{not json\n")
    m1 = _day(cfg, 1)
    assert m1["status"] == "ok"  # retention never fails a cycle
    assert "history.jsonl:1" in m1["retention"]["problems"][0]
    assert _ids(tmp_path / "work" / "optimize") == [m0["cycle_id"], m1["cycle_id"]]
    assert _ids(tmp_path / "work" / "bundles") == sorted(m["steps"]["export"]["outputs"]["bundle_id"] for m in (m0, m1))
    r = _cli("shadow-prune", "--config", ROOT / "configs/ops/shadow.yaml", *_overrides(tmp_path), "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["problems"]
    assert json.loads(r.stdout)["ok"] is False  # ok, as the other ops commands' summaries have it


def _overrides(tmp_path, *extra):
    """Every folder retention reads or prunes under ``tmp_path`` (never the checkout's)."""
    return [f"artifacts_dir={tmp_path / 'artifacts'}", f"shadow.work_dir={tmp_path / 'work'}",
            f"promotion.state_dir={tmp_path / 'state'}", f"weekly.bundles_dir={tmp_path / 'weekly-bundles'}",
            f"weekly.artifacts_dir={tmp_path / 'weekly-art'}", f"phase2.out_dir={tmp_path / 'phase2'}",
            "shadow.retention.pin_configs=[]", "shadow.sources=[]", *extra]  # the checkout's canary.yaml names
    # state/policy; shadow.yaml's sources (~/.openclaw) a cycle refuses to start without, where it is not there


CRASH = """
import json, os, signal, sys
from pathlib import Path
from tracebridge.config import load_config
from tracebridge.ops.config import OpsConfig
from tracebridge.ops.cycle import Step, run_cycle
import datetime as dt

def killed(ctx):  # the optimize step dies mid-training (OOM killer, reboot): weights and a temp export remain
    final = ctx.work / "optimize" / ctx.bundle.name / "worker-optimized-s0"
    final.mkdir(parents=True)
    (final / "model.safetensors").write_bytes(b"w" * 50000)
    (ctx.work / "bundles" / ".bundle-k1ll3d" / "views").mkdir(parents=True)
    (ctx.work / "bundles" / ".bundle-k1ll3d" / "views" / "rows.jsonl").write_text("x" * 30000)
    (ctx.bundle / "logs").mkdir()
    (ctx.bundle / "logs" / "optimize.log").write_text("epoch 1")
    os.kill(os.getpid(), signal.SIGKILL)

cfg = load_config(OpsConfig, None, json.loads(sys.argv[1]))
run_cycle(cfg, [Step("optimize", killed)], cli=[], now=dt.datetime.fromisoformat(sys.argv[2]))
"""


def _crash(tmp_path, k):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", CRASH, json.dumps(_overrides(tmp_path)),
                          (T0 + dt.timedelta(days=k)).isoformat()], cwd=ROOT, env=env, capture_output=True, check=False)
    assert res.returncode == -9, res.stderr.decode()[-2000:]
    return (T0 + dt.timedelta(days=k)).strftime("%Y%m%dT%H%M%SZ")


def test_a_crashed_cycle_loses_its_models_not_its_evidence_once_a_newer_cycle_finished(tmp_path):
    cfg = _cfg(tmp_path)
    m0 = _day(cfg, 0)
    crashed = _crash(tmp_path, 1)
    art, work = tmp_path / "artifacts", tmp_path / "work"
    assert not (art / crashed / "manifest.json").exists() and (work / "optimize" / crashed).is_dir()
    assert (work / ".shadow-cycle.lock").exists()  # the dead cycle's lock file stays, unheld
    # newer than every finished cycle: it may be a cycle of interest; only the killed export's temp goes
    r = _cli("shadow-prune", "--config", ROOT / "configs/ops/shadow.yaml", *_overrides(tmp_path), "--json")
    assert r.exit_code == 0, r.output
    assert [(i["kind"], Path(i["path"]).name) for i in json.loads(r.stdout)["items"]] == [("partial export", ".bundle-k1ll3d")]
    assert json.loads(r.stdout)["ok"] is True
    assert (art / crashed).is_dir() and (work / "optimize" / crashed).is_dir()
    m2 = _day(cfg, 2)  # the next cycle takes the lock and cleans the crash up
    assert m2["status"] == "ok"
    got = {(i["kind"], i["path"]) for i in m2["retention"]["items"]}
    assert ("optimize folder", str(work / "optimize" / crashed)) in got
    assert not any(p == str(art / crashed) for _, p in got)
    # the crash stays visible to the review: its folder (no manifest) is still listed
    assert [p.name for _, p in list_cycles(art)] == [m0["cycle_id"], crashed, m2["cycle_id"]]
    assert _ids(work / "optimize") == [m0["cycle_id"], m2["cycle_id"]]
    assert (work / ".shadow-cycle.lock").exists() and verify_bundle(Path(m0["path"])) == []
    assert _cfg(tmp_path, "shadow.retention.remove_crashed=false").shadow.retention.remove_crashed is False


def test_dry_run_removes_nothing_and_json_lists_what_goes(tmp_path):
    cfg = _cfg(tmp_path, "shadow.retention.enabled=false")
    mans = [_day(cfg, k) for k in range(3)]
    assert all(m["retention"] == {"enabled": False} for m in mans)
    work = tmp_path / "work"
    before = _tree(tmp_path)
    args = ["shadow-prune", "--config", ROOT / "configs/ops/shadow.yaml", *_overrides(tmp_path, "shadow.retention.keep_cycles=1")]
    r = _cli(*args, "--dry-run")
    assert r.exit_code == 0, r.output
    assert "would remove" in r.stdout and str(work / "optimize" / mans[0]["cycle_id"]) in r.stdout
    r = _cli(*args, "--dry-run", "--json")
    plan = json.loads(r.stdout)
    assert _tree(tmp_path) == before  # nothing removed
    assert plan["dry_run"] is True and plan["removed"] == 0 and plan["bytes_freed"] == 0
    expect = {str(work / "bundles" / ".hf-cache")} | {str(work / "optimize" / m["cycle_id"]) for m in mans[:2]} | \
        {m["steps"]["export"]["outputs"]["bundle_dir"] for m in mans[:2]}
    assert {i["path"] for i in plan["items"]} == expect
    assert all(i["bytes"] == _size(i["path"]) > 0 for i in plan["items"])
    r = _cli(*args, "--json")
    done = json.loads(r.stdout)
    assert r.exit_code == 0 and done["dry_run"] is False and done["removed"] == len(expect) and done["failed"] == 0
    assert done["bytes_freed"] == plan["bytes_planned"] and not any(Path(p).exists() for p in expect)
    assert all(verify_bundle(Path(m["path"])) == [] for m in mans)
    r = _cli(*args)  # nothing left to do
    assert r.exit_code == 0 and "removed 0 folders, 0 B" in r.stdout


def test_prune_waits_for_a_running_cycle_and_checks_its_config(tmp_path):
    cfg = _cfg(tmp_path, "shadow.retention.enabled=false")
    for k in range(2):
        _day(cfg, k)
    before = _tree(tmp_path)
    args = ["shadow-prune", "--config", ROOT / "configs/ops/shadow.yaml", *_overrides(tmp_path, "shadow.retention.keep_cycles=1")]
    with FileLock(str(tmp_path / "work" / ".shadow-cycle.lock")):
        r = _cli(*args)
        assert r.exit_code == 3 and "running" in r.output
        assert _cli(*args, "--dry-run").exit_code == 3  # nor a list: the running cycle's files look old
    assert _tree(tmp_path) == before
    r = _cli(*args, "shadow.retention.keep_cycles=0")
    assert r.exit_code == 2 and "shadow.retention.keep_cycles=0: must be >= 1" in r.output
    with pytest.raises(ConfigError, match="keep_cycles"):
        _cfg(tmp_path, "shadow.retention.keep_cycles=-1")


@pytest.fixture
def undeletable():
    """Make a file impossible to unlink: immutable as root (chattr +i), a read-only folder otherwise."""
    done = []

    def make(path: Path):
        if os.geteuid() == 0:
            if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], check=False).returncode:
                pytest.skip("running as root without chattr +i: no file can be made undeletable")
            done.append(lambda: subprocess.run(["chattr", "-i", str(path)], check=False))
        else:
            path.parent.chmod(0o555)
            done.append(lambda: path.parent.chmod(0o755))

    yield make
    for undo in done:
        undo()


def test_a_folder_that_cannot_be_removed_is_counted_and_the_cycle_still_passes(tmp_path, undeletable):
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=1")
    m0 = _day(cfg, 0)
    stuck = Path(m0["steps"]["optimize"]["outputs"]["work_dir"]) / "worker-optimized-s0" / "sft" / "final" / "model.safetensors"
    undeletable(stuck)
    m1 = _day(cfg, 1)
    assert m1["status"] == "ok"
    ret = m1["retention"]
    bad = [i for i in ret["items"] if i["error"]]
    assert ret["failed"] == 1 and bad[0]["path"] == m0["steps"]["optimize"]["outputs"]["work_dir"]
    assert bad[0]["removed"] is False and bad[0]["freed"] == bad[0]["bytes"] - stuck.stat().st_size
    assert not Path(m0["steps"]["export"]["outputs"]["bundle_dir"]).exists()  # the rest went
    r = _cli("shadow-prune", "--config", ROOT / "configs/ops/shadow.yaml", *_overrides(tmp_path, "shadow.retention.keep_cycles=1"))
    assert r.exit_code == 1 and "1 could not be removed" in r.stdout and "FAILED" in r.stdout


def test_real_steps_leave_only_the_newest_bundle(tmp_path, monkeypatch):
    # the real import, validate, export, replay, consumer and chunk steps: prune finds their files where they are
    from tests.conftest import record_sample_run
    from tests.ops.test_shadow_cycle import CLI, _inputs, missing_upstream
    from tracebridge.ops.shadow_steps import STEPS as REAL

    if missing_upstream():
        pytest.skip("upstream commands not in this checkout yet: " + ", ".join(missing_upstream()))
    monkeypatch.chdir(tmp_path)
    ov = [*_inputs(tmp_path, T0), "shadow.skip=[optimize,runtime_hook]", "shadow.retention.keep_cycles=1"]
    cfg = load_config(OpsConfig, tmp_path / "configs/ops/shadow.yaml", ov)
    m0 = run_cycle(cfg, REAL, CLI, now=T0)
    assert m0["steps"]["consumers"]["status"] == "ok" and (tmp_path / "shadow/bundles/.hf-cache").is_dir() is False
    record_sample_run(tmp_path / "shadow" / "traces")  # a new session: the next export is a new bundle
    m1 = run_cycle(cfg, REAL, CLI, now=T0 + dt.timedelta(days=1))
    b0, b1 = (Path(m["steps"]["export"]["outputs"]["bundle_dir"]) for m in (m0, m1))
    assert b0 != b1 and b1.is_dir() and not b0.exists()
    assert _ids(tmp_path / "shadow" / "bundles") == [b1.name]
    assert Path(m1["steps"]["replay"]["outputs"]["bundle_dir"]).is_dir()  # the fixed replay set's bundle stays
    assert {i["kind"] for i in m1["retention"]["items"]} == {"export bundle", "cache"}
    assert all(verify_bundle(Path(m["path"])) == [] for m in (m0, m1))


def test_a_pinned_folder_names_the_setting_that_pins_it(tmp_path):
    """A folder kept by ``shadow.retention.pin`` is reported as named there, not "in the promotion
    history" (there is none here), in the text output and in ``pinned_by``."""
    cfg = _cfg(tmp_path, "shadow.retention.enabled=false")
    m0, _ = _day(cfg, 0), _day(cfg, 1)
    opt = str(tmp_path / "work" / "optimize" / m0["cycle_id"])
    args = ["shadow-prune", "--config", ROOT / "configs/ops/shadow.yaml",
            *_overrides(tmp_path, "shadow.retention.keep_cycles=1", f"shadow.retention.pin=[{m0['cycle_id']}]")]
    r = _cli(*args, "--dry-run")
    assert r.exit_code == 0 and f"{opt}  (named in shadow.retention.pin)" in r.stdout, r.stdout
    assert "promotion history" not in r.stdout
    assert json.loads(_cli(*args, "--dry-run", "--json").stdout)["pinned_by"] == {opt: "shadow.retention.pin"}
