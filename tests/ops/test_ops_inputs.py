"""Operations commands given the wrong input: exit 2 (a usage error, README "Exit codes") naming the file and
what was wrong in it, before any work, never a failed check (exit 1) or a failed cycle the review counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ops.test_cli import run
from tests.ops.test_promotion import gate_report


@pytest.mark.parametrize("text, says", [
    ("not json {", "cannot read gate report: not valid JSON: invalid literal, expected 'null': line 1 column 1"),
    ('{\n  "passed": true,\n  oops\n}\n', "not valid JSON: unexpected character, expected a string key: line 3 column 3"),
    ("[1, 2]", "not a gate report (a JSON object; run tracebridge gate --out)"),
    ('{"a": 1}', ":passed: not a gate report"),
])
def test_promote_of_a_file_that_is_no_gate_report_exits_2(tmp_path: Path, text: str, says: str) -> None:
    # before: exit 1, as if a gate had refused the candidate
    report = tmp_path / "gate.json"
    report.write_text(text)
    r = run("promote", "--report", report, "--state", tmp_path / "state", "--json")
    assert r.exit_code == 2, r.output
    doc = json.loads(r.stdout)
    assert doc["promoted"] is False and doc["error"].startswith(str(report)) and says in doc["error"], doc
    assert not (tmp_path / "state").exists()


def test_promote_of_a_folder_says_so(tmp_path: Path) -> None:
    r = run("promote", "--report", tmp_path, "--state", tmp_path / "state", "--json")
    assert r.exit_code == 2 and json.loads(r.stdout)["error"].startswith(f"--report {tmp_path}: a folder"), r.output


def test_promote_of_a_gate_that_failed_is_still_a_refusal(tmp_path: Path) -> None:
    r = run("promote", "--report", gate_report(tmp_path / "g.json", "v2", "v1", passed=False),
            "--state", tmp_path / "state", "--json")
    assert r.exit_code == 1 and "gate did not pass" in json.loads(r.stdout)["error"], r.output
