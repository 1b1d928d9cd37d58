"""A shadow cycle end to end on CPU: every step real, a complete artifact bundle, the replay set
stable on the next day, and a review that reads it.

The cycle calls other packages' commands (``import openclaw``, ``export``, ``feedback audit``,
``smoke runtime-hook``); until they are in the checkout the test is skipped and says which.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import pytest

from tracebridge.config import load_config
from tracebridge.ops.artifacts import MANIFEST_KEYS, verify_bundle
from tracebridge.ops.config import OpsConfig
from tracebridge.ops.cycle import run_cycle
from tracebridge.ops.shadow_steps import STEPS

ROOT = Path(__file__).resolve().parents[2]
FAST = ["train.max_steps=3", "dpo.max_steps=2", "train.save_steps=0", "eval.n_boot=100", "train.logging_steps=1",
        "data.max_eval_rows=16"]
UPSTREAM = {"import": "OpenClaw importer", "export": "curation/export", "feedback": "Telegram feedback",
            "smoke": "Agent Lightning runtime hook"}
CLI = [sys.executable, "-m", "tracebridge.cli"]


def missing_upstream() -> list[str]:
    from typer.main import get_command

    import tracebridge.feedback as fb
    from tracebridge.cli import app

    cmds = get_command(app).commands  # type: ignore[attr-defined]
    out = [f"tracebridge {k} ({v})" for k, v in UPSTREAM.items() if k not in cmds]
    if not hasattr(fb, "labels_for_run_factory"):  # export joins reaction labels through it
        out.append("tracebridge.feedback.labels_for_run_factory (feedback labels in export)")
    return out


def _inputs(root: Path, now: dt.datetime) -> list[str]:
    """Simulator runs in the cycle's trace root, OpenClaw transcripts, feedback files; return overrides."""
    from tracebridge.sim.collect import collect
    from tracebridge.sim.config import CollectConfig

    cc = load_config(CollectConfig, ROOT / "configs/collect/smoke.yaml", ["workers=1"])
    collect(cc, str(root / "shadow" / "traces"))
    fb = root / "memory" / "feedback"
    fb.mkdir(parents=True)
    (fb / "reaction-mapping.json").write_text(json.dumps({"version": 1, "mapping": {"❤️": 2, "👍": 1, "👎": -1}}))
    day = (now - dt.timedelta(days=1)).replace(hour=12)
    (fb / "telegram-reactions.jsonl").write_text(json.dumps({
        "time": day.isoformat(), "chat": 1, "message_id": 10, "user": "u1", "emoji": "👍", "change": "added",
        "score": 1, "source": "getUpdates", "update_id": 1}) + "\n")
    (fb / "sent-chunks.jsonl").write_text("")
    # yesterday's cycle harvested (the cycle audits the previous UTC day, so it needs that evidence)
    (fb / "harvest-log.jsonl").write_text(json.dumps({"time": (now - dt.timedelta(days=1)).isoformat(), "added": 0})
                                          + "\n")
    (root / "docs").mkdir()
    (root / "docs" / "feedback-chunk-policy.md").write_text("A reaction on the last chunk labels the whole batch.\n")
    shutil.copytree(ROOT / "configs", root / "configs")
    sources = ROOT / "tests/data/openclaw/home"
    # the verifier role: the tiny CPU profile is sized for it and its evaluation is fast
    return [f"shadow.sources=[{sources}]" if sources.is_dir() else "shadow.sources=[]",
            f"shadow.optimize.overrides=[{','.join(FAST)}]", "shadow.replay.size=64",
            "shadow.optimize.role=verifier", "shadow.optimize.metric=verifier/accuracy"]


def test_shadow_cycle_end_to_end(tmp_path, monkeypatch):
    miss = missing_upstream()
    if miss:
        pytest.skip("upstream commands not in this checkout yet: " + ", ".join(miss))
    monkeypatch.chdir(tmp_path)
    now = dt.datetime.now(dt.UTC)
    overrides = _inputs(tmp_path, now)
    cfg = load_config(OpsConfig, tmp_path / "configs/ops/shadow.yaml", overrides)
    man = run_cycle(cfg, STEPS, CLI, now=now)
    failed = {n: r["reason"] for n, r in man["steps"].items() if r["status"] != "ok"}
    assert man["status"] == "ok", failed
    bundle = Path(man["path"])
    assert verify_bundle(bundle) == []
    on_disk = json.loads((bundle / "manifest.json").read_text())
    assert set(MANIFEST_KEYS) <= set(on_disk)
    files = {f["path"] for f in on_disk["files"]}
    for f in ("validate.json", "export/manifest.json", "replay/replay-manifest.json", "consumers.json",
              "optimize/results.json", "optimize/report.html", man["feedback"]["audit_file"], "logs/export.log",
              "export/quarantine.jsonl", "docs/feedback-chunk-policy.md"):
        assert f in files, f
    up = man["uplift"]
    assert isinstance(up["uplift"], float) and up["metric"] == "verifier/accuracy"
    integ = man["integrity"]
    assert integ["reconciled"] is True and integ["schema_valid_pct"] == 100.0 and integ["replay_bundle_id"]
    assert man["feedback"]["harvest_ran"] is True and man["chunk_policy"]["applied"] is True
    assert man["feedback"]["audited_day"] == str((now - dt.timedelta(days=1)).date())

    # the next day: the same replay set, the same replay bundle id (heavy steps off to keep it short)
    cfg2 = load_config(OpsConfig, tmp_path / "configs/ops/shadow.yaml",
                       [*overrides, "shadow.skip=[optimize,consumers,runtime_hook]"])
    man2 = run_cycle(cfg2, STEPS, CLI, now=now + dt.timedelta(days=1))
    rep = man2["steps"]["replay"]
    assert man2["status"] == "ok", {n: r["reason"] for n, r in man2["steps"].items() if r["status"] != "ok"}
    assert rep["status"] == "ok" and rep["outputs"]["created"] is False and rep["outputs"]["stable"] is True
    assert man2["integrity"]["replay_bundle_id"] == integ["replay_bundle_id"]
    # the next day's audit covers the first cycle's day; its harvest is that day's evidence
    assert man2["feedback"]["audited_day"] == str(now.date()) and man2["feedback"]["harvest_ran"] is True
    # the replay set did not change: every run of it came from the export cache, none was rebuilt
    assert rep["outputs"]["summary"]["cache"]["hits"] == rep["outputs"]["runs"]
    assert rep["outputs"]["summary"]["cache"]["misses"] == 0
    day2 = man2["steps"]["export"]["outputs"]["summary"]
    assert day2["cache"]["hits"] + day2["cache"]["misses"] == day2["counts"]["read"] and day2["cache"]["hits"] > 0
