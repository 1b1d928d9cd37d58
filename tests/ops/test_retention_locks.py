"""Retention against what runs beside it: a live shadow cycle (the dry run must not list its files) and a
promotion holding the policy lock (its candidate must not be removed between the prune's read and its
removal). Real cycles (``tests.ops.test_retention``'s cheap steps), real locks, real promotions.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.ops.test_promotion import gate_report
from tests.ops.test_retention import ROOT, STEPS, T0, _cfg, _cli, _day, _overrides
from tracebridge.ops import promotion as promo
from tracebridge.ops.cycle import Step, cycle_lock, run_cycle
from tracebridge.ops.promotion import PolicyState, active_record, promote
from tracebridge.ops.retention import prune

SHADOW_YAML = ROOT / "configs/ops/shadow.yaml"


def test_a_dry_run_during_a_live_cycle_lists_none_of_its_files_and_does_not_wait(tmp_path):
    # three finished cycles, then a fourth that is running: its export is written, its manifest is not
    cfg = _cfg(tmp_path, "shadow.retention.enabled=false")
    for k in range(3):
        _day(cfg, k)
    args = ["shadow-prune", "--config", SHADOW_YAML,
            *_overrides(tmp_path, "shadow.retention.keep_cycles=1", "shadow.lock_timeout_s=30"), "--json"]
    seen = {}

    def peek(ctx):  # the operator lists what a prune would remove, while the cycle goes on
        (ctx.work / "bundles" / ".bundle-live").mkdir()  # the replay export's temp folder, being written
        t0 = time.monotonic()
        seen["r"], seen["s"] = _cli(*args, "--dry-run"), time.monotonic() - t0
        return {}

    traces = tmp_path / "work" / "traces"
    (traces / "run-new.json").write_text(json.dumps({"new": 1}) + "\n")
    man = run_cycle(cfg, [*STEPS, Step("peek", peek, ("export",))], cli=[], now=T0 + dt.timedelta(days=3))
    live_bundle = man["steps"]["export"]["outputs"]["bundle_dir"]
    r = seen["r"]
    # it says a cycle runs (exit 3, as the prune itself) instead of listing the live bundle or temp folder
    assert r.exit_code == 3 and "a shadow cycle is running" in r.output, r.output
    assert live_bundle not in r.output and ".bundle-live" not in r.output
    assert seen["s"] < 5  # it did not wait shadow.lock_timeout_s (30 s) for the cycle
    assert Path(live_bundle).is_dir()
    r = _cli(*args, "--dry-run")  # after the cycle: the live cycle's bundle is kept, the temp folder listed
    plan = json.loads(r.stdout)
    assert r.exit_code == 0 and live_bundle not in {i["path"] for i in plan["items"]}
    assert str(tmp_path / "work" / "bundles" / ".bundle-live") in {i["path"] for i in plan["items"]}


def test_a_promotion_in_progress_keeps_its_candidate(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=1", "shadow.retention.enabled=false")
    m0, _ = _day(cfg, 0), _day(cfg, 1)
    cand = tmp_path / "work" / "optimize" / m0["cycle_id"] / "worker-optimized-s0"  # aged out: removable
    st = PolicyState(tmp_path / "state")
    st.root.mkdir()
    report = gate_report(tmp_path / "g.json", str(cand), "baseline")
    holding, go = threading.Event(), threading.Event()
    real_append = promo._append

    def slow_append(*a, **kw):  # the promotion has read the history under its lock and not yet appended
        holding.set()
        go.wait(10)
        return real_append(*a, **kw)

    monkeypatch.setattr(promo, "_append", slow_append)
    out: dict[str, object] = {}
    p = threading.Thread(target=lambda: out.setdefault("rec", promote(st, report)))
    p.start()
    assert holding.wait(10)
    r = threading.Thread(target=lambda: out.setdefault("rep", prune(cfg)))
    r.start()
    time.sleep(0.5)  # the prune reaches the policy lock and waits there
    go.set()
    p.join(10)
    r.join(20)
    rep = out["rep"]
    assert active_record(st)["active_policy"] == str(cand)
    assert (cand / "sft" / "final" / "model.safetensors").is_file()  # the promoted model is there
    assert rep.pinned_by[str(cand.parent)] == "the promotion history"
    assert str(tmp_path / "work" / "bundles" / m0["steps"]["export"]["outputs"]["bundle_id"]) in {i.path for i in rep.items}


def test_a_policy_lock_held_too_long_holds_back_every_model_and_bundle(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=1", "shadow.retention.enabled=false")
    m0, m1 = _day(cfg, 0), _day(cfg, 1)
    (tmp_path / "state").mkdir()
    monkeypatch.setattr("tracebridge.ops.retention_sources.POLICY_LOCK_TIMEOUT_S", 0.2)
    with PolicyState(tmp_path / "state").lock():  # a promote or rollback that does not finish
        rep = prune(cfg)
        r = _cli("shadow-prune", "--config", SHADOW_YAML, *_overrides(tmp_path, "shadow.retention.keep_cycles=1"))
    assert any("held the policy lock" in p for p in rep.problems), rep.problems
    assert any(f"held the policy lock for 0.2 s (held by pid {os.getpid()} (" in p for p in rep.problems), rep.problems
    assert [i.kind for i in rep.items] == ["cache"]
    assert (tmp_path / "work" / "optimize" / m0["cycle_id"]).is_dir()
    assert r.exit_code == 1 and "held the policy lock" in r.stdout
    assert prune(cfg).problems == []  # once the lock is free, the prune goes ahead
    assert not (tmp_path / "work" / "optimize" / m0["cycle_id"]).exists()
    assert (tmp_path / "work" / "optimize" / m1["cycle_id"]).is_dir()


def test_the_removal_holds_neither_the_policy_lock_nor_the_cycle_lock(tmp_path, monkeypatch):
    # before: the prune held promotion.state_dir's lock and the cycle lock while it removed GBs of bundles and
    # weights: a promote started meanwhile waited its 30 s and failed ("another promote/rollback holds the lock"),
    # a cycle exited 3. Now the planned folders are moved aside under the locks and removed after them
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=1", "shadow.retention.enabled=false")
    m0, m1 = _day(cfg, 0), _day(cfg, 1)
    st = PolicyState(tmp_path / "state")
    promote(st, gate_report(tmp_path / "g1.json", "v2", "v1"))
    g2 = gate_report(tmp_path / "g2.json", "v3", "v2")
    real, seen = shutil.rmtree, []

    def during_removal(path, *a, **kw):  # the real removal, after an operator's promote and a cycle's lock
        if not seen:
            seen.append(promote(PolicyState(st.root, lock_timeout_s=0), g2)["active_policy"])
            with cycle_lock(cfg, "a prune is removing", 0):
                seen.append("cycle lock free")
        return real(path, *a, **kw)

    monkeypatch.setattr(shutil, "rmtree", during_removal)
    rep = prune(cfg)
    assert seen == ["v3", "cycle lock free"]
    assert active_record(st)["active_policy"] == "v3"
    assert rep.failed == [] and not (tmp_path / "work" / "optimize" / m0["cycle_id"]).exists()
    assert (tmp_path / "work" / "optimize" / m1["cycle_id"]).is_dir()
    assert str(tmp_path / "work" / "optimize" / m0["cycle_id"]) in {i.path for i in rep.items if i.removed}
    assert not [p for p in (tmp_path / "work").rglob(".pruning-*")]


def test_folders_a_killed_prune_moved_aside_are_removed_by_the_next(tmp_path):
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=1", "shadow.retention.enabled=false")
    _day(cfg, 0)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)
    left = tmp_path / "work" / "bundles" / f".pruning-{int(dead.stdout)}-{'a' * 64}"
    (left / "rows").mkdir(parents=True)
    (left / "rows" / "x.jsonl").write_text("{}\n" * 100)
    live = tmp_path / "work" / "optimize" / f".pruning-{os.getppid()}-20260101T000000Z"  # a prune still removing it
    live.mkdir(parents=True)
    plan = prune(cfg, dry_run=True)
    got = {i.path: i for i in plan.items}
    assert got[str(left)].kind == "interrupted prune" and got[str(left)].bytes == 300 and str(live) not in got
    rep = prune(cfg)
    assert not left.exists() and live.is_dir() and {i.path: i.removed for i in rep.items}[str(left)]
