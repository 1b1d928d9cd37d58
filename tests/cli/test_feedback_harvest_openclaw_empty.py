"""``tracebridge feedback harvest --openclaw PATH`` of a folder that holds no OpenClaw transcript or agent
database exits 2 and logs no harvest. Before, it exited 0 and logged a harvest of 0 lines, and the daily
audit took that log entry as evidence that the harvest ran that day (``harvest_ran: yes``), so a cron job
pointed at a wrong folder passed every audit."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tracebridge.cli import app


@pytest.fixture
def memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The overrides that put the feedback files under tmp_path/memory."""
    monkeypatch.setenv("TRACEBRIDGE_FEEDBACK_SALT", "test-salt")
    m = tmp_path / "memory"
    return [f"ledger={m}/l.jsonl", f"harvest_log={m}/log.jsonl", f"quarantine={m}/q.jsonl",
            f"registry={m}/chunks.jsonl", f"mapping={m}/mapping.json", f"audit_dir={m}/audit"]


def _audit_today(memory: list[str]) -> dict:
    res = CliRunner().invoke(app, ["feedback", "audit", "--day", dt.datetime.now(dt.UTC).date().isoformat(),
                                   *memory, "--json"])
    return json.loads(res.stdout)


def test_an_empty_folder_is_no_harvest_that_ran(memory: list[str], tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a transcript\n")
    res = CliRunner().invoke(app, ["feedback", "harvest", "--openclaw", str(tmp_path / "empty"), *memory, "--json"])
    assert res.exit_code == 2, res.output
    error = json.loads(res.stdout)["error"]
    assert error.startswith(f"--openclaw {tmp_path / 'empty'}: no OpenClaw transcript or agent database there"), error
    assert not (tmp_path / "memory" / "log.jsonl").exists() and not (tmp_path / "memory" / "l.jsonl").exists()
    audit = _audit_today(memory)
    assert audit["harvest_ran"] is False and audit["harvest_runs"] == 0, audit


def test_a_transcript_without_reactions_is_a_harvest_that_ran(memory: list[str], tmp_path: Path) -> None:
    sessions = tmp_path / "home" / "agents" / "main" / "sessions"
    sessions.mkdir(parents=True)
    rows = [{"type": "session", "version": 3, "id": "s1", "timestamp": "2026-01-01T00:00:00.000Z"},
            {"type": "message", "id": "m0", "timestamp": "2026-01-01T00:00:01.000Z",
             "message": {"role": "user", "content": "hello"}}]
    (sessions / "s1.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    res = CliRunner().invoke(app, ["feedback", "harvest", "--openclaw", str(tmp_path / "home"), *memory, "--json"])
    assert res.exit_code == 0, res.output
    (h,) = json.loads(res.stdout)["harvests"]
    assert h["read"] == 0 and h["inputs"] == [str(sessions / "s1.jsonl")], h
    audit = _audit_today(memory)
    assert audit["harvest_ran"] is True and audit["harvest_runs"] == 1, audit


def test_the_openclaw_folder_is_walked_once(memory: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 'nothing there' check and the harvest walked the folder twice (two listings that a file written
    in between would set apart: the check could pass on a transcript the harvest then did not find). Now
    one walk is checked and harvested: the real ``os.scandir`` runs, each folder is listed once."""
    import os

    sessions = tmp_path / "home" / "agents" / "main" / "sessions"
    sessions.mkdir(parents=True)
    (sessions / "s1.jsonl").write_bytes(orjson.dumps({"type": "session", "version": 3, "id": "s1"}) + b"\n")
    scans: list[str] = []
    real = os.scandir

    def counting(path: str = ".") -> os.ScandirIterator:
        scans.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", counting)
    res = CliRunner().invoke(app, ["feedback", "harvest", "--openclaw", str(tmp_path / "home"), *memory, "--json"])
    assert res.exit_code == 0, res.output
    walked = [s for s in scans if s.startswith(str(tmp_path / "home"))]
    assert sorted(walked) == sorted(set(walked)) and str(sessions) in walked, scans


@pytest.mark.parametrize("text", ["not a transcript\n", '{\n  "ok": true,\n  "result": []\n}\n',
                                  '{"update_id": 1, "message_reaction": {}}\n'])
def test_a_named_file_that_is_no_transcript_is_no_harvest_that_ran(memory: list[str], tmp_path: Path,
                                                                    text: str) -> None:
    # before: taken as a transcript whatever it held, it read nothing, logged a harvest that ran, exit 0
    notes = tmp_path / "notes.jsonl"
    notes.write_text(text)
    res = CliRunner().invoke(app, ["feedback", "harvest", "--openclaw", str(notes), *memory, "--json"])
    assert res.exit_code == 2, res.output
    assert json.loads(res.stdout)["error"].startswith(f"--openclaw {notes}: not an OpenClaw transcript"), res.stdout
    assert not (tmp_path / "memory" / "log.jsonl").exists()


@pytest.mark.parametrize("text", ["", '{"type": "session", "version": 3, "id": "s"}\n'])
def test_a_transcript_without_reactions_yet_is_a_harvest_of_nothing(memory: list[str], tmp_path: Path,
                                                                     text: str) -> None:
    session = tmp_path / "s.jsonl"
    session.write_text(text)
    res = CliRunner().invoke(app, ["feedback", "harvest", "--openclaw", str(session), *memory, "--json"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "memory" / "log.jsonl").exists()
