"""``tracebridge import openclaw`` shows a half-written last line it leaves for the next import. It is
in none of the line counts (read = accepted + quarantined), so before, the text summary said
"3 = 3 + 0 (reconciles)" and nothing of the line; only ``--json`` had ``lines_pending``."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from tracebridge.cli import app

ROOT = Path(__file__).resolve().parents[2]
LEGACY = ROOT / "tests/data/openclaw/home/.clawdbot/agents/ops/sessions/legacy-1.jsonl"
PENDING = "half-written last lines left for the next import (--final quarantines them)"


def _home(tmp_path: Path) -> Path:
    sessions = tmp_path / "home" / "agents" / "main" / "sessions"
    sessions.mkdir(parents=True)
    text = LEGACY.read_text().rstrip("\n") + '\n{"type":"message","id":"zz","message":{"role":"user","content":"hal'
    (sessions / "s1.jsonl").write_text(text)
    return tmp_path / "home"


def _text(res_stdout: str) -> str:
    return re.sub(r"[\s│]+", " ", res_stdout)


def test_the_pending_line_is_a_row_of_the_summary(tmp_path: Path) -> None:
    home = _home(tmp_path)
    doc = json.loads(CliRunner().invoke(app, ["import", "openclaw", str(home), "--out", str(tmp_path / "t1"),
                                              "--json"]).stdout)
    assert doc["lines_pending"] == 1 and doc["read"] == doc["accepted"] + doc["quarantined"], doc
    res = CliRunner().invoke(app, ["import", "openclaw", str(home), "--out", str(tmp_path / "t2")],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 0 and f"{PENDING} 1" in _text(res.stdout), res.stdout


def test_with_final_it_is_quarantined_and_no_such_row(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["import", "openclaw", str(_home(tmp_path)), "--out", str(tmp_path / "t"),
                                   "--final"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and PENDING not in _text(res.stdout), res.stdout
    assert "truncated line" in res.stdout
