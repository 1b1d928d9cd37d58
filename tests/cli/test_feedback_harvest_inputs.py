"""``tracebridge feedback harvest --updates`` takes getUpdates dump files: a folder is a usage error
(exit 2, nothing written), as a path that does not exist is. Before, the folder was quarantined as
"unreadable: Is a directory", logged as a harvest that ran, and the command exited 0."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tracebridge.cli import app


def test_a_folder_given_to_updates_exits_2_and_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRACEBRIDGE_FEEDBACK_SALT", "test-salt")
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    (dumps / "getupdates.json").write_text('{"ok": true, "result": []}\n')
    memory = tmp_path / "memory"
    res = CliRunner().invoke(app, ["feedback", "harvest", "--updates", str(dumps), f"ledger={memory}/l.jsonl",
                                   f"harvest_log={memory}/log.jsonl", f"quarantine={memory}/q.jsonl", "--json"])
    assert res.exit_code == 2, res.output
    assert f"--updates {dumps}: a folder" in json.loads(res.stdout)["error"]
    assert not memory.exists()


def test_the_file_in_it_is_harvested(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRACEBRIDGE_FEEDBACK_SALT", "test-salt")
    dump = tmp_path / "getupdates.json"
    dump.write_text('{"ok": true, "result": [{"update_id": 7, "message": {"message_id": 1, "date": 1764300000,'
                    ' "chat": {"id": 5, "type": "private"}, "text": "hi"}}]}\n')
    memory = tmp_path / "memory"
    res = CliRunner().invoke(app, ["feedback", "harvest", "--updates", str(dump), f"ledger={memory}/l.jsonl",
                                   f"harvest_log={memory}/log.jsonl", f"quarantine={memory}/q.jsonl", "--json"])
    assert res.exit_code == 0, res.output
    (h,) = json.loads(res.stdout)["harvests"]
    assert h["read"] == 1 and h["accepted"] == 1 and h["quarantined"] == 0, h
