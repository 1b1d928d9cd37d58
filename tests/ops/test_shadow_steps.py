"""Shadow-cycle steps on real inputs: replay set, consumer checks, optimization smoke, chunk policy."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import record_sample_run
from tracebridge.ops import replay as rp
from tracebridge.ops.chunks import check_chunk_policy
from tracebridge.ops.config import OpsConfig
from tracebridge.ops.consumers import check_trl_formatting, check_views_parse, check_agentlightning
from tracebridge.ops.cycle import Ctx, StepFailed
from tracebridge.ops.shadow_steps import step_optimize, step_validate

ROOT = Path(__file__).resolve().parents[2]
VIEWS = ROOT / "tests/data/train_views"
FAST = ["train.max_steps=4", "dpo.max_steps=2", "train.save_steps=0", "eval.n_boot=100", "train.logging_steps=2"]


def _ctx(tmp_path, **outputs):
    cfg = OpsConfig(artifacts_dir=str(tmp_path / "artifacts"))
    cfg.shadow.work_dir = str(tmp_path / "work")
    bundle = tmp_path / "artifacts" / "20260301T021500Z"
    bundle.mkdir(parents=True)
    ctx = Ctx(cfg, bundle, Path(cfg.shadow.work_dir), dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
              [sys.executable, "-m", "tracebridge.cli"])
    ctx.outputs.update(outputs)
    return ctx


def test_replay_set_is_frozen_stable_and_tamper_evident(tmp_path):
    traces = tmp_path / "traces"
    ids = [record_sample_run(traces, goal=f"goal {i}") for i in range(6)]
    (traces / "broken").mkdir()
    (traces / "broken" / "events.jsonl").write_text("{not json\n")
    work = tmp_path / "work"
    man = rp.freeze_replay_set(traces, work, size=4, salt="s")
    chosen = [e["run_id"] for e in man["runs"]]
    assert len(chosen) == 4 and set(chosen) <= set(ids)
    assert chosen == rp.choose_runs(traces, 4, "s")  # deterministic
    record_sample_run(traces, goal="a new day brings new runs")
    assert rp.verify_replay_set(work, rp.load_replay_manifest(work)) == []
    victim = work / "replay" / "traces" / chosen[0] / "events.jsonl"
    victim.chmod(0o644)
    victim.write_text(victim.read_text().replace("count", "COUNT"))
    assert rp.verify_replay_set(work, man) == [f"{victim.parent}: events file changed since the set was frozen"]


def test_consumer_checks_on_a_bundle(tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(VIEWS, bundle)
    res = check_views_parse(bundle)
    assert res["ok"], res["problems"]
    assert res["files"]["verifier_sft.jsonl"] == 73
    res = check_trl_formatting(bundle, per_view=5)
    assert res["ok"], res["problems"]
    assert res["rows_formatted"] == {v: 5 for v in res["rows_formatted"]}
    al = check_agentlightning(bundle)
    assert not al["ok"] and "no Agent Lightning export" in al["problems"][0]
    (bundle / "agentlightning_triplets.jsonl").write_text(
        json.dumps({"prompt": {"text": "q"}, "response": {"text": "a"}, "reward": 1.0, "metadata": {}}) + "\n")
    assert check_agentlightning(bundle)["ok"]
    # a view row that datasets cannot load is found
    with open(bundle / "planner_sft.jsonl", "a") as fh:
        fh.write("{broken\n")
    assert not check_views_parse(bundle)["ok"]


def test_validate_step_fails_below_thresholds(tmp_path):
    ctx = _ctx(tmp_path)
    record_sample_run(ctx.traces)
    out = step_validate(ctx)
    assert out["passed"] and out["runs_total"] == 1 and (ctx.bundle / "validate.json").is_file()
    bad = ctx.traces / "bad-run"
    bad.mkdir()
    (bad / "events.jsonl").write_text('{"run_id": "bad-run"}\n')
    (bad / "session.json").write_text("{}")
    with pytest.raises(StepFailed, match="schema-valid"):
        step_validate(ctx)


def test_optimize_step_runs_baseline_vs_optimized_and_reports_uplift(tmp_path):
    bundle = tmp_path / "replay-bundle"
    shutil.copytree(VIEWS, bundle)
    ctx = _ctx(tmp_path, replay={"bundle_dir": str(bundle)})
    ctx.cfg.shadow.optimize.train_config = str(ROOT / "configs/train/cpu_tiny.yaml")
    ctx.cfg.shadow.optimize.overrides = FAST
    out = step_optimize(ctx)
    up = out["uplift"]
    assert up["metric"] == "verifier/accuracy"
    assert up["uplift"] == pytest.approx(up["optimized"] - up["baseline"])
    assert up["lo"] <= up["uplift"] <= up["hi"]
    assert {p.name for p in (ctx.bundle / "optimize").iterdir()} == {"results.json", "report.html", "manifest.json"}
    assert "exit 0" in (ctx.bundle / "logs" / "optimize.log").read_text()


def test_chunk_policy_violations_are_found(tmp_path):
    doc = tmp_path / "policy.md"
    doc.write_text("A reaction on the last chunk labels the whole batch.")
    reg = tmp_path / "chunks.jsonl"
    reg.write_text("".join(json.dumps({"batch_id": b, "message_id": i, "chunk_index": i % 2, "chunk_count": 2,
                                       "run_id": "r", "event_id": f"e{i}"}) + "\n"
                           for i, b in enumerate(["b1", "b1", "b2", "b2", "b3", "b3"])) + "{bad\n")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    rows = [({"e0"}, 2), ({"e1"}, 2), ({"e2"}, 1), ({"e3"}, None), ({"e4"}, None), ({"e5"}, None)]
    (bundle / "worker_sft.jsonl").write_text("".join(json.dumps(
        {"messages": [], "meta": {"event_ids": sorted(e), "labels": {} if s is None else {"feedback": {"score": s}}}})
        + "\n" for e, s in rows))
    res = check_chunk_policy(doc, reg, bundle)
    assert res["batches"] == 3 and res["batches_labelled"] == 2 and res["violations"] == 1
    assert "batch b2: 1 of 2 rows unlabelled" in res["violation_examples"][0]
    assert not res["applied"] and len(res["registry_skipped"]) == 1
    assert res["registry_skipped"][0].startswith(f"{reg}:7: invalid JSON")
    res = check_chunk_policy(tmp_path / "missing.md", reg, bundle)
    assert res["doc_sha256"] is None and not res["applied"]
