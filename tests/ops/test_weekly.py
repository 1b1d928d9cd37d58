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
from tracebridge.schema.canonical import format_ts

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
    assert man["status"] == "ok" and man["staged"] == {"read": 2, "staged": 1, "older": 1, "incomplete": 0, "carried": 0, "later": 0, "exported_before": 0}
    calls = log.read_text().splitlines()
    assert [c.split()[0] for c in calls] == ["export", "push", "window"]
    stage = calls[0].split()[1]
    assert os.listdir(stage) == [new]
    assert "--max-usd 50.0" in calls[2] and "bundle=file:///tmp/s" in calls[2]
    assert orjson.loads(Path(man["manifest"]).read_bytes())["status"] == "ok"


def _session(run: Path, started: str | None) -> None:
    """Set the run's start, or (None) make it a run still being written (no session.json yet)."""
    sess = run / "session.json"
    if started is None:
        (run / "session.json.done").write_bytes(sess.read_bytes())
        sess.unlink()
        return
    data = orjson.loads(sess.read_bytes())
    data["started_at"] = started
    sess.write_bytes(orjson.dumps(data))


def test_no_run_falls_between_two_weeks(tmp_path):
    """A session running across a week's end (started 02:55, the run at 03:00) was "incomplete" in that
    week and "older" in the next: in no bundle. A week that fires late (a timer catching up) left a gap
    between its window and the last one. Each week starts where the last good week ended, and takes the
    runs it left out as incomplete once they are complete."""
    root = tmp_path / "traces"
    across = root / record_sample_run(root, goal="runs across the end")
    late = root / record_sample_run(root, goal="in the day the timer was late")
    new = root / record_sample_run(root, goal="this week")
    before = root / record_sample_run(root, goal="last week")
    week1 = dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC)
    _session(before, "2026-02-25T10:00:00.000Z")
    _session(across, None)  # started 02:55, still running at 03:00
    _session(late, "2026-03-01T20:00:00.000Z")  # after week 1's end, before week 2's 7-day window
    _session(new, "2026-03-06T10:00:00.000Z")
    cfg = WeeklyConfig(traces=str(root), bundles_dir=str(tmp_path / "bundles"))
    bin_, log = _fake_bin(tmp_path)
    man1 = run_weekly(cfg, tmp_path / "artifacts", bin_, now=week1)
    assert man1["incomplete_runs"] == [across.name] and man1["until"] == "2026-03-01T03:00:00.000Z"
    assert man1["status"] == "ok" and man1["staged"]["staged"] == 1
    assert man1["staged"]["later"] == 2  # started after week 1's end: the next week's
    (across / "session.json.done").rename(across / "session.json")  # it finished at 03:10
    _session(across, "2026-03-01T02:55:00.000Z")
    week2 = week1 + dt.timedelta(days=8)  # a day late
    man2 = run_weekly(cfg, tmp_path / "artifacts", bin_, now=week2)
    assert man2["status"] == "ok" and man2["since"] == man1["until"] and man2["after"] == man1["until"]
    assert man2["staged"] == {"read": 4, "staged": 3, "older": 1, "incomplete": 0, "carried": 1, "later": 0, "exported_before": 0}
    stage = log.read_text().splitlines()[-3].split()[1]
    assert sorted(os.listdir(stage)) == sorted([across.name, late.name, new.name])
    # the next week starts at week 2's end: nothing of weeks 1-2 again
    man3 = run_weekly(cfg, tmp_path / "artifacts", bin_, now=week2 + dt.timedelta(days=7))
    assert man3["since"] == man2["until"] and man3["staged"]["staged"] == 0 and man3["staged"]["older"] == 4
    # weeks that failed for months: the window reaches back four windows at most (MAX_WINDOWS)
    week4 = week2 + dt.timedelta(days=90)
    man4 = run_weekly(cfg, tmp_path / "artifacts", bin_, now=week4, dry_run=True)
    assert man4["after"] == man2["until"] and man4["since"] == "2026-05-10T03:00:00.000Z"  # week4 - 28 days


def test_a_week_run_early_or_with_the_clock_set_back_exports_no_run_twice(tmp_path):
    """The window began ``weekly.days`` before now, or earlier at the last good week's end: a week whose clock
    was set back (or whose timer fired early) began before that end, and the runs started in between went into
    both bundles. It begins at that end now, and the manifest says so (``window_start``, ``after_manifest``)."""
    from typer.testing import CliRunner

    from tracebridge.cli import app

    root = tmp_path / "traces"
    twice = root / record_sample_run(root, goal="two days before week 1's end")
    new = root / record_sample_run(root, goal="after week 1's end")
    _session(twice, "2026-02-27T03:00:00.000Z")
    _session(new, "2026-03-02T10:00:00.000Z")
    cfg = WeeklyConfig(traces=str(root), bundles_dir=str(tmp_path / "bundles"))
    bin_, log = _fake_bin(tmp_path)
    week1 = dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC)
    man1 = run_weekly(cfg, tmp_path / "artifacts", bin_, now=week1)
    assert man1["staged"]["staged"] == 1
    man2 = run_weekly(cfg, tmp_path / "artifacts", bin_, now=week1 + dt.timedelta(days=5))  # clock 2 days behind
    assert man2["staged"] == {"read": 2, "staged": 1, "older": 1, "incomplete": 0, "carried": 0, "later": 0, "exported_before": 0}
    assert man2["status"] == "ok" and man2["since"] == man1["until"] == man2["after"]
    assert man1["window_start"].startswith("weekly.days=7 before now")
    assert man2["after_manifest"] == man1["manifest"] and man2["window_start"] == (
        f"where the last weekly run that finished ok ended ({man1['manifest']})")
    assert os.listdir(log.read_text().splitlines()[-3].split()[1]) == [new.name]
    # a clock behind the last good week's end: starting there would leave out for good the runs recorded since;
    # the window is weekly.days back, and the manifest says why
    man3 = run_weekly(cfg, tmp_path / "artifacts", bin_, now=week1 + dt.timedelta(days=3), dry_run=True)
    assert man3["since"] == "2026-02-25T03:00:00.000Z" and man3["after_manifest"] == man2["manifest"]
    assert man3["window_start"].startswith(f"weekly.days=7 before now: the last weekly run that finished ok ended "
                                           f"after now, at {man2['until']}")
    cfg_file = tmp_path / "ops.yaml"
    cfg_file.write_text(f"weekly: {{traces: {root}, bundles_dir: {tmp_path / 'bundles'}, "
                        f"artifacts_dir: {tmp_path / 'artifacts'}, feedback_ledger: null}}\n")
    r = CliRunner().invoke(app, ["ops", "weekly", "--config", str(cfg_file), "--dry-run",
                                 "--bin", " ".join(bin_)])
    assert r.exit_code == 0, r.output  # the CLI's clock is today's: months after, four windows back (MAX_WINDOWS)
    assert (f", from 4 windows before now: the last weekly run that finished ok ended at {man2['until']} "
            f"({man2['manifest']}), further back") in r.stdout.replace("\n", "")


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
    until = dt.datetime.fromisoformat(man["until"])  # the next week starts there: a run of its own
    _session(root / record_sample_run(root, goal="the next week"), format_ts(until + dt.timedelta(seconds=1)))
    man = run_weekly(cfg, tmp_path / "artifacts", bin_, now=until + dt.timedelta(days=7))  # 2 s after: the same window's
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
    record_batch(cfg.chunk_registry, 4242, [reaction["message_id"]], MAIN_RUN, REPLY)  # the chat id it was sent to
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
