"""``tracebridge import agentlightning`` without ``--json``: the table shows the model calls' tool
schemas (recorded / missing), the count ``--json`` already gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app

RECORDED = Path(__file__).resolve().parents[1] / "data" / "agentlightning" / "agentops_openai_spans.jsonl"
ROW = "tool schemas of model calls: recorded / missing"


def _table_row(src: Path, out: Path) -> str:
    pytest.importorskip("agentlightning")
    r = CliRunner().invoke(app, ["import", "agentlightning", str(src), "--out", str(out)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    (line,) = [x for x in r.stdout.splitlines() if ROW in x]
    return line.split(ROW, 1)[1]


def test_the_table_shows_recorded_tool_schemas(tmp_path: Path) -> None:
    assert [c.strip() for c in _table_row(RECORDED, tmp_path / "t").split("│") if c.strip()] == ["2 / 0"]


def test_the_table_shows_missing_tool_schemas(tmp_path: Path) -> None:
    spans = [json.loads(line) for line in RECORDED.read_text().splitlines()]
    for s in spans:  # an instrumentation that records no tool list: both calls lack them (the second's prompt
        # holds the first's tool call and result: its row falls back to the run's schemas too)
        for k in [k for k in s.get("attributes", {}) if k.startswith("gen_ai.request.functions.")]:
            del s["attributes"][k]
    src = tmp_path / "spans.jsonl"
    src.write_text("".join(json.dumps(s) + "\n" for s in spans))
    assert [c.strip() for c in _table_row(src, tmp_path / "t").split("│") if c.strip()] == ["0 / 2"]
