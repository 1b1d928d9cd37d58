"""A trace root whose runs sit one folder deeper (a parent of one root a day) was read as holding no
runs: ``validate`` and ``export`` said "no runs found" (exit 1; the export wrote an empty bundle) without
saying where the runs were. Now the folders
that hold runs are named: ``validate`` lists each (and says so in its failure), ``export`` exits 2
before any work when the root has no run of its own, and warns when it has some."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.conftest import record_sample_run
from tracebridge.capture.reader import nested_roots
from tracebridge.cli import app


def _days(tmp_path: Path) -> Path:
    root = tmp_path / "all"
    for day, n in (("day1", 2), ("day2", 1)):
        for _ in range(n):
            record_sample_run(root / day)
    (root / "empty").mkdir()  # no runs anywhere below: not named
    return root


def test_nested_roots_names_the_folders_that_hold_runs(tmp_path: Path) -> None:
    root = _days(tmp_path)
    assert nested_roots(root) == [(root / "day1", 2), (root / "day2", 1)]
    assert nested_roots(root / "day1") == []  # a root of runs
    assert nested_roots(next((root / "day1").iterdir())) == []  # a run folder
    assert nested_roots(tmp_path / "missing") == []


def test_validate_of_the_parent_fails_naming_the_sub_folders(tmp_path: Path) -> None:
    root = _days(tmp_path)
    res = CliRunner().invoke(app, ["validate", str(root), "--json"])
    assert res.exit_code == 1, res.output
    rep = json.loads(res.stdout)
    assert rep["runs_total"] == 0 and rep["nested_runs_not_read"] == 3
    assert rep["failures"] == ["no runs found (3 run folder(s) in sub-folders: validate each sub-folder, see problems)"]
    assert rep["problems"] == [
        f"{root / day}:-: <folder>: holds no run files but {n} run folder(s) below it, not read: validate "
        f"{root / day} (a trace root holds run folders directly)" for day, n in (("day1", 2), ("day2", 1))]
    assert rep["problems_by_kind"] == {"nested": 2}


def test_validate_of_a_root_with_runs_and_a_nested_day_lists_it_and_passes(tmp_path: Path) -> None:
    root = _days(tmp_path)
    record_sample_run(root)
    res = CliRunner().invoke(app, ["validate", str(root), "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["runs_total"] == 1 and rep["nested_runs_not_read"] == 3 and rep["problems_by_kind"] == {"nested": 2}


def test_export_of_the_parent_exits_2_before_any_work(tmp_path: Path) -> None:
    root = _days(tmp_path)
    res = CliRunner().invoke(app, ["export", str(root), "--out", str(tmp_path / "bundles"), "--json"])
    assert res.exit_code == 2, res.output
    err = json.loads(res.stdout)["error"]
    assert err.startswith(f"{root}: no run folder directly under it; its sub-folders hold runs: ")
    assert f"{root / 'day1'} (2 runs), {root / 'day2'} (1 runs)" in err
    assert not (tmp_path / "bundles").exists()  # before any work, --out not even made


def test_export_beside_runs_of_its_own_warns_and_counts_them(tmp_path: Path) -> None:
    root = _days(tmp_path)
    record_sample_run(root)
    res = CliRunner().invoke(app, ["export", str(root), "--out", str(tmp_path / "bundles"), "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    assert s["counts"]["read"] == 1 and s["nested_runs_not_read"] == 3
    assert f"warning: {root}: runs in sub-folders are not exported: " in res.stderr
