"""Weekly cadence: only last week's runs are staged; the plan runs in order and stops on failure."""

from __future__ import annotations

import datetime as dt
import os
import sys

import orjson

from tests.conftest import record_sample_run
from tracebridge.ops.config import WeeklyConfig
from tracebridge.ops.weekly import run_weekly


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
    root, new, old = _traces(tmp_path)
    cfg = WeeklyConfig(traces=str(root), bundles_dir=str(tmp_path / "bundles"), storage_uri="file:///tmp/s")
    bin_, log = _fake_bin(tmp_path)
    man = run_weekly(cfg, tmp_path / "artifacts", bin_)
    assert man["status"] == "ok" and man["staged"] == {"read": 2, "staged": 1, "older": 1, "incomplete": 0}
    calls = log.read_text().splitlines()
    assert [c.split()[0] for c in calls] == ["export", "push", "window"]
    stage = calls[0].split()[1]
    assert os.listdir(stage) == [new]
    assert "--max-usd 50.0" in calls[2] and "bundle=file:///tmp/s" in calls[2]
    assert orjson.loads(open(man["manifest"], "rb").read())["status"] == "ok"


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
