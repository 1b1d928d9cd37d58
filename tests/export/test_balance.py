"""Class-balance checks of the dataset report (``balance.*``): each verifier verdict and each run
outcome against its floor, reported always, failing the export only with ``balance.fail``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers every command module
from tracebridge.cli.app import app
from tracebridge.config import ConfigError, load_config
from tracebridge.curate.config import BalanceConfig
from tracebridge.export.config import ExportConfig
from tracebridge.export.report import Tally, balance_checks, balance_failures, class_balance

runner = CliRunner()


def _tally(observed: dict[str, int], expected: dict[str, int], outcomes: dict[str, int]) -> Tally:
    return Tally(verdicts_observed=Counter(observed), verdicts_expected=Counter(expected), outcomes=Counter(outcomes))


def test_each_class_is_checked_against_its_floor() -> None:
    t = _tally({"continue": 90, "replan": 8, "end": 2}, {"continue": 40, "replan": 30, "end": 30},
               {"success": 12, "failure": 1, "unknown": 500})
    checks = {c["check"]: c for c in balance_checks(t, BalanceConfig(min_verdict_share=0.05, min_count=30))}
    assert checks["verifier_verdict:continue"]["passed"] and checks["verifier_verdict:replan"]["passed"]
    end = checks["verifier_verdict:end"]
    assert not end["passed"] and (end["count"], end["of"], end["share"]) == (2, 100, 0.02)
    # 13 known outcomes (unknown ones do not count) are too few to judge: skipped, and passing
    assert checks["run_outcome:failure"]["of"] == 13 and "skipped" in checks["run_outcome:failure"]
    assert checks["run_outcome:failure"]["passed"]
    assert balance_failures(list(checks.values())) == ["verifier_verdict:end 2.0% (2 of 100) < 5%"]
    # the rows train on the expected verdict with ex_post: that one is balanced
    assert all(c["passed"] for c in balance_checks(t, BalanceConfig(min_verdict_share=0.05), "ex_post"))
    low = balance_checks(t, BalanceConfig(min_outcome_share=0.1, min_count=10))
    assert [c["check"] for c in low if not c["passed"]] == ["verifier_verdict:replan", "verifier_verdict:end",
                                                              "run_outcome:failure"]
    section = class_balance(t, BalanceConfig(min_verdict_share=0.05))
    assert section["passed"] is False and section["outcomes"]["unknown"] == 500


def test_floors_are_validated() -> None:
    problems = ExportConfig(balance=BalanceConfig(min_verdict_share=0.4, min_outcome_share=0.6, min_count=0)).validate()
    assert any(p.startswith("balance.min_verdict_share=0.4: must be in 0..0.333") for p in problems)
    assert any(p.startswith("balance.min_outcome_share=0.6") for p in problems)
    assert "balance.min_count=0: must be >= 1" in problems
    try:
        load_config(ExportConfig, None, ["balance.min_verdict_share=0.9"])
    except ConfigError as exc:
        assert "balance.min_verdict_share" in str(exc)
    else:
        raise AssertionError("a floor no class can reach was accepted")


def test_export_reports_balance_and_fails_only_when_asked(sim_traces: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["export", str(sim_traces), "--out", str(tmp_path / "a"), "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 0 and doc["class_balance_passed"] is True, res.output
    report = json.loads(next((tmp_path / "a").glob("*/report.json")).read_text())
    shares = [c["share"] for c in report["class_balance"]["checks"] if c["check"].startswith("verifier_verdict:")]
    assert len(shares) == 3 and report["class_balance"]["passed"]
    rarest = min(shares)
    floor = f"balance.min_verdict_share={min(rarest + 0.05, 0.33):.2f}"  # above the rarest verdict's share

    res = runner.invoke(app, ["export", str(sim_traces), floor, "--out", str(tmp_path / "b"), "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 0 and doc["passed"] and doc["class_balance_passed"] is False  # reported, not failed
    assert doc["class_balance_failures"] and doc["class_balance_failures"][0].startswith("verifier_verdict:")
    md = next((tmp_path / "b").glob("*/report.md")).read_text()
    assert "| check | count | of | share | min share | passed |" in md and "**no**" in md

    res = runner.invoke(app, ["export", str(sim_traces), floor, "--out", str(tmp_path / "c")])
    assert res.exit_code == 0 and "class balance below its floors" in res.output

    res = runner.invoke(app, ["export", str(sim_traces), floor, "balance.fail=true", "--out", str(tmp_path / "d"),
                              "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 1 and not doc["passed"]
    assert any(f.startswith("class balance (balance.fail): verifier_verdict:") for f in doc["failures"])
