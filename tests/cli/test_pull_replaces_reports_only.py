"""``tracebridge pull`` replaces the folder under ``--out`` named after the report only when it is a report (or
empty): a folder of other files, or a file, there exits 2 and is left as it was. Before, ``pull
.../results --out .`` deleted ./results, whatever it held, and put the report there."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.report.test_report import small_report
from tracebridge.cli import app
from tracebridge.report import verify_report


def _pull(src: Path, out: Path) -> tuple[int, dict]:
    res = CliRunner().invoke(app, ["pull", str(src), "--out", str(out), "--json"])
    return res.exit_code, json.loads(res.stdout)


def test_pull_never_replaces_what_is_not_a_report(tmp_path: Path) -> None:
    src = tmp_path / "store" / "results"
    small_report(tmp_path, src)
    mine = tmp_path / "home" / "results"
    mine.mkdir(parents=True)
    (mine / "thesis.tex").write_text("two years of work")
    code, doc = _pull(src, mine.parent)
    assert code == 2 and doc["error"].startswith(f"{mine}: there already, and not a report"), doc
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
    (mine / "thesis.tex").unlink()
    mine.rmdir()
    mine.write_text("a file")
    assert _pull(src, mine.parent)[0] == 2 and mine.read_text() == "a file"
    mine.unlink()
    mine.mkdir()  # empty: taken
    assert _pull(src, mine.parent)[0] == 0 and verify_report(mine) == []
    assert _pull(src, mine.parent)[0] == 0  # a report there (an earlier pull): replaced
    assert verify_report(mine) == []
