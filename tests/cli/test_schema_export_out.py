"""``tracebridge schema export --out`` exits 2 for a folder it cannot use, before writing or reading.
Before, ``--out`` naming a file ended in a FileExistsError traceback (exit 1), and ``--check --out`` of
a file or of a folder that does not exist said the schema files were stale (exit 1, a failed check)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app


@pytest.mark.parametrize("check", [[], ["--check"]])
@pytest.mark.parametrize("where", ["notes.txt", "notes.txt/schemas"])
def test_an_out_through_a_file_exits_2_naming_it(tmp_path: Path, check: list[str], where: str) -> None:
    (tmp_path / "notes.txt").write_text("not a folder\n")
    res = CliRunner().invoke(app, ["schema", "export", "--out", str(tmp_path / where), *check])
    assert res.exit_code == 2, res.output
    assert f"{tmp_path / 'notes.txt'} is a file, not a folder" in res.stderr
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_check_of_a_missing_folder_exits_2_and_export_then_check_passes(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["schema", "export", "--check", "--out", str(tmp_path / "json")])
    assert res.exit_code == 2 and "no such folder" in res.stderr, res.output
    assert CliRunner().invoke(app, ["schema", "export", "--out", str(tmp_path / "json")]).exit_code == 0
    res = CliRunner().invoke(app, ["schema", "export", "--check", "--out", str(tmp_path / "json")])
    assert res.exit_code == 0 and "up to date" in res.stdout, res.output


def test_json_gives_one_document_written_then_checked_then_stale(tmp_path: Path) -> None:
    """``schema export`` reports (files written, files stale) like every other command: ``--json`` is one
    document on stdout, and a stale file is a failed check (exit 1) with the files named."""
    out = tmp_path / "json"
    res = CliRunner().invoke(app, ["schema", "export", "--out", str(out), "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 0 and doc["ok"] and doc["folder"] == str(out), res.output
    assert sorted(Path(p).name for p in doc["written"]) == sorted(p.name for p in out.iterdir())
    res = CliRunner().invoke(app, ["schema", "export", "--check", "--out", str(out), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout) == {"ok": True, "folder": str(out), "stale": []}, res.output
    first = min(out.iterdir())
    first.write_text("{}\n")
    res = CliRunner().invoke(app, ["schema", "export", "--check", "--out", str(out), "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 1 and doc["ok"] is False and doc["exit_code"] == 1, res.output
    assert doc["stale"] == [first.name] and first.name in doc["error"]
