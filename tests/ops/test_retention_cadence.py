"""Retention of the other cadences: phase 2's bundle and trial folders, weekly bundles, and pins set in
other ops configs. The real ``phase2_report`` and ``run_weekly`` write their real layout; only the
training (phase 2) and the ``tracebridge`` commands (weekly) are stand-ins, so each test takes seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import orjson
import pytest
from filelock import FileLock

from tests.conftest import record_sample_run
from tests.ops.test_phase2 import _trial
from tests.ops.test_promotion import gate_report
from tests.ops.test_retention import ROOT, T0, _cfg, _cli, _day, _ids, _overrides
from tracebridge.config import ConfigError, load_config
from tracebridge.ops import phase2
from tracebridge.ops.artifacts import cycle_stamp
from tracebridge.ops.config import OpsConfig, Phase2Config, PolicySpec, WeeklyConfig
from tracebridge.ops.promotion import PolicyState, promote
from tracebridge.ops.retention import prune
from tracebridge.ops.weekly import WEEKLY_LOCK, run_weekly
from tracebridge.schema.canonical import format_ts

SHADOW_YAML = ROOT / "configs/ops/shadow.yaml"
VIEWS = ROOT / "tests/data/train_views"  # a real bundle with verifier rows
VIEWS_ID = json.loads((VIEWS / "manifest.json").read_text())["bundle_id"]


def _p2cfg(tmp_path):
    return Phase2Config(role="verifier", policies=[PolicySpec("a", "baseline"), PolicySpec("b", "optimized")],
                        n_boot=200, out_dir=str(tmp_path / "phase2"))


def _files(folders):
    """Every file of the folders, with its bytes (evidence must come out of a prune unchanged)."""
    return {str(f): f.read_bytes() for d in folders for f in sorted(Path(d).rglob("*")) if f.is_file()}


def _fake_training(monkeypatch, during=None):
    """Phase 2 without training: each trial writes weights where the real one does, and eval items."""
    def run_policies(cfg, bundle, work):
        if during:
            during(work)
        trials = []
        for pol in cfg.policies:
            for seed in cfg.seeds:
                d = work / f"{pol.name}-s{seed}"
                d.mkdir(parents=True)
                (d / "model.safetensors").write_bytes(b"w" * 4096)
                trials.append({**_trial(work, pol.name, 30, seed=seed), "config_hash": "h", "trial_dir": str(d)})
        return trials

    monkeypatch.setattr(phase2, "run_policies", run_policies)


def test_a_running_phase2_keeps_the_bundle_it_reads_whatever_config_the_prune_has(tmp_path, monkeypatch):
    # the cycles' export bundles age out (keep_cycles=1); phase 2 reads one of them, given by
    # --bundle or phase2.bundle in phase2.yaml: the prune's config (shadow.yaml) names none
    cfg = _cfg(tmp_path, "shadow.retention.keep_cycles=1", "shadow.retention.enabled=false",
               "shadow.retention.keep_phase2=1")
    _day(cfg, 0)
    bundle = tmp_path / "work" / "bundles" / VIEWS_ID
    shutil.copytree(VIEWS, bundle)
    crashed = tmp_path / "artifacts" / "20260301T120000Z" / "export"  # the cycle that exported it, killed after
    crashed.mkdir(parents=True)
    (crashed / "manifest.json").write_text(json.dumps({"bundle_id": VIEWS_ID}))
    _day(cfg, 1)
    assert cfg.phase2.bundle is None and VIEWS_ID in {Path(i.path).name for i in prune(cfg, dry_run=True).items}
    seen = {}

    def during(work):  # the daily cycle's prune, while phase 2 trains
        seen["rep"] = prune(cfg)
        seen["there"] = bundle.is_dir() and work.is_dir()

    _fake_training(monkeypatch, during)
    man = phase2_report_at(tmp_path, bundle, 3)
    stamp = Path(man["path"]).name
    assert seen["there"], [i.path for i in seen["rep"].items]
    assert seen["rep"].pinned_by[str(bundle)] == f"phase-2 run {stamp}"
    # finished, the run is the newest of keep_phase2: its bundle stays (the report reproduces from it)
    _day(cfg, 2)
    assert bundle.is_dir() and (tmp_path / "phase2" / f".work-{stamp}").is_dir()
    assert json.loads((tmp_path / "phase2" / f".work-{stamp}" / "uses.json").read_text())["bundle_id"] == VIEWS_ID


def phase2_report_at(tmp_path, bundle, hours):
    return phase2.phase2_report(_p2cfg(tmp_path), bundle, tmp_path / "phase2", now=T0 + dt.timedelta(hours=hours))


def test_old_phase2_trial_folders_go_their_reports_stay(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, "shadow.retention.keep_phase2=2", "shadow.retention.enabled=false")
    bundle = tmp_path / "bundles" / VIEWS_ID
    shutil.copytree(VIEWS, bundle)
    _fake_training(monkeypatch)
    stamps = [Path(phase2_report_at(tmp_path, bundle, k)["path"]).name for k in range(5)]
    out = tmp_path / "phase2"
    # run 0 is going again (a lock held by a live process); run 1's model was promoted
    promote(PolicyState(tmp_path / "state"), gate_report(tmp_path / "g.json", str(out / f".work-{stamps[1]}" / "a-s0"),
                                                          "baseline"))
    reports = _files(out / s for s in stamps)
    assert {Path(f).name for f in reports} == {"manifest.json", "report.json", "report.md"}
    with FileLock(str(out / f".work-{stamps[0]}" / ".running.lock")):
        rep = prune(cfg)
    assert [(i.kind, Path(i.path).name) for i in rep.items] == [("phase-2 trials", f".work-{stamps[2]}")]
    assert rep.pinned_by[str(out / f".work-{stamps[1]}")] == "the promotion history"
    assert _ids(out) == sorted([*stamps, *(f".work-{s}" for s in (stamps[0], stamps[1], stamps[3], stamps[4])),
                                phase2.PHASE2_LOCK])  # the runs' lock file stays (unheld), as the cycle's does
    assert _files(out / s for s in stamps) == reports  # every report stays, byte for byte
    assert rep.items[0].removed and rep.items[0].freed >= 2 * 4096
    # run 0 ended: it is old and unpinned, so it goes; the bundle of the two newest runs stays
    assert [Path(i.path).name for i in prune(cfg).items] == [f".work-{stamps[0]}"]
    assert bundle.is_dir()


def test_a_bundle_named_only_in_another_ops_config_is_pinned(tmp_path):
    cfg = _cfg(tmp_path, "shadow.retention.enabled=false")
    m0, _, _ = _day(cfg, 0), _day(cfg, 1), _day(cfg, 2)
    b0 = m0["steps"]["export"]["outputs"]["bundle_dir"]
    p2 = tmp_path / "phase2.yaml"
    p2.write_text(f"phase2:\n  bundle: {b0}\n")  # set there for the next phase-2 run, which has not run yet
    args = ["shadow-prune", "--config", SHADOW_YAML, *_overrides(tmp_path, "shadow.retention.keep_cycles=1")]
    r = _cli(*args, f"shadow.retention.pin_configs=[{p2}]", "--dry-run", "--json")
    plan = json.loads(r.stdout)
    assert r.exit_code == 0 and b0 not in {i["path"] for i in plan["items"]}
    assert plan["pinned_by"][b0] == f"phase2.bundle of {p2}"
    # a listed config that cannot be read: no bundle or model is removed, and the prune says why
    r = _cli(*args, f"shadow.retention.pin_configs=[{tmp_path / 'gone.yaml'}]", "--json")
    rep = json.loads(r.stdout)
    assert r.exit_code == 1 and "gone.yaml" in rep["problems"][0] and [i["kind"] for i in rep["items"]] == ["cache"]
    assert Path(b0).is_dir() and len(_ids(tmp_path / "work" / "optimize")) == 3
    shipped = load_config(OpsConfig, SHADOW_YAML).shadow.retention
    assert shipped.pin_configs == ["configs/ops/phase2.yaml", "configs/ops/canary.yaml", "configs/ops/weekly.yaml"]
    assert all((ROOT / p).is_file() for p in shipped.pin_configs)


def _started(run: Path, when: dt.datetime) -> None:
    sess = run / "session.json"
    sess.write_bytes(orjson.dumps({**orjson.loads(sess.read_bytes()), "started_at": format_ts(when)}))


def _weekly_bin(tmp_path):
    """``tracebridge`` for the weekly plan: export writes a bundle (named by its --out) there, the rest pass."""
    script = tmp_path / "fake_tb.py"
    script.write_text(
        "import hashlib, os, sys\n"
        "if sys.argv[1] == 'export':\n"
        "    out = sys.argv[sys.argv.index('--out') + 1]\n"
        "    b = os.path.join(out, hashlib.sha256(out.encode()).hexdigest(), 'views')\n"
        "    os.makedirs(b)\n"
        "    open(os.path.join(b, 'rows.jsonl'), 'w').write('x' * 5000)\n")
    return [sys.executable, str(script)]


def test_weekly_bundles_beyond_keep_weekly_go_their_manifests_and_runs_stay(tmp_path):
    traces = tmp_path / "traces"
    run_id = record_sample_run(traces)
    wcfg = WeeklyConfig(traces=str(traces), bundles_dir=str(tmp_path / "weekly-bundles"), storage_uri="file:///x",
                        feedback_ledger=None, min_interval_h=0)  # weeks a minute apart: none skipped as the last's
    base = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)  # runs dated after the clock are never pruned
    _started(traces / run_id, base - dt.timedelta(days=1))  # inside week 0's window (runs started after it wait)
    for k in range(1, 4):  # a run of its own in each later week's: each starts where the last one ended
        _started(traces / record_sample_run(traces, goal=f"week {k}"), base + dt.timedelta(minutes=k, seconds=-30))
    mans = [run_weekly(wcfg, tmp_path / "weekly-art", _weekly_bin(tmp_path), now=base + dt.timedelta(minutes=k))
            for k in range(4)]
    assert [m["status"] for m in mans] == ["ok"] * 4
    s = [cycle_stamp(base + dt.timedelta(minutes=k)) for k in range(4)]
    wb = tmp_path / "weekly-bundles"
    cfg = _cfg(tmp_path, "shadow.retention.keep_weekly=2", "shadow.retention.enabled=false", f"weekly.traces={traces}")
    evidence = _files([tmp_path / "weekly-art"])
    assert len(evidence) == 4
    with FileLock(str(wb / f".weekly-{s[0]}" / ".running.lock")):  # week 0's run is still going
        rep = prune(cfg)
    assert sorted((i.kind, Path(i.path).name) for i in rep.items) == [("weekly bundle", f"weekly-{s[1]}"),
                                                                        ("weekly staging", f".weekly-{s[1]}")]
    assert all(i.removed for i in rep.items) and sum(i.freed for i in rep.items) >= 5000
    assert _ids(wb) == sorted([WEEKLY_LOCK, *(f"{p}weekly-{x}" for x in (s[0], s[2], s[3]) for p in ("", "."))])
    assert (traces / run_id / "events.jsonl").is_file()  # the staged links went, not the runs they point at
    assert _files([tmp_path / "weekly-art"]) == evidence  # every weekly manifest stays, byte for byte
    # week 0 ended; a pin on the bundle inside (its id, as a sweep report names it) keeps its bundle
    inner = next((wb / f"weekly-{s[0]}").iterdir()).name
    rep = prune(_cfg(tmp_path, "shadow.retention.keep_weekly=2", f"shadow.retention.pin=[{inner}]"))
    assert [Path(i.path).name for i in rep.items] == [f".weekly-{s[0]}"]  # the staged links still go
    assert rep.pinned_by[str(wb / f"weekly-{s[0]}" / inner)] == "shadow.retention.pin"
    assert [Path(i.path).name for i in prune(_cfg(tmp_path, "shadow.retention.keep_weekly=2")).items] == \
        [f"weekly-{s[0]}"]


def test_weekly_runs_dated_after_the_clock_stop_their_prune_and_are_named(tmp_path):
    """Weekly runs made while the clock was ahead keep the newest stamps once it is set back: ordered by
    stamp they would be kept and the really newest runs' bundles pruned. None is removed while a run is
    dated after the clock; the problem names the runs and where they lie."""
    traces = tmp_path / "traces"
    run_id = record_sample_run(traces)
    wcfg = WeeklyConfig(traces=str(traces), bundles_dir=str(tmp_path / "weekly-bundles"), storage_uri="file:///x",
                        feedback_ledger=None, days=60, min_interval_h=0)  # the run 30 days ahead still finds it
    now = dt.datetime.now(dt.UTC)
    _started(traces / run_id, now - dt.timedelta(days=1))  # before every week's end
    when = [now + dt.timedelta(days=30), now - dt.timedelta(hours=2), now - dt.timedelta(hours=1)]
    for i, w in enumerate(when):
        if i:  # a run of its own in each later week: those the run ahead staged are not staged again
            _started(traces / record_sample_run(traces, goal=f"week {i}"), w - dt.timedelta(minutes=30))
        assert run_weekly(wcfg, tmp_path / "weekly-art", _weekly_bin(tmp_path), now=w)["status"] == "ok"
    wb = tmp_path / "weekly-bundles"
    before = _ids(wb)
    rep = prune(_cfg(tmp_path, "shadow.retention.keep_weekly=1", f"weekly.traces={traces}"))
    assert not [i for i in rep.items if "weekly" in i.kind] and _ids(wb) == before
    ahead = cycle_stamp(when[0])
    named = [p for p in rep.problems if p.startswith("weekly run(s)")]
    assert len(named) == 1 and named[0].startswith(f"weekly run(s) {ahead} are dated after now (")
    assert "which weekly runs are the newest cannot be told" in named[0] and named[0].endswith("weekly.bundles_dir")
    # with that run moved out, the newest by date stays and the older one goes
    shutil.move(str(wb / f"weekly-{ahead}"), str(tmp_path / "moved"))
    shutil.move(str(wb / f".weekly-{ahead}"), str(tmp_path / "moved-stage"))
    rep = prune(_cfg(tmp_path, "shadow.retention.keep_weekly=1", f"weekly.traces={traces}"))
    assert sorted(Path(i.path).name for i in rep.items) == sorted(f"{p}weekly-{cycle_stamp(when[1])}" for p in ("", "."))
    assert not [p for p in rep.problems if p.startswith("weekly run(s)")]


def test_keep_counts_are_typed_and_checked_and_shadow_yaml_finds_the_other_cadences():
    with pytest.raises(ConfigError, match=r"shadow.retention.keep_weekly=0: must be >= 1"):
        load_config(OpsConfig, SHADOW_YAML, ["shadow.retention.keep_weekly=0"])
    with pytest.raises(ConfigError, match="keep_phase2"):
        load_config(OpsConfig, SHADOW_YAML, ["shadow.retention.keep_phase2=many"])
    assert load_config(OpsConfig, SHADOW_YAML, ["shadow.retention.keep_phase2=5"]).shadow.retention.keep_phase2 == 5
    shadow, weekly, p2 = (load_config(OpsConfig, ROOT / f"configs/ops/{n}.yaml") for n in ("shadow", "weekly", "phase2"))
    # retention configured from shadow.yaml looks where the weekly and phase-2 commands write
    assert (shadow.weekly.bundles_dir, shadow.weekly.artifacts_dir) == (weekly.weekly.bundles_dir, weekly.weekly.artifacts_dir)
    assert shadow.phase2.out_dir == p2.phase2.out_dir
    # and reads the promotion history that promote (canary.yaml) writes: the shipped pin configs agree with it
    from tracebridge.ops.retention_sources import config_pins

    canary = load_config(OpsConfig, ROOT / "configs/ops/canary.yaml")
    assert shadow.promotion.state_dir == canary.promotion.state_dir
    config_pins([str(ROOT / p) for p in shadow.shadow.retention.pin_configs], shadow)
