"""``import_openclaw(..., workers=2)`` and ``--workers``: the same runs, state, quarantine and
report as one process, also when a second import appends to runs the first one wrote."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from tests.importers.conftest import MAIN, SESSIONS
from tracebridge.cli import app
from tracebridge.importers.config import ImportConfig
from tracebridge.importers.openclaw import import_openclaw
from tracebridge.importers.openclaw.discover import discover
from tracebridge.importers.openclaw.parallel import run_of, split_by_run


def all_bytes(root: Path) -> dict[str, bytes]:
    """Every file an import wrote (runs, state, quarantine), the lock file excepted."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "openclaw.lock"}


def make_sources(dst: Path, copies: int, keep: float = 1.0) -> Path:
    """The fixture sessions folder (live, .bak, reset and deleted archives, cron, legacy rows,
    broken lines) plus ``copies`` of the main session under new ids; only the first ``keep``
    share of each file's lines (the rest comes in a later import)."""
    folder = dst / "agents" / "main" / "sessions"
    shutil.copytree(SESSIONS, folder, dirs_exist_ok=True)
    data = MAIN.read_bytes()
    for i in range(copies):
        sid = f"{i:08d}-0000-4000-8000-000000000000"
        (folder / f"{sid}.jsonl").write_bytes(data.replace(MAIN.stem.encode(), sid.encode()))
    for f in folder.iterdir():
        if ".jsonl" in f.name and keep < 1.0:
            lines = f.read_bytes().splitlines(keepends=True)
            f.write_bytes(b"".join(lines[:max(1, int(len(lines) * keep))]))
    return folder


def report_doc(rep) -> tuple[dict, list, list]:
    return rep.to_dict(), list(rep.drift.items()), list(rep.counts.items())


def test_two_workers_write_the_same_bytes_and_report_as_one(tmp_path):
    src = tmp_path / "src"
    reports = {}
    for keep in (0.5, 1.0):  # a first import, then one that appends to every run
        folder = make_sources(src, copies=12, keep=keep)
        for n in (1, 2):
            reports[keep, n] = import_openclaw([folder], tmp_path / f"out{n}", ImportConfig(checkpoint_every=5),
                                               workers=n)
        assert all_bytes(tmp_path / "out1") == all_bytes(tmp_path / "out2")
        one, two = reports[keep, 1], reports[keep, 2]
        assert report_doc(one) == report_doc(two)
        assert two.reconciles and two.lines_read == two.lines_accepted + two.lines_quarantined > 0
    first, second = reports[0.5, 2], reports[1.0, 2]
    assert first.files_new == 16 and first.lines_quarantined > 0 and first.files_skipped == 1  # the .bak
    assert second.files_appended >= 12 and second.lines_replayed > 0 and second.events_written > 0
    assert not list((tmp_path / "out2" / ".import").glob("*.part-*"))


def test_a_session_and_its_archives_go_to_one_worker(tmp_path):
    folder = make_sources(tmp_path, copies=6)
    transcripts = discover([folder], [])
    parts = split_by_run(transcripts, ImportConfig(), 2)
    assert len(parts) == 2 and sorted(i for p in parts for i in p) == list(range(len(transcripts)))
    owner = {run_of(transcripts[i], ImportConfig()): k for k, p in enumerate(parts) for i in p}
    for k, p in enumerate(parts):
        assert all(owner[run_of(transcripts[i], ImportConfig())] == k for i in p)
    live = [i for i, t in enumerate(transcripts) if t.path.name == MAIN.name]
    bak = [i for i, t in enumerate(transcripts) if t.path.name == MAIN.name + ".bak"]
    assert [k for k, p in enumerate(parts) if live[0] in p] == [k for k, p in enumerate(parts) if bak[0] in p]


def test_cli_workers_flag(tmp_path):
    folder = make_sources(tmp_path / "src", copies=4)
    docs = []
    for n in ("1", "2"):
        r = CliRunner().invoke(app, ["import", "openclaw", str(folder), "--out", str(tmp_path / n), "--workers", n,
                                     "--json"])
        assert r.exit_code == 0, r.output
        docs.append({k: v for k, v in json.loads(r.stdout).items() if k not in ("out", "state_file", "quarantine_file")})
    assert docs[0] == docs[1] and docs[1]["reconciles"] is True
    assert all_bytes(tmp_path / "1") == all_bytes(tmp_path / "2")
    r = CliRunner().invoke(app, ["import", "openclaw", str(folder), "--out", str(tmp_path / "3"), "--workers", "0"])
    assert r.exit_code == 2 and "--workers" in r.output
