"""``tracebridge feedback labels`` of a ledger that is not there exits 2 naming it (the flag or key it came
from). Before, the missing file was read as an empty ledger: exit 0 with "reactions present 0", which reads
as a real join that found nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app


@pytest.mark.parametrize("how", ["flag", "override"])
def test_a_missing_ledger_exits_2_naming_it(how: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ledger.jsonl"
    given = ["--ledger", str(missing)] if how == "flag" else [f"ledger={missing}"]
    res = CliRunner().invoke(app, ["feedback", "labels", *given, f"registry={tmp_path / 'chunks.jsonl'}",
                                   f"mapping={tmp_path / 'mapping.json'}", "--json"])
    assert res.exit_code == 2, res.output
    error = json.loads(res.stdout)["error"]
    assert error.startswith(f"--ledger {missing}: no such file" if how == "flag" else f"ledger={missing}: no such file")


def test_a_folder_as_ledger_exits_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["feedback", "labels", "--ledger", str(tmp_path), "--json"])
    assert res.exit_code == 2 and json.loads(res.stdout)["error"].startswith(f"--ledger {tmp_path}: a folder")


def test_an_empty_ledger_is_read_as_no_reactions(tmp_path: Path) -> None:
    (tmp_path / "ledger.jsonl").write_text("")
    res = CliRunner().invoke(app, ["feedback", "labels", "--ledger", str(tmp_path / "ledger.jsonl"),
                                   f"registry={tmp_path / 'chunks.jsonl'}", f"mapping={tmp_path / 'm.json'}", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["ledger"]["read"] == 0 and doc["reactions"]["present"] == 0, doc
