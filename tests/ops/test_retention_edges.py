"""Retention against misconfiguration and odd files: what the prune must leave alone, and what it must
report right. Real cycles (``tests.ops.test_retention``'s cheap steps, real layout), real files, no mocks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from tests.ops.test_promotion import gate_report
from tests.ops.test_retention import ROOT, T0, _cfg, _cli, _day, _ids, _overrides
from tracebridge.ops.artifacts import list_cycles, verify_bundle
from tracebridge.ops.promotion import PolicyState, promote
from tracebridge.ops.retention import prune

SHADOW_YAML = ROOT / "configs/ops/shadow.yaml"


def _bundle_id(m):
    return m["steps"]["export"]["outputs"]["bundle_id"]


def test_artifacts_dir_inside_work_optimize_is_refused_and_its_evidence_never_pruned(tmp_path):
    # misconfigured: the evidence folders land where the optimize folders are pruned
    art = tmp_path / "work" / "optimize"
    cfg = _cfg(tmp_path, f"artifacts_dir={art}", "shadow.retention.keep_cycles=1")
    with pytest.raises(ValueError, match=r"artifacts_dir=.*: inside shadow.work_dir/optimize"):
        _day(cfg, 0)
    assert not art.exists()  # refused before anything was written
    # evidence there anyway (an older version wrote it, the config changed later): the prune keeps it
    mans = [_day(_cfg(tmp_path, f"artifacts_dir={tmp_path / 'evidence'}", "shadow.retention.enabled=false"), k)
            for k in range(3)]
    shutil.copytree(tmp_path / "evidence", art, dirs_exist_ok=True)
    assert [p.name for _, p in list_cycles(art)] == [m["cycle_id"] for m in mans]
    r = _cli("shadow-prune", "--config", SHADOW_YAML, *_overrides(tmp_path, f"artifacts_dir={art}",
                                                                  "shadow.retention.keep_cycles=1"), "--json")
    assert r.exit_code == 1 and any(str(art / mans[0]["cycle_id"]) in p for p in json.loads(r.stdout)["problems"])
    assert all(verify_bundle(art / m["cycle_id"]) == [] for m in mans)


def test_a_damaged_export_block_in_an_old_manifest_does_not_stop_retention(tmp_path):
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=1")
    m0, _ = _day(cfg, 0), _day(cfg, 1)
    mp = Path(m0["path"]) / "manifest.json"
    mp.chmod(0o644)
    man = json.loads(mp.read_text())
    man["steps"]["export"]["outputs"] = ["not", "an", "object"]  # hand-edited / written by a buggy version
    mp.write_text(json.dumps(man))
    m2 = _day(cfg, 2)
    assert "error" not in m2["retention"], m2["retention"]
    r = _cli("shadow-prune", "--config", SHADOW_YAML, *_overrides(tmp_path, "shadow.retention.keep_cycles=1"), "--json")
    assert r.exit_code == 0, r.output
    assert _ids(tmp_path / "work" / "bundles") == [_bundle_id(m2)]


def test_bytes_freed_counts_hard_linked_files_once_and_not_when_linked_from_a_kept_folder(tmp_path):
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=1", "shadow.retention.enabled=false")
    m0, m1 = _day(cfg, 0), _day(cfg, 1)
    old, kept = (tmp_path / "work" / "optimize" / m["cycle_id"] for m in (m0, m1))
    (old / "ckpt.bin").write_bytes(b"w" * 400_000)
    os.link(old / "ckpt.bin", old / "ckpt-final.bin")  # a checkpoint laid out by hard links (pack_checkpoint)
    (old / "shared.bin").write_bytes(b"s" * 300_000)
    os.link(old / "shared.bin", kept / "shared.bin")  # still linked from the kept cycle: removing frees nothing
    rep = prune(cfg)
    it = next(i for i in rep.items if i.path == str(old))
    assert it.removed and (kept / "shared.bin").stat().st_size == 300_000
    expect = 400_000 + 32 * 1024 + len('{"variant": "optimized"}')
    assert it.bytes == it.freed == expect, (it.bytes, expect)


def test_a_users_copy_named_like_a_cycle_in_optimize_is_left_alone(tmp_path):
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=1")
    m0 = _day(cfg, 0)
    keep = tmp_path / "work" / "optimize" / f"{m0['cycle_id']}-good-model"  # saved by hand before it ages out
    keep.mkdir()
    (keep / "model.safetensors").write_text("precious")
    # an artifacts folder whose name only starts like a cycle's (notes, a copy): not a crashed cycle
    notes = tmp_path / "artifacts" / f"{m0['cycle_id']}-notes"
    notes.mkdir()
    (tmp_path / "work" / "optimize" / notes.name).mkdir()
    (tmp_path / "work" / "optimize" / notes.name / "w.bin").write_text("mine")
    m1, m2 = _day(cfg, 1), _day(cfg, 2)
    assert keep.is_dir() and (tmp_path / "work" / "optimize" / notes.name / "w.bin").is_file()
    assert _ids(tmp_path / "work" / "optimize") == sorted([keep.name, notes.name, m2["cycle_id"]])
    assert m1["status"] == "ok"


def test_pins_match_whatever_the_case_and_through_a_symlinked_policy_id(tmp_path):
    m0 = _day(_cfg(tmp_path, "shadow.retention.keep_cycles=1"), 0)
    day1 = (T0 + dt.timedelta(days=1)).strftime("%Y%m%dT%H%M%SZ")
    # the operator pins day 0's bundle by its id in capitals, and day 1's model by its id in lower case
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=1",
               f"shadow.retention.pin=[{_bundle_id(m0).upper()},{day1.lower()}]")
    # the active policy is a stable symlink the runtime loads, pointing at day 0's model
    link = tmp_path / "models" / "worker-current"
    link.parent.mkdir()
    model0 = tmp_path / "work" / "optimize" / m0["cycle_id"] / "worker-optimized-s0"
    link.symlink_to(model0, target_is_directory=True)
    promote(PolicyState(tmp_path / "state"), gate_report(tmp_path / "g.json", str(link), "baseline"))
    for k in (1, 2, 3):
        _day(cfg, k)
    assert (tmp_path / "work" / "bundles" / _bundle_id(m0)).is_dir()
    assert (tmp_path / "work" / "optimize" / day1).is_dir()
    assert (link / "sft" / "final" / "model.safetensors").is_file()


def test_bundles_no_cycle_names_are_not_the_cycles_to_remove(tmp_path):
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=2", "shadow.retention.enabled=false")
    mans = [_day(cfg, k) for k in range(3)]
    bundles = tmp_path / "work" / "bundles"
    # a bundle exported by hand into the same folder (64 hex, a real export's layout)
    mine = bundles / ("ab" * 32)
    mine.mkdir()
    (mine / "manifest.json").write_text(json.dumps({"bundle_id": mine.name}))
    # shadow-prune run with an artifacts_dir that is not this host's (a relative path from another cwd)
    elsewhere = _overrides(tmp_path, f"artifacts_dir={tmp_path / 'elsewhere'}", "shadow.retention.keep_cycles=2")
    r = _cli("shadow-prune", "--config", SHADOW_YAML, *elsewhere, "--json")
    assert r.exit_code == 0, r.output
    assert [i["kind"] for i in json.loads(r.stdout)["items"]] == ["cache"]
    assert _ids(bundles) == sorted([mine.name, *(_bundle_id(m) for m in mans)])
    # a cycle killed after its export: the artifacts folder names the bundle it wrote, so that one goes
    crashed = tmp_path / "artifacts" / "20260301T235900Z"
    (crashed / "export").mkdir(parents=True)
    dead = bundles / ("cd" * 32)
    (dead / "views").mkdir(parents=True)
    (crashed / "export" / "manifest.json").write_text(json.dumps({"bundle_id": dead.name}))
    r = _cli("shadow-prune", "--config", SHADOW_YAML, *_overrides(tmp_path, "shadow.retention.keep_cycles=2"), "--json")
    assert r.exit_code == 0, r.output
    assert _ids(bundles) == sorted([mine.name, *(_bundle_id(m) for m in mans[1:])])
    assert stat.S_ISDIR(os.lstat(mine).st_mode)


def test_a_canary_config_with_another_promotion_state_dir_holds_back_every_model(tmp_path):
    # promote ran with canary.yaml, whose promotion.state_dir is not the one shadow.yaml (the prune) has:
    # the prune read an empty history there and removed the promoted model, leaving rollback nothing
    canary = tmp_path / "canary.yaml"
    canary.write_text(f"promotion:\n  state_dir: {tmp_path / 'canary-state'}\n")
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=1", f"shadow.retention.pin_configs=[{canary}]")
    m0 = _day(cfg, 0)
    v0 = str(tmp_path / "work" / "optimize" / m0["cycle_id"] / "worker-optimized-s0")
    promote(PolicyState(tmp_path / "canary-state"), gate_report(tmp_path / "g0.json", v0, "baseline"))
    m1 = _day(cfg, 1)
    assert Path(v0).is_dir() and m1["status"] == "ok"
    problem = m1["retention"]["problems"][0]
    assert f"{canary} sets promotion.state_dir={tmp_path / 'canary-state'}" in problem
    assert f"promotion.state_dir={tmp_path / 'state'}" in problem and "set the same promotion.state_dir in both" in problem
    # the same folder named in both: the history is read, the promoted model is pinned and the rest goes
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=1", f"shadow.retention.pin_configs=[{canary}]",
               f"promotion.state_dir={tmp_path / 'canary-state'}")
    m2 = _day(cfg, 2)
    assert not m2["retention"]["problems"] and Path(v0).is_dir()
    assert _ids(tmp_path / "work" / "optimize") == [m0["cycle_id"], m2["cycle_id"]]


def test_the_cycle_command_prints_what_holds_retention_back(tmp_path, monkeypatch):
    # the manifest had the problem, the cycle's output only "retention: removed 1 folders": nothing is pruned
    # any more and the disk fills, unseen in the timer's log
    import tracebridge.ops.shadow_steps as steps
    from tests.ops.test_retention import STEPS

    monkeypatch.setattr(steps, "STEPS", STEPS)
    canary = tmp_path / "canary.yaml"
    canary.write_text(f"promotion:\n  state_dir: {tmp_path / 'canary-state'}\n")
    (tmp_path / "work" / "traces").mkdir(parents=True)
    r = _cli("shadow-cycle", "--config", SHADOW_YAML, *_overrides(tmp_path, f"shadow.retention.pin_configs=[{canary}]"))
    assert r.exit_code == 0, r.output
    assert f"retention problem: shadow.retention.pin_configs: {canary} sets promotion.state_dir" in r.output
    # the cycle's config is named by its file (was "this config": the cycle's retention had no path)
    assert f"but {SHADOW_YAML} with the overrides given has promotion.state_dir={tmp_path / 'state'}" \
        in r.output.replace("\n", "")


def test_cycles_dated_in_the_future_after_the_clock_was_set_back_stop_the_prune_and_are_named(tmp_path):
    """Cycles run while the clock was 30 days ahead keep the newest stamps after it is set back: they were
    kept and the really newest cycles' bundles and models pruned. Now nothing a cycle wrote is removed
    while a cycle is dated after now; the problem names those cycles."""
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=2")
    ahead = [_day(cfg, k) for k in (30, 31, 32)]  # the clock 30 days ahead; day 30's things aged out
    work = tmp_path / "work"
    assert _ids(work / "optimize") == [m["cycle_id"] for m in ahead[1:]]
    back = [_day(cfg, k) for k in (0, 1, 2)]  # set back by 30 days (more than keep_cycles)
    assert _ids(work / "optimize") == sorted(m["cycle_id"] for m in ahead[1:] + back)
    assert set(_ids(work / "bundles")) == {_bundle_id(m) for m in ahead[1:] + back}
    ret = back[-1]["retention"]
    assert ret["items"] == [] or {i["kind"] for i in ret["items"]} == {"cache"}
    assert ret["problems"] == [
        (f"cycle(s) {', '.join(m['cycle_id'] for m in ahead)} are dated after now ({back[-1]['cycle_id']}): the clock "
        "was set back since they ran (or was ahead then), so which cycles are the newest cannot be told from their "
        "ids; no export bundle or optimize folder is removed until the clock passes them or they are moved out of "
        "artifacts_dir")]
    # once the clock passes them (today's shadow-prune, years later), the newest by date go as before
    r = _cli("shadow-prune", "--config", SHADOW_YAML, *_overrides(tmp_path, "shadow.retention.keep_cycles=2"), "--json")
    assert r.exit_code == 0, r.output
    assert _ids(work / "optimize") == [m["cycle_id"] for m in ahead[1:]]
    # a cycle dated after today's clock: shadow-prune exits 1 naming it, and removes none of their things
    far = _day(cfg, 40_000)  # its own cycle's prune keeps 2 (nothing is dated after it)
    r = _cli("shadow-prune", "--config", SHADOW_YAML, *_overrides(tmp_path, "shadow.retention.keep_cycles=1"), "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["problems"][0].startswith(f"cycle(s) {far['cycle_id']} are dated after now")
    assert _ids(work / "optimize") == [ahead[2]["cycle_id"], far["cycle_id"]]
