"""``tracebridge export feedback.ledger=PATH`` of a ledger that does not exist exits 2 before any work,
as a missing ``corrections.file`` does. Before, a typo'd ledger path exported every run unlabelled and
exited 0 (``feedback.runs_labelled`` 0, as for a join that matched nothing)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.conftest import record_sample_run
from tracebridge.cli import app


def test_a_missing_ledger_exits_2_naming_the_key_and_writes_no_bundle(tmp_path: Path) -> None:
    record_sample_run(tmp_path / "traces")
    res = CliRunner().invoke(app, ["export", str(tmp_path / "traces"), f"feedback.ledger={tmp_path / 'nope.jsonl'}",
                                   "--out", str(tmp_path / "bundles"), "--json"])
    assert res.exit_code == 2, res.output
    assert json.loads(res.stdout)["error"].startswith(f"feedback.ledger={tmp_path / 'nope.jsonl'}: no such file")
    assert not (tmp_path / "bundles").exists() or not any((tmp_path / "bundles").iterdir())


def test_an_empty_ledger_exports_and_says_nothing_was_labelled(tmp_path: Path) -> None:
    record_sample_run(tmp_path / "traces")
    (tmp_path / "ledger.jsonl").write_text("")
    res = CliRunner().invoke(app, ["export", str(tmp_path / "traces"), f"feedback.ledger={tmp_path / 'ledger.jsonl'}",
                                   "--out", str(tmp_path / "bundles"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["feedback"]["runs_labelled"] == 0
