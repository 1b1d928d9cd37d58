"""Weekly cadence: only last week's runs are staged; the plan runs in order and stops on failure."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import orjson

from tests.conftest import record_sample_run
from tracebridge.config import load_config
from tracebridge.ops.config import OpsConfig, WeeklyConfig
from tracebridge.ops.weekly import run_weekly

ROOT = Path(__file__).resolve().parents[2]
OPENCLAW_HOME = ROOT / "tests/data/openclaw/home"
MAIN_RUN = "oc-5f0c2d1e-6b7a-4c3d-9e8f-0a1b2c3d4e5f"
REPLY = f"{MAIN_RUN}:a0000010.1"  # "The deploy succeeded at 09:58.", sent as the message the fixture's 👍 is on


def _fake_bin(tmp_path, fail_on=None):
    log = tmp_path / "calls.log"
    script = tmp_path / "fake_tb.py"
    script.write_text(
        "import sys\n"
        f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        f"sys.exit(3 if {fail_on!r} == sys.argv[1] else 0)\n")
    return [sys.executable, str(script)], log


def _traces(tmp_path):
    root = tmp_path / "traces"
    new = record_sample_run(root)
    old = record_sample_run(root, goal="older goal")
    sess = root / old / "session.json"
    data = orjson.loads(sess.read_bytes())
    data["started_at"] = "2020-01-01T00:00:00.000Z"
    sess.write_bytes(orjson.dumps(data))
    return root, new, old


def test_weekly_stages_last_week_and_runs_the_plan(tmp_path):
    root, new, _old = _traces(tmp_path)
    cfg = WeeklyConfig(traces=str(root), bundles_dir=str(tmp_path / "bundles"), storage_uri="file:///tmp/s")
    bin_, log = _fake_bin(tmp_path)
    man = run_weekly(cfg, tmp_path / "artifacts", bin_)
    assert man["status"] == "ok" and man["staged"] == {"read": 2, "staged": 1, "older": 1, "incomplete": 0}
    calls = log.read_text().splitlines()
    assert [c.split()[0] for c in calls] == ["export", "push", "window"]
    stage = calls[0].split()[1]
    assert os.listdir(stage) == [new]
    assert "--max-usd 50.0" in calls[2] and "bundle=file:///tmp/s" in calls[2]
    assert orjson.loads(Path(man["manifest"]).read_bytes())["status"] == "ok"


def test_weekly_stops_at_a_failed_step_and_dry_run_runs_nothing(tmp_path):
    root, _, _ = _traces(tmp_path)
    cfg = WeeklyConfig(traces=str(root), bundles_dir=str(tmp_path / "bundles"))
    bin_, log = _fake_bin(tmp_path, fail_on="push")
    man = run_weekly(cfg, tmp_path / "artifacts", bin_)
    assert man["status"] == "failed"
    assert {k: v["status"] for k, v in man["steps"].items()} == {"export": "ok", "push": "failed", "window": "skipped"}
    assert man["steps"]["push"]["exit_code"] == 3
    log.unlink()
    plan = run_weekly(cfg, tmp_path / "artifacts", bin_, now=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
                      dry_run=True)
    assert plan["status"] == "planned" and len(plan["plan"]) == 3 and not log.exists()


def _feedback_cfg(tmp_path, root, **kw):
    fb = tmp_path / "memory"
    fb.mkdir(exist_ok=True)
    return WeeklyConfig(traces=str(root), bundles_dir=str(tmp_path / "bundles"), feedback_ledger=str(fb / "ledger.jsonl"),
                        feedback_mapping=str(fb / "mapping.json"), chunk_registry=str(fb / "chunks.jsonl"), **kw)


def test_weekly_feedback_defaults_are_the_shadow_cycles():
    weekly = load_config(OpsConfig, ROOT / "configs/ops/weekly.yaml").weekly
    shadow = load_config(OpsConfig, ROOT / "configs/ops/shadow.yaml").shadow
    assert (weekly.feedback_ledger, weekly.feedback_mapping, weekly.chunk_registry) == \
        (shadow.feedback_ledger, shadow.feedback_mapping, shadow.chunk_registry)


def test_weekly_export_joins_reaction_labels_only_when_the_ledger_exists(tmp_path):
    root, _, _ = _traces(tmp_path)
    cfg = _feedback_cfg(tmp_path, root)
    Path(cfg.feedback_ledger).write_text("")
    bin_, log = _fake_bin(tmp_path)
    man = run_weekly(cfg, tmp_path / "artifacts", bin_)
    export = log.read_text().splitlines()[0].split()
    assert export[0] == "export" and man["feedback"] == {"labels": True, "ledger": cfg.feedback_ledger}
    assert {f"feedback.ledger={cfg.feedback_ledger}", f"feedback.mapping={cfg.feedback_mapping}",
            f"feedback.registry={cfg.chunk_registry}"} <= set(export)

    Path(cfg.feedback_ledger).unlink()
    log.unlink()
    man = run_weekly(cfg, tmp_path / "artifacts", bin_, now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    export = log.read_text().splitlines()[0]
    assert "feedback." not in export and man["feedback"]["labels"] is False
    assert man["feedback"]["note"].startswith(f"no reaction ledger at {cfg.feedback_ledger}")
    off = run_weekly(replace(cfg, feedback_ledger=None), tmp_path / "artifacts", bin_, dry_run=True)
    assert "feedback." not in off["plan"][0] and "feedback_ledger=null" in off["feedback"]["note"]


def test_weekly_export_rows_carry_the_reaction_labels(tmp_path):
    """The real export (the other steps faked): a harvested 👍 on a reply labels that reply's row."""
    from tracebridge.feedback import harvest_openclaw
    from tracebridge.feedback.chunks import record_batch
    from tracebridge.feedback.config import FeedbackConfig
    from tracebridge.importers.openclaw import import_openclaw

    import_openclaw([OPENCLAW_HOME], tmp_path / "traces")
    cfg = _feedback_cfg(tmp_path, tmp_path / "traces", days=3650)
    harvest_openclaw(FeedbackConfig(ledger=cfg.feedback_ledger, mapping=cfg.feedback_mapping,
                                    registry=cfg.chunk_registry, harvest_log=str(tmp_path / "memory/log.jsonl"),
                                    quarantine=str(tmp_path / "memory/q.jsonl")), [OPENCLAW_HOME])
    (reaction,) = [json.loads(line) for line in Path(cfg.feedback_ledger).read_text().splitlines()]
    record_batch(cfg.chunk_registry, reaction["chat"], [reaction["message_id"]], MAIN_RUN, REPLY)
    script = tmp_path / "tb_export_only.py"
    script.write_text("import subprocess, sys\n"
                      "if sys.argv[1] != 'export':\n    sys.exit(0)\n"
                      "sys.exit(subprocess.run([sys.executable, '-m', 'tracebridge.cli', *sys.argv[1:]]).returncode)\n")
    man = run_weekly(cfg, tmp_path / "artifacts", [sys.executable, str(script)])
    assert man["status"] == "ok", man["steps"]
    rows = [json.loads(line) for p in sorted((tmp_path / "bundles").glob("weekly-*/*/views/worker_sft/*.jsonl"))
            for line in p.read_text().splitlines()]
    (reply,) = [r for r in rows if REPLY in r["meta"]["event_ids"]]
    assert reply["meta"]["labels"]["feedback_score"] == 1.0
    others = [r for r in rows if r["meta"]["run_id"] != MAIN_RUN]
    assert others and all("feedback_score" not in r["meta"]["labels"] for r in others)
