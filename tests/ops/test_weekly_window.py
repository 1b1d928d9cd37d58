"""A weekly job run twice in one window (a timer and a cron both installed, a manual rerun, a DST hour repeated,
a run just either side of the window's boundary, a clock set back) exports nothing twice: a run within
``weekly.min_interval_h`` of the last good week's end is skipped (exit 0, nothing staged, exported or swept, no
manifest), and no run a good week staged is staged again by a window that reaches back over it."""

from __future__ import annotations

import datetime as dt
import json

from typer.testing import CliRunner

from tests.conftest import record_sample_run
from tests.ops.test_weekly import _fake_bin, _session
from tracebridge.cli import app
from tracebridge.ops.config import WeeklyConfig
from tracebridge.ops.weekly import run_weekly
from tracebridge.schema.canonical import format_ts

WEEK1 = dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC)


def _setup(tmp_path, started="2026-02-27T10:00:00.000Z", **kw):
    root = tmp_path / "traces"
    run = root / record_sample_run(root, goal="this week")
    _session(run, started)
    cfg = WeeklyConfig(traces=str(root), bundles_dir=str(tmp_path / "bundles"), feedback_ledger=None, **kw)
    bin_, log = _fake_bin(tmp_path)
    return root, cfg, bin_, log


def _weeks(tmp_path):
    return sorted(p.name for p in (tmp_path / "artifacts").iterdir())


def test_a_second_run_in_the_same_window_is_skipped_and_exports_nothing(tmp_path):
    # before: a run 30 min after the Sunday one exported the session started in between, pushed that bundle and
    # paid a second GPU window for it; with no new session it "failed" (no runs since 03:00, exit 1)
    root, cfg, bin_, log = _setup(tmp_path)
    man1 = run_weekly(cfg, tmp_path / "artifacts", bin_, now=WEEK1)
    assert man1["status"] == "ok" and len(log.read_text().splitlines()) == 3
    _session(root / record_sample_run(root, goal="started at 03:10"), "2026-03-01T03:10:00.000Z")
    bundles, weeks = sorted(p.name for p in (tmp_path / "bundles").iterdir()), _weeks(tmp_path)
    for later in (dt.timedelta(minutes=30),  # a manual run after the timer's
                  dt.timedelta(hours=-1),  # a DST hour repeated by a local-time cron, a clock set back an hour
                  dt.timedelta(seconds=-1)):  # either side of the window's boundary
        man = run_weekly(cfg, tmp_path / "artifacts", bin_, now=WEEK1 + later)
        assert man["status"] == "skipped" and man["manifest"] is None and man["plan"] == []
        assert man1["manifest"] in man["skip"] and "weekly.min_interval_h=84" in man["skip"]
    assert len(log.read_text().splitlines()) == 3  # no export, push or window again
    assert sorted(p.name for p in (tmp_path / "bundles").iterdir()) == bundles and _weeks(tmp_path) == weeks
    assert "after (the clock was set back)" in run_weekly(cfg, tmp_path / "artifacts", bin_, now=WEEK1 - dt.timedelta(hours=1),
                                                          dry_run=True)["skip"]
    # the next week runs, and takes the session started at 03:10
    man2 = run_weekly(cfg, tmp_path / "artifacts", bin_, now=WEEK1 + dt.timedelta(days=7))
    assert man2["status"] == "ok" and man2["staged"]["staged"] == 1
    # weekly.min_interval_h=0: a run of the same window on purpose
    again = run_weekly(WeeklyConfig(**{**cfg.__dict__, "min_interval_h": 0}), tmp_path / "artifacts", bin_,
                       now=WEEK1 + dt.timedelta(days=7, minutes=5))
    assert again["status"] == "failed" and "no runs since" in again["steps"]["stage"]["reason"]


def test_a_window_reaching_back_over_an_earlier_week_stages_none_of_its_runs_again(tmp_path):
    # the last good week ran with the clock 5 days ahead: its end is after now, so this window starts weekly.days
    # back, over runs that week staged; before, they went into a second bundle and a second sweep
    root, cfg, bin_, _log = _setup(tmp_path)
    ahead = run_weekly(cfg, tmp_path / "artifacts", bin_, now=WEEK1 + dt.timedelta(days=5))
    assert ahead["status"] == "ok" and ahead["staged"]["staged"] == 1
    new = root / record_sample_run(root, goal="after the clock was fixed")
    _session(new, "2026-02-28T10:00:00.000Z")
    man = run_weekly(cfg, tmp_path / "artifacts", bin_, now=WEEK1)
    assert man["status"] == "ok" and man["staged"]["staged"] == 1  # was 2: the earlier week's run again
    assert man["staged"]["exported_before"] == 1 and man["staged_runs"] == [new.name]
    assert man["window_start"].startswith("weekly.days=7 before now: the last weekly run that finished ok ended after now")


def test_the_cli_says_it_skipped_and_exits_0(tmp_path):
    root, _cfg, bin_, log = _setup(tmp_path, format_ts(dt.datetime.now(dt.UTC) - dt.timedelta(days=1)))
    cfg_file = tmp_path / "weekly.yaml"
    cfg_file.write_text(f"agree_with: []\nweekly: {{traces: {root}, bundles_dir: {tmp_path / 'bundles'}, "
                        f"artifacts_dir: {tmp_path / 'artifacts'}, feedback_ledger: null}}\n")
    args = ["ops", "weekly", "--config", str(cfg_file), "--bin", " ".join(bin_)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0 and "OK; manifest" in r.stdout, r.output
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0 and r.stdout.startswith("SKIPPED: this window's weekly run already finished ok"), r.output
    r = CliRunner().invoke(app, [*args, "--json"])
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["status"] == "skipped" and doc["manifest"] is None
    assert len(log.read_text().splitlines()) == 3


def test_a_week_run_with_the_clock_far_ahead_does_not_hide_the_one_that_just_ran(tmp_path):
    # the newest end is a week run with the clock 30 days ahead; the run that ended 30 min ago is this window's
    root, cfg, bin_, log = _setup(tmp_path, days=60)
    assert run_weekly(cfg, tmp_path / "artifacts", bin_, now=WEEK1 + dt.timedelta(days=30))["status"] == "ok"
    _session(root / record_sample_run(root, goal="after the clock was fixed"), "2026-02-28T10:00:00.000Z")
    assert run_weekly(cfg, tmp_path / "artifacts", bin_, now=WEEK1)["status"] == "ok"
    _session(root / record_sample_run(root, goal="between the two"), "2026-03-01T03:10:00.000Z")
    man = run_weekly(cfg, tmp_path / "artifacts", bin_, now=WEEK1 + dt.timedelta(minutes=30))
    assert man["status"] == "skipped" and "0.5 h before now" in man["skip"]
    assert len(log.read_text().splitlines()) == 6
    # a manifest whose until was edited into no time is no week's end (was a ValueError: "exit 2, config error")
    edited = 0
    for m in (tmp_path / "artifacts").glob("*/manifest.json"):
        m.chmod(0o644)
        text = m.read_text()
        edited += '"until": "2026-03-01T03:00:00.000Z"' in text
        m.write_text(text.replace('"until": "2026-03-01T03:00:00.000Z"', '"until": "soon"'))
    assert edited == 1
    assert run_weekly(cfg, tmp_path / "artifacts", bin_, now=WEEK1 + dt.timedelta(minutes=30), dry_run=True)
