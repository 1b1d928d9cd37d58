"""Both importers exit 1 when nothing could be imported (a file that is no input, an empty folder, an empty
file) and name a symlink loop as one: the audit found ``import openclaw`` passing such imports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.importers.conftest import MAIN, lazy_importorskip
from tracebridge.cli import app

ROOT = Path(__file__).resolve().parents[2]
SPANS = ROOT / "tests" / "data" / "agentlightning" / "agentops_openai_spans.jsonl"


def _import(kind: str, path: Path, out: Path) -> tuple[int, dict]:
    r = CliRunner().invoke(app, ["import", kind, str(path), "--out", str(out), "--json"])
    return r.exit_code, json.loads(r.stdout)


def test_openclaw_exits_1_when_no_line_could_be_imported(tmp_path):
    code, doc = _import("openclaw", ROOT / "README.md", tmp_path / "t")  # no transcript: every line quarantined
    assert doc["read"] == doc["quarantined"] > 100 and doc["reconciles"]
    assert code == 1 and doc["passed"] is False and doc["imported_nothing"] is True
    assert "nothing could be imported" in doc["problems"][-1]
    (tmp_path / "empty").mkdir()
    code, doc = _import("openclaw", tmp_path / "empty", tmp_path / "t2")
    assert code == 1 and doc["imported_nothing"] and "nothing to import" in doc["problems"][0]
    (tmp_path / "zero.jsonl").write_bytes(b"")
    code, doc = _import("openclaw", tmp_path / "zero.jsonl", tmp_path / "t3")
    assert code == 1 and doc["skipped"] == [f"{tmp_path / 'zero.jsonl'}: no importable rows yet (no line: an empty file)"]


def test_openclaw_waiting_or_unchanged_input_is_no_failure(tmp_path):
    src = tmp_path / "s.jsonl"
    src.write_bytes(MAIN.read_bytes().split(b"\n", 1)[0][:-5])  # the header, still being written
    code, doc = _import("openclaw", src, tmp_path / "t")
    assert code == 0 and doc["lines_pending"] == 1 and not doc["imported_nothing"]
    assert doc["skipped"] == [f"{src}: no importable rows yet (a half-written line only)"]
    shutil.copy(MAIN, src)
    assert _import("openclaw", src, tmp_path / "t")[0] == 0
    code, doc = _import("openclaw", src, tmp_path / "t")  # nothing new: unchanged, not "nothing imported"
    assert code == 0 and doc["files_unchanged"] == 1 and not doc["imported_nothing"]


def test_agentlightning_empty_span_file_is_skipped_and_exits_1(tmp_path):
    lazy_importorskip("agentlightning")
    zero = tmp_path / "zero.jsonl"
    zero.write_bytes(b"")
    code, doc = _import("agentlightning", zero, tmp_path / "t")
    assert code == 1 and doc["imported_nothing"] and doc["skipped"] == [
        f"{zero}: no importable rows yet (no line: an empty file)"]
    assert (doc["files_seen"], doc["files_new"], doc["files_skipped"]) == (1, 0, 1)
    blank = tmp_path / "blank.jsonl"
    blank.write_bytes(b"\n\n")
    code, doc = _import("agentlightning", blank, tmp_path / "t2")
    assert code == 1 and doc["skipped"] == [f"{blank}: no importable rows yet (blank lines only)"]
    shutil.copy(SPANS, tmp_path / "spans.jsonl")  # beside a span file that imports: skipped, exit 0
    r = CliRunner().invoke(app, ["import", "agentlightning", str(zero), str(tmp_path / "spans.jsonl"), "--out",
                                 str(tmp_path / "t3"), "--json"])
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["runs_written"] == 1 and doc["files_skipped"] == 1


@pytest.mark.parametrize("kind", ["openclaw", "agentlightning"])
def test_a_symlink_loop_is_named_as_one(tmp_path, kind):
    loop = tmp_path / "loop.jsonl"
    loop.symlink_to(loop)
    r = CliRunner().invoke(app, ["import", kind, str(loop), str(tmp_path / "gone"), "--out", str(tmp_path / "t")])
    assert r.exit_code == 2
    assert f"symlink loop: {loop}" in r.output and f"no such file or folder: {tmp_path / 'gone'}" in r.output


def test_discovery_names_a_symlink_loop(tmp_path):
    from tracebridge.importers.agentlightning.stored import discover_span_files
    from tracebridge.importers.openclaw.discover import discover

    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    problems: list[str] = []
    assert discover([loop], problems) == [] and discover_span_files([loop], problems) == []
    assert problems == [f"{loop}: symlink loop"] * 2
