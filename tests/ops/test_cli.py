"""The operations commands end to end through the CLI: exit codes and --json summaries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.ops.test_gates import make_samples
from tests.ops.test_review import NOW, good_set
from tracebridge.cli import app
from tracebridge.config import load_config, schema_for
from tracebridge.ops.samples import write_samples

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _samples(tmp_path, name, policies=None, **kw):
    ss = make_samples(**kw)
    for arm, policy in (policies or {}).items():  # "": sessions that carry no policy id (gate names it by flag)
        for s in ss.by_arm[arm]:
            s.policy = policy
    p = tmp_path / name
    write_samples(p, [s for arm in ss.by_arm.values() for s in arm])
    return p


def test_gate_promote_rollback_policy(tmp_path):
    gates = ROOT / "configs/gates/default.yaml"
    state = tmp_path / "state"
    bad = _samples(tmp_path, "bad.jsonl", success=(0.7, 0.4))
    r = run("gate", "--samples", bad, "--config", gates, "--out", tmp_path / "bad.json", "--json")
    assert r.exit_code == 1 and not json.loads(r.stdout)["passed"]
    r = run("promote", "--report", tmp_path / "bad.json", "--state", state, "--json")
    assert r.exit_code == 1 and "gate did not pass" in json.loads(r.stdout)["reason"]

    good = _samples(tmp_path, "good.jsonl", policies={"baseline": "", "candidate": ""})
    r = run("gate", "--samples", good, "--config", gates, "--candidate-policy", "v2", "--baseline-policy", "v1",
            "--out", tmp_path / "good.json")
    assert r.exit_code == 0, r.output
    assert "PASS" in r.stdout
    r = run("promote", "--report", tmp_path / "good.json", "--state", state, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["record"]["active_policy"] == "v2"
    r = run("ops", "policy", "--state", state, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["active"]["active_policy"] == "v2"
    r = run("rollback", "--state", state, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["record"]["active_policy"] == "v1"
    r = run("rollback", "--state", state)
    assert r.exit_code == 1 and "nothing to roll back" in r.output


def test_promote_without_a_report_file_is_a_usage_error(tmp_path):
    r = run("promote", "--report", tmp_path / "nope.json", "--state", tmp_path / "state", "--json")
    assert r.exit_code == 2, r.output  # exit 1 read as "the gate refused it" to an alerting script
    out = json.loads(r.stdout)
    assert out["promoted"] is False and "no such file" in out["error"]
    assert not (tmp_path / "state").exists()


def test_gate_input_errors(tmp_path):
    assert run("gate").exit_code == 2
    assert run("gate", "--samples", tmp_path / "nope.jsonl").exit_code == 2
    p = _samples(tmp_path, "s.jsonl", n=60)
    r = run("gate", "--samples", p, "--config", ROOT / "configs/gates/default.yaml", "alpha=2")
    assert r.exit_code == 2 and "alpha=2" in r.output
    # a file of no sample at all (the wrong file): a usage error, not a gate that failed
    r = run("gate", "--samples", ROOT / "README.md", "--out", tmp_path / "g.json", "--json")
    assert r.exit_code == 2 and "is a per-session sample (first: " in json.loads(r.stdout)["error"]
    assert not (tmp_path / "g.json").exists()
    for empty in ("", "\n\n"):  # nothing in it at all: as the wrong file (was gated: 0 sessions, exit 1)
        (tmp_path / "empty.jsonl").write_text(empty)
        r = run("gate", "--samples", tmp_path / "empty.jsonl", "--out", tmp_path / "g.json", "--json")
        assert r.exit_code == 2 and "empty.jsonl: no line in it" in json.loads(r.stdout)["error"], r.output
        assert not (tmp_path / "g.json").exists()
    lines = p.read_text().splitlines()
    (tmp_path / "half.jsonl").write_text("\n".join(["not json", *lines]) + "\n")  # one bad line of many: still gated
    r = run("gate", "--samples", tmp_path / "half.jsonl", "--config", ROOT / "configs/gates/default.yaml", "--json")
    assert r.exit_code in (0, 1) and [s["where"] for s in json.loads(r.stdout)["skipped"]] == [f"{tmp_path}/half.jsonl:1"]
    (tmp_path / "many.jsonl").write_text("\n".join(["not json"] * 25 + lines) + "\n")  # the text lists 20 of 25
    r = run("gate", "--samples", tmp_path / "many.jsonl", "--config", ROOT / "configs/gates/default.yaml")
    assert r.stdout.count("\nskipped ") == 20 and "... and 5 more skipped (25 in all" in r.stdout, r.stdout[-2000:]


def test_review_command(tmp_path):
    good_set(tmp_path / "artifacts")
    r = run("review", "--days", 3, "--artifacts", tmp_path / "artifacts", "--now", NOW.isoformat(), "--json")
    assert r.exit_code == 0, r.output
    assert [ln["criterion"] for ln in json.loads(r.stdout)["lines"]] == [
        "cycles", "runtime_hook", "uplift", "integrity", "feedback", "chunk_policy"]
    r = run("review", "--days", 3, "--artifacts", tmp_path / "empty", "--now", NOW.isoformat(), "--json")
    assert r.exit_code == 1 and not json.loads(r.stdout)["passed"]
    # a review run from another folder than the cycles' says so, instead of only "0 of 0 cycles"
    assert f"no folder {tmp_path / 'empty'}" in json.loads(r.stdout)["lines"][0]["evidence"]
    # review.* overrides, as every other ops command takes them; the text output marks a criterion not exercised
    r = run("review", "--artifacts", tmp_path / "artifacts", "--now", NOW.isoformat(), "review.min_cycles=4")
    assert r.exit_code == 1 and "3 of 3 cycles ok (need 4)" in r.stdout
    good_set(tmp_path / "idle", per_cycle={k: {"chunk": {"doc": "d.md", "doc_sha256": "a", "applied": True,
                                                         "batches": 0, "batches_labelled": 0}} for k in range(3)})
    r = run("review", "--artifacts", tmp_path / "idle", "--now", NOW.isoformat())
    assert r.exit_code == 1 and "NOT EXERCISED" in r.stdout and "FAIL (chunk_policy not exercised" in r.stdout


def test_install_schedule_prints_units():
    r = run("ops", "install-schedule", "--workdir", ROOT, "--bin", "/opt/tb/bin/tracebridge")
    assert r.exit_code == 0 and "ExecStart=/opt/tb/bin/tracebridge shadow-cycle" in r.stdout
    assert "systemctl --user enable --now tracebridge-shadow.timer" in r.stdout
    r = run("ops", "install-schedule", "--kind", "cron", "--workdir", ROOT, "--bin", "/opt/tb/bin/tracebridge", "--json")
    assert r.exit_code == 0 and "15 2 * * *" in json.loads(r.stdout)["files"]["crontab"]


def test_install_schedule_writes_systemd_units(tmp_path):
    r = run("ops", "install-schedule", "--install", "--unit-dir", tmp_path, "--workdir", ROOT,
            "--bin", "/opt/tb/bin/tracebridge")
    assert r.exit_code == 0
    assert min(p.name for p in tmp_path.iterdir()) == "tracebridge-monthly.service"
    assert len(list(tmp_path.iterdir())) == 6


@pytest.mark.parametrize("path", sorted((ROOT / "configs/ops").glob("*.yaml")) + sorted((ROOT / "configs/gates").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_ops_config_loads_and_documents_itself(path):
    header = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    head = "\n".join(header)
    assert header and "tracebridge " in head and "Override:" in head, f"{path}: header comment incomplete"
    load_config(schema_for(path), path)


def test_canary_status(tmp_path):
    from tests.conftest import MODEL_STACK
    from tracebridge.capture.recorder import Recorder
    from tracebridge.ops.canary import CanaryRouter
    from tracebridge.ops.config import CanaryConfig

    cfg = CanaryConfig(fraction=0.5, max_fraction=0.5, salt="canary-1")
    with CanaryRouter(baseline=lambda: "b", candidate=lambda: None, config=cfg) as router:
        for i in range(10):
            with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 2},
                          run_id=f"s{i}", strict=True) as run:
                router.call(run.run_id, recorder=run)
    r = runner.invoke(app, ["ops", "canary-status", "--traces", str(tmp_path), "--session", "s1",
                                      "--config", str(ROOT / "configs/ops/canary.yaml"), "canary.fraction=0.5",
                                      "canary.max_fraction=0.5", "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    t = out["traces"]
    assert t["candidate"] + t["baseline"] == 10 and t["sessions_with_fallback"] == t["candidate"] > 0
    assert t["fallback_rate"] == 1.0 and out["sessions"]["s1"]["arm"] in ("candidate", "baseline")
    # by kind, as the docs promise (the candidate returned None: invalid output)
    assert t["fallbacks_by_kind"] == {"invalid_output": t["candidate"]}
    r = runner.invoke(app, ["ops", "canary-status", "--traces", str(tmp_path), "--config",
                            str(ROOT / "configs/ops/canary.yaml"), "canary.fraction=0.5", "canary.max_fraction=0.5"])
    assert r.exit_code == 0 and f"invalid_output {t['candidate']}" in r.stdout


def test_canary_status_of_no_sessions_shows_n_a(tmp_path):
    """A share and a rate of no sessions printed as "share None ... (rate None)"; validate shows such as n/a."""
    r = CliRunner().invoke(app, ["ops", "canary-status", "--traces", str(tmp_path), "--config",
                                 str(ROOT / "configs/ops/canary.yaml")])
    assert r.exit_code == 0 and "None" not in r.stdout, r.stdout
    assert "0 candidate / 0 baseline sessions (share n/a, configured 0.05)" in r.stdout and "(rate n/a)" in r.stdout
    r = CliRunner().invoke(app, ["ops", "canary-status", "--traces", str(tmp_path), "--config",
                                 str(ROOT / "configs/ops/canary.yaml"), "--json"])
    t = json.loads(r.stdout)["traces"]
    assert t["candidate_share"] is None and t["fallback_rate"] is None  # the JSON keeps null
