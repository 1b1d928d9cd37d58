"""The longest event line ``validate`` and ``export`` read is a knob (``--max-line-bytes``,
``quality.max_line_bytes``), as in the importers: a longer line is a problem of its run, named with its
size, and a larger limit reads it. Before, both were fixed at 16 MiB."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.conftest import record_sample_run
from tracebridge.cli import app


def _root_with_a_long_line(tmp_path: Path) -> Path:
    root = tmp_path / "traces"
    run = root / record_sample_run(root)
    lines = (run / "events.jsonl").read_text().splitlines()
    ev = json.loads(lines[10])  # env_observation
    ev["payload"]["observation"] = "x" * 5000
    lines[10] = json.dumps(ev)
    (run / "events.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_validate_reads_up_to_max_line_bytes(tmp_path: Path) -> None:
    root = _root_with_a_long_line(tmp_path)
    res = CliRunner().invoke(app, ["validate", str(root), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["problems"] == [], res.output
    res = CliRunner().invoke(app, ["validate", str(root), "--max-line-bytes", "4096", "--json"])
    rep = json.loads(res.stdout)
    assert res.exit_code == 1 and rep["problems_by_kind"].get("json") == 1, res.output
    (problem,) = [p for p in rep["problems"] if "longer than" in p]
    assert "events.jsonl:11: <line>: line of " in problem and "longer than max_line_bytes=4096" in problem
    res = CliRunner().invoke(app, ["validate", str(root), "--max-line-bytes", "100", "--json"])
    assert res.exit_code == 2 and "--max-line-bytes" in json.loads(res.stdout)["error"]


def test_export_quarantines_a_longer_line_by_its_size(tmp_path: Path) -> None:
    root = _root_with_a_long_line(tmp_path)
    res = CliRunner().invoke(app, ["export", str(root), "--out", str(tmp_path / "b1"), "quality.max_line_bytes=4096",
                                   "--json"])
    s = json.loads(res.stdout)
    assert s["counts"]["quarantined"] == 1 and s["quarantine"]["by_rule"]["bad_json"] == 1, s  # its children: no parent
    (q,) = [json.loads(x) for x in Path(s["quarantine"]["file"]).read_text().splitlines()]
    assert "longer than max_line_bytes=4096" in json.dumps(q)
    res = CliRunner().invoke(app, ["export", str(root), "--out", str(tmp_path / "b2"), "--json"])
    assert json.loads(res.stdout)["counts"]["accepted"] == 1, res.output
    res = CliRunner().invoke(app, ["export", str(root), "--out", str(tmp_path / "b3"), "quality.max_line_bytes=10",
                                   "--json"])
    assert res.exit_code == 2 and "quality.max_line_bytes=10: must be >= 1024" in json.loads(res.stdout)["error"]
