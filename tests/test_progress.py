"""Long commands show progress on stderr (``cli.app.progress_bar``): ``import openclaw``, ``export`` and
``push``. stdout keeps the summary, and under ``--json`` only the JSON document (the bar leaves nothing).
The callbacks behind the bars count what the work did: transcripts, runs, rows checked, MB sent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

import tracebridge.cli  # noqa: F401 - registers every command module
from tests.export.conftest import mixed_traces  # noqa: F401 - the fixture
from tests.importers.conftest import HOME
from tracebridge.cli.app import app
from tracebridge.export.bundle import verify_bundle
from tracebridge.export.pipeline import export_traces
from tracebridge.export.push import push_bundle
from tracebridge.importers.openclaw import import_openclaw

runner = CliRunner()


def test_import_reports_every_transcript_with_any_number_of_workers(tmp_path: Path) -> None:
    for workers in (1, 2):
        calls: list[tuple[int, int]] = []
        rep = import_openclaw([HOME], tmp_path / f"t{workers}", workers=workers,
                              progress=lambda done, total, calls=calls: calls.append((done, total)))
        assert rep.files_seen == 6 and calls[-1] == (6, 6), calls  # five sessions and a .bak copy
        assert [d for d, _ in calls] == sorted(d for d, _ in calls) and len({t for _, t in calls}) == 1


def test_push_reports_the_rows_it_checked_then_the_mb_it_sent(mixed_traces: Path, tmp_path: Path) -> None:  # noqa: F811
    res = export_traces(mixed_traces, tmp_path / "b")
    rows = sum(f.rows or 0 for f in verify_bundle(res.path).files if f.path.endswith(".jsonl"))
    calls: list[tuple[int, int, str]] = []
    push_bundle(res.path, (tmp_path / "store").as_uri(), progress=lambda *a: calls.append(a))
    checked = [c for c in calls if c[2] == "rows checked"]
    sent = [c for c in calls if c[2] == "MB sent"]
    assert checked == [(rows, rows, "rows checked")]  # fewer than 1000 rows: one call, at the end
    assert sent and calls.index(sent[0]) > calls.index(checked[-1]) and sent[-1][0] == sent[-1][1]
    calls.clear()  # the copy there is complete: nothing is sent again
    assert push_bundle(res.path, (tmp_path / "store").as_uri(), progress=lambda *a: calls.append(a))["status"] == "exists"
    assert [c[2] for c in calls] == ["rows checked"]


def test_commands_keep_stdout_for_the_summary(mixed_traces: Path, tmp_path: Path) -> None:  # noqa: F811
    res = runner.invoke(app, ["export", str(mixed_traces), "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert "5/5" in res.stderr and "export" in res.stderr and "5/5" not in res.stdout
    res = runner.invoke(app, ["export", str(mixed_traces), "--out", str(tmp_path / "c"), "--json"])
    assert json.loads(res.stdout)["passed"] and res.stderr == ""  # no bar under --json when stderr is no terminal
    res = runner.invoke(app, ["push", str(tmp_path / "c"), (tmp_path / "store").as_uri()])
    assert res.exit_code == 0 and "rows checked" not in res.stdout and "push" in res.stderr, res.output
    shutil.rmtree(tmp_path / "t", ignore_errors=True)
    res = runner.invoke(app, ["import", "openclaw", str(HOME), "--out", str(tmp_path / "t")])
    assert res.exit_code == 0 and "6/6" in res.stderr and "transcripts" in res.stderr, res.output


def test_the_bar_starts_no_thread() -> None:
    """Export and import fork workers while the bar is up: a refresh thread holding stderr's lock at the
    fork would leave the child hanging on its first write there."""
    import threading

    from tracebridge.cli.app import progress_bar

    before = threading.active_count()
    with progress_bar("export", "runs") as update:
        update(1, 3)
        assert threading.active_count() == before
        update(3, 3, "runs done")
