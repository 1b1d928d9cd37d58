"""Phase 2: the ablation names a winner only on a clear paired difference, and reproduces exactly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.config import ConfigError, load_config
from tracebridge.ops.config import OpsConfig, Phase2Config, PolicySpec
from tracebridge.ops.phase2 import phase2_report, rank_policies

ROOT = Path(__file__).resolve().parents[2]
FAST = ["train.max_steps=3", "dpo.max_steps=2", "train.save_steps=0", "eval.n_boot=100", "train.logging_steps=1",
        "data.max_eval_rows=16"]


def _trial(tmp_path, policy, correct, n=60, seed=0):
    p = tmp_path / f"{policy}-{seed}.json"
    acc = [[1.0 if i < correct else 0.0 for i in range(n)], [1.0] * n]
    p.write_text(json.dumps({"items": {"accuracy": acc, "false_stop_rate": [[0.0] * n, [1.0] * n],
                                       "unnecessary_replan_rate": [[0.0] * n, [1.0] * n]},
                             "item_ids": list(range(n))}))
    return {"policy": policy, "seed": seed, "role": "verifier", "eval_items_path": str(p)}


def _cfg(*names):
    return Phase2Config(role="verifier", policies=[PolicySpec(n, "baseline") for n in names], n_boot=500)


def test_clear_leader_is_named_winner(tmp_path):
    trials = [_trial(tmp_path, "a", 30), _trial(tmp_path, "b", 50), _trial(tmp_path, "c", 20)]
    rep = rank_policies(_cfg("a", "b", "c"), trials)
    assert rep["ranking"] == ["b", "a", "c"] and rep["winner"] == "b"
    assert rep["leader_vs_runner_up"]["accuracy"]["lo"] > 0
    assert rep["metrics"]["b"]["accuracy"]["value"] == pytest.approx(50 / 60)


def test_no_winner_without_a_clear_difference(tmp_path):
    trials = [_trial(tmp_path, "a", 30), _trial(tmp_path, "b", 31)]
    rep = rank_policies(_cfg("a", "b"), trials)
    assert rep["ranking"][0] == "b" and rep["winner"] is None
    assert "no significant difference" in rep["winner_reason"]


def test_a_bad_policy_override_fails_before_anything_trains(tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(ROOT / "tests/data/train_views", bundle)
    cfg = Phase2Config(role="verifier", overrides=FAST, policies=[
        PolicySpec("baseline", "baseline"), PolicySpec("terse", "optimized", ["behaviour.response=terse"]),
        PolicySpec("no-tools", "optimized", ["behaviour.tool_schema=none"])])
    with pytest.raises(ConfigError) as exc:
        phase2_report(cfg, bundle, tmp_path / "out")
    assert "phase2.policies[terse]: behaviour.response=terse: use one of as_is, calls_only" in str(exc.value)
    assert "phase2.policies[no-tools]: behaviour.tool_schema: unknown key" in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_report_reproduces_from_its_manifest(tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(ROOT / "tests/data/train_views", bundle)
    cfg = Phase2Config(role="verifier", overrides=FAST, policies=[PolicySpec("baseline", "baseline"),
                                                 PolicySpec("optimized", "optimized")], n_boot=200)
    man = phase2_report(cfg, bundle, tmp_path / "out")
    folder = Path(man["path"])
    rep = json.loads((folder / "report.json").read_text())
    assert set(rep["ranking"]) == {"baseline", "optimized"} and "Winner:" in (folder / "report.md").read_text()
    assert man["bundle_id"] == json.loads((bundle / "manifest.json").read_text())["bundle_id"]
    assert len(man["trial_config_hashes"]) == 2

    runner = CliRunner()
    args = ["ops", "phase2-report", "--config", str(ROOT / "configs/ops/phase2.yaml"),
            f"phase2.out_dir={tmp_path / 'out'}", "agree_with=[]",  # a one-off out_dir: shadow.yaml's retention
            "--from-manifest", str(folder / "manifest.json"), "--json"]  # would not see it (test_agreement.py)
    r = runner.invoke(app, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["reproduced"] and res["numbers_sha256"] == man["numbers_sha256"]

    (bundle / "manifest.json").write_text((bundle / "manifest.json").read_text() + " ")
    r = runner.invoke(app, args, catch_exceptions=False)
    assert r.exit_code == 2 and "bundle missing or changed" in r.output


# ---------------------------------------------------------------- the shipped config on the shadow cycle's data


@pytest.fixture(scope="module")
def openclaw_bundle(tmp_path_factory) -> Path:
    """A bundle exported from the OpenClaw test sessions, as the shadow cycle's replay step builds it."""
    tmp = tmp_path_factory.mktemp("openclaw")
    runner = CliRunner()
    r = runner.invoke(app, ["import", "openclaw", str(ROOT / "tests/data/openclaw/home"), "--out", str(tmp / "traces"),
                            "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["export", str(tmp / "traces"), "--out", str(tmp / "bundles"), "--json"],
                      catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return Path(json.loads(r.stdout)["path"])


def _phase2_cli(bundle: Path, out: Path, *extra: str) -> list[str]:
    return ["ops", "phase2-report", "--config", str(ROOT / "configs/ops/phase2.yaml"), "--bundle", str(bundle),
            f"phase2.out_dir={out}", "agree_with=[]", *extra, "--json"]  # a one-off out_dir (test_agreement.py)


def test_shipped_phase2_role_is_the_shadow_optimize_role():
    phase2 = load_config(OpsConfig, ROOT / "configs/ops/phase2.yaml").phase2
    shadow = load_config(OpsConfig, ROOT / "configs/ops/shadow.yaml").shadow
    assert phase2.role == shadow.optimize.role == "worker"
    assert set(shadow.optimize.overrides) <= set(phase2.overrides)


def test_shipped_phase2_config_runs_on_the_shadow_cycle_bundle(openclaw_bundle, tmp_path):
    views = {v["view"] for v in json.loads((openclaw_bundle / "manifest.json").read_text())["views"]}
    assert "verifier_sft" not in views and "worker_sft" in views  # the data the old default failed on
    shipped = load_config(OpsConfig, ROOT / "configs/ops/phase2.yaml").phase2
    # tiny: one seed, a few steps; the role and the policies are the shipped ones
    args = _phase2_cli(openclaw_bundle, tmp_path / "out", "phase2.seeds=[0]", "phase2.n_boot=200",
                       f"phase2.overrides=[{','.join([*shipped.overrides, *FAST])}]")
    r = CliRunner().invoke(app, args, catch_exceptions=False)
    assert r.exit_code in (0, 1), r.output  # 1 = ran, no clear winner
    man = json.loads(r.stdout)
    rep = json.loads((Path(man["path"]) / "report.json").read_text())
    assert man["config"]["role"] == rep["role"] == "worker"
    assert set(rep["ranking"]) == {p.name for p in shipped.policies}
    assert rep["primary"] == "action_match" and all(rep["metrics"][p]["action_match"]["n"] > 0 for p in rep["ranking"])
    assert len(man["trial_config_hashes"]) == len(shipped.policies)
    # the behaviour policies are ranked like the others, and the report names what each one is
    pol = rep["policies"]
    assert pol["optimized"]["behaviour_summary"] == "as exported" and pol["optimized"]["behaviour_rows_changed"] == 0
    assert pol["optimized-tool-names"]["behaviour"]["tool_schemas"] == "names"
    assert pol["optimized-calls-only"]["behaviour"]["response"] == "calls_only"
    assert pol["optimized-system-prompt"]["behaviour"]["system_prompt"].startswith("You are the worker.")
    assert pol["optimized-no-recovery"]["overrides"] == ["data.recovery_weight=1"]
    n_rows = sum(sum(v.values()) for k, v in json.loads(
        (Path(rep["trials"][0]["trial_dir"]) / "trial.json").read_text())["data"].items() if k in ("sft", "recovery_sft", "pref"))
    for name in ("optimized-tool-names", "optimized-system-prompt"):  # every row of the role, every split
        assert pol[name]["behaviour_rows_changed"] == n_rows > 0
    md = (Path(man["path"]) / "report.md").read_text()
    assert "| optimized-tool-names | optimized | tool_schemas=names (" in md
    assert "| optimized-calls-only | optimized | response=calls_only (" in md


def test_a_role_without_rows_names_the_role_the_views_and_the_fix(openclaw_bundle, tmp_path):
    r = CliRunner().invoke(app, _phase2_cli(openclaw_bundle, tmp_path / "out", "phase2.role=verifier"),
                           catch_exceptions=False)
    assert r.exit_code == 2
    msg = " ".join(r.output.split())
    assert "phase2.role=verifier" in msg and "no verifier_sft rows" in msg
    assert "its views: worker_recovery_cases, worker_sft" in msg and "set phase2.role=worker" in msg
    assert not (tmp_path / "out").exists()  # failed before any report folder or training
