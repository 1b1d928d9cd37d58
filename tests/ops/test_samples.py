"""Samples read from a canary's traces: a damaged session is skipped with its field named, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import record_sample_run
from tracebridge.cli import app
from tracebridge.ops.samples import collect_from_traces


def _labelled(root: Path, arm: str) -> Path:
    record_sample_run(root)
    run = max((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime_ns)
    s = json.loads((run / "session.json").read_text())
    s.setdefault("labels", {})["canary"] = {"arm": arm, "policy": f"{arm}-v", "fallbacks": 0}
    (run / "session.json").write_text(json.dumps(s))
    return run


@pytest.mark.parametrize("damage, reason", [
    (lambda s: s["summary"].update(tokens="many"), "session.json:summary.tokens: 'many': must be an integer >= 0"),
    (lambda s: s["summary"].update(cost_usd=-1.0), "session.json:summary.cost_usd: -1.0: must be a number >= 0"),
    (lambda s: s["labels"]["canary"].update(fallbacks=None), "session.json:labels.canary.fallbacks: None"),
    (lambda s: s.update(summary="x"), "session.json:summary: 'x', must be an object"),
    (lambda s: s.update(labels=["canary"]), "session.json:labels: ['canary'], must be an object"),
])
def test_a_damaged_session_is_skipped_with_its_field_not_a_traceback(tmp_path, damage, reason):
    # one damaged session.json among a canary's traces (a string token count, a list where an object goes)
    # stopped `tracebridge gate` and `ops canary-status` with a traceback: no report, no verdict, no JSON
    good = _labelled(tmp_path, "baseline")
    bad = _labelled(tmp_path, "candidate")
    s = json.loads((bad / "session.json").read_text())
    damage(s)
    (bad / "session.json").write_text(json.dumps(s))
    with (good / "events.jsonl").open("a") as fh:  # a damaged event: its payload and labels are ignored
        fh.write(json.dumps({"event_type": "worker_tool_result", "payload": "x", "labels": [1]}) + "\n")
    ss = collect_from_traces(tmp_path)
    assert (len(ss.by_arm["baseline"]), len(ss.by_arm["candidate"]), ss.read) == (1, 0, 2)
    assert ss.skipped == [{"where": str(bad), "reason": ss.skipped[0]["reason"]}]
    assert ss.skipped[0]["reason"].startswith(f"invalid: {reason}")
    r = CliRunner().invoke(app, ["gate", "--traces", str(tmp_path), "--json"], catch_exceptions=False)
    doc = json.loads(r.stdout)
    assert r.exit_code == 1 and not doc["passed"] and doc["skipped"][0]["where"] == str(bad)  # too few: a fail
    r = CliRunner().invoke(app, ["ops", "canary-status", "--traces", str(tmp_path), "--json"], catch_exceptions=False)
    assert r.exit_code == 0 and json.loads(r.stdout)["traces"]["skipped"] == 1
