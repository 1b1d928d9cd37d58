"""The collection matrix, its summary and checks, the collect command, the default matrix balance."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tracebridge.cli import app
from tracebridge.config import load_config
from tracebridge.schema.events import EVENT_TYPES
from tracebridge.sim.collect import collect, draw_random_seeds, expand_matrix
from tracebridge.sim.config import CollectConfig
from tracebridge.sim.hashing import root_content_hash

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "collect"
SMOKE = CONFIGS / "smoke.yaml"


def test_expand_matrix_and_seed_kinds():
    cfg = load_config(CollectConfig, SMOKE, ["seeds.random=3", "seeds.random_source=5"])
    specs = expand_matrix(cfg)
    assert len(specs) == 4 * 2 * 2 * (2 + 3)
    kinds = {(s.seed, s.seed_kind) for s in specs}
    assert {k for _, k in kinds} == {"fixed", "random"} and len(kinds) == 5
    assert [s.key for s in expand_matrix(cfg)] == [s.key for s in specs]  # reproducible with a source
    assert draw_random_seeds(3, None, [0]) != draw_random_seeds(3, None, [0])  # OS entropy
    assert not set(draw_random_seeds(50, 1, [10_000])) & {10_000}


def test_smoke_matrix_is_deterministic_across_processes(tmp_path):
    cfg = load_config(CollectConfig, SMOKE)
    one = collect(load_config(CollectConfig, SMOKE, ["workers=1"]), str(tmp_path / "one"))
    two = collect(cfg, str(tmp_path / "two"))
    assert one.episodes == two.episodes == 32 and one.passed and two.passed
    assert root_content_hash(tmp_path / "one") == root_content_hash(tmp_path / "two")
    assert one.verdicts == two.verdicts and one.event_types == two.event_types
    assert set(two.event_types) == set(EVENT_TYPES) and not two.missing_event_types
    assert len([d for d in (tmp_path / "two").iterdir() if not d.name.startswith(".")]) == 32


def test_cli_collect_json_then_validate(tmp_path):
    runner = CliRunner()
    out = tmp_path / "traces"
    res = runner.invoke(app, ["collect", str(SMOKE), "workers=1", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout[res.stdout.index("{"):])
    assert summary["passed"] and summary["episodes"] == 32 and summary["out"] == str(out)
    assert set(summary["verdict_shares"]) == {"continue", "replan", "end"}
    assert 0 < summary["recovery_share"] < 1 and 0 < summary["success_rate"] < 1
    res = runner.invoke(app, ["validate", str(out), "--min-lineage-valid", "100", "--max-incomplete", "0", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["schema_valid_pct"] == 100.0 and rep["lineage_valid_pct"] == 100.0


def test_cli_collect_fails_checks_and_bad_config(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["collect", str(SMOKE), "workers=1", "checks.min_verdict_share=0.9",
                              "--out", str(tmp_path / "t"), "--json"])
    assert res.exit_code == 1
    assert any("verdict" in c for c in json.loads(res.stdout[res.stdout.index("{"):])["failed_checks"])
    res = runner.invoke(app, ["collect", str(SMOKE), "mixes.novice.skill.bad_arg=0.1"])
    assert res.exit_code == 2 and "did you mean" in res.output  # a usage error, told apart from a failed check


def test_default_matrix_subset_meets_the_balance_targets(tmp_path):
    """A representative subset of the default matrix (all cells, 8 fixed seeds)."""
    cfg = load_config(CollectConfig, CONFIGS / "default.yaml",
                      ["seeds.fixed=[0,1,2,3,4,5,6,7]", "seeds.random=0", "workers=1"])
    s = collect(cfg, str(tmp_path))
    assert s.episodes == 4 * 3 * 3 * 8
    assert s.passed, s.failed_checks
    assert min(s.verdict_shares.values()) >= 0.15 and s.recovery_share >= 0.10
    assert min(s.expected_verdict_shares.values()) >= 0.15  # the ground truth is balanced too
    assert 0.5 < s.success_rate < 0.95 and 0.7 < s.verifier_accuracy < 1.0


def test_collect_refuses_a_file_and_a_second_pass_does_not_write_the_episodes_twice(tmp_path):
    runner = CliRunner()
    small = ["workers=1", "families=[calc]", "seeds.fixed=[0]"]
    (tmp_path / "file").write_text("x")
    res = runner.invoke(app, ["collect", str(SMOKE), *small, "--out", str(tmp_path / "file")])
    assert res.exit_code == 2 and "is a file" in res.output, res.output
    out = tmp_path / "traces"
    assert runner.invoke(app, ["collect", str(SMOKE), *small, "--out", str(out), "--json"]).exit_code == 0
    runs = len([d for d in out.iterdir() if d.is_dir()])
    res = runner.invoke(app, ["collect", str(SMOKE), *small, "--out", str(out), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["resumed"] == runs, res.output  # all collected: none run
    assert len([d for d in out.iterdir() if d.is_dir()]) == runs  # before: every episode a second time
    other = runner.invoke(app, ["collect", str(SMOKE), "workers=1", "families=[calc]", "seeds.fixed=[1]",
                                "--out", str(out), "--json"])
    assert other.exit_code == 0 and len([d for d in out.iterdir() if d.is_dir()]) == 2 * runs  # new episodes still go in
