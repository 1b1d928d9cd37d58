"""``tracebridge review`` of a window with no cycle: ``cycles`` fails (0 of ``review.min_cycles``) and so does
the review (exit 1: it passes only when every criterion passes), but every other criterion is ``not
exercised``: no cycle means no evidence either way. Before, each read "fail" (the runtime hook "never ran ok",
"no auditable harvest"), as if the hook, the uplift or the harvest had been seen to fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app

NOW = "2026-03-04T08:00:00Z"


@pytest.mark.parametrize("folder", ["empty", "missing"])
def test_no_cycle_fails_the_review_on_cycles_alone(folder: str, tmp_path: Path) -> None:
    artifacts = tmp_path / folder
    if folder == "empty":
        artifacts.mkdir()
    res = CliRunner().invoke(app, ["review", "--artifacts", str(artifacts), "--now", NOW, "--json"])
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    assert doc["passed"] is False and doc["cycles"] == []
    status = {ln["criterion"]: ln["status"] for ln in doc["lines"]}
    assert status == {"cycles": "fail", "runtime_hook": "not exercised", "uplift": "not exercised",
                      "integrity": "not exercised", "feedback": "not exercised", "chunk_policy": "not exercised"}
    assert doc["lines"][0]["evidence"].startswith("0 of 0 cycles ok (need 3)")
    assert all(ln["evidence"] == "no cycle in the window (2026-03-01T08:00Z..2026-03-04T08:00Z): nothing shows it "
               "either way" for ln in doc["lines"][1:]), doc["lines"]


def test_the_text_summary_names_the_failed_and_the_unexercised(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["review", "--artifacts", str(tmp_path), "--now", NOW])
    assert res.exit_code == 1, res.output
    assert res.stdout.rstrip().endswith("FAIL: cycles failed (runtime_hook, uplift, integrity, feedback, chunk_policy "
                                        "not exercised: nothing in the window shows them met)"), res.stdout
