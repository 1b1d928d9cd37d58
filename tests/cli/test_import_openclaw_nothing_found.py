"""``tracebridge import openclaw`` says so when it finds nothing to read. Before, a folder without
transcripts (a typo'd home such as ``~/openclaw``, someone else's folder) printed "0 / 0 / 0 / 0 / 0"
and "0 = 0 + 0 (reconciles)" and nothing else, exactly as an up-to-date incremental import does. It exits
1, "nothing could be imported", as ``import agentlightning`` does (a typo'd home is a failed import); an
incremental import with nothing new still exits 0."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tracebridge.cli import app

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / "tests" / "data" / "openclaw" / "home"


def _import(src: Path, out: Path, *extra: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["import", "openclaw", str(src), "--out", str(out), *extra])
    return res.exit_code, res.stdout


def test_a_folder_without_transcripts_is_named_in_the_report(tmp_path: Path) -> None:
    src = tmp_path / "openclaw"
    (src / "notes").mkdir(parents=True)
    (src / "notes" / "package.json").write_text('{"name": "x"}\n')
    code, out = _import(src, tmp_path / "traces", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["files_seen"] == 0 and doc["reconciles"] and doc["imported_nothing"], doc
    assert any(p.startswith(f"no OpenClaw transcript or agent database under {src}") for p in doc["problems"]), doc
    code, text = _import(src, tmp_path / "traces")
    assert code == 1 and f"no OpenClaw transcript or agent database under {src}" in text


def test_an_up_to_date_import_of_a_real_home_is_no_such_problem(tmp_path: Path) -> None:
    for _ in range(2):  # the first import, then the incremental one that finds nothing new
        code, out = _import(HOME, tmp_path / "traces", "--json")
        doc = json.loads(out)
        assert code == 0 and doc["files_seen"] > 0, doc
        assert not any("no OpenClaw transcript" in p for p in doc["problems"]), doc


def test_validate_after_importing_nothing_shows_no_rate_of_nothing(tmp_path: Path) -> None:
    """``--validate`` of an import that wrote no run: 0 of 0 is no 100% (it read as "all valid" next to the
    FAIL for having no runs); the text says n/a as ``validate``'s table does, the JSON keeps its numbers."""
    src = tmp_path / "openclaw"
    src.mkdir()
    code, text = _import(src, tmp_path / "traces", "--validate")
    assert code == 1 and "validate: lineage n/a, schema n/a — FAIL: no runs found" in text, text
    code, out = _import(src, tmp_path / "traces", "--validate", "--json")
    v = json.loads(out)["validation"]
    assert code == 1 and (v["runs_total"], v["runs_complete"], v["events_total"]) == (0, 0, 0) and not v["passed"]
    code, text = _import(HOME, tmp_path / "real", "--validate")
    assert "validate: lineage 100.00%, schema 100.00% — PASS" in text, text
