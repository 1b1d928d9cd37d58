"""``tracebridge feedback harvest --updates`` takes getUpdates dump files: a folder, or a file that holds no update
at all (empty, an error response, other JSON or text), is a usage error
(exit 2, nothing written), as a path that does not exist is. Before, the folder was quarantined as
"unreadable: Is a directory", logged as a harvest that ran, and the command exited 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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


@pytest.mark.parametrize("text, says", [
    ('{"hello": 1}\n', "a JSON object with neither a result list nor an update_id"),
    ("garbage\n", "none of its 1 items is an update (first: {dump}:1:<line>: invalid JSON"),
    ("[1, 2]\n", "none of its 2 items is an update"),
    ('{"ok": false, "error_code": 401, "description": "Unauthorized"}\n', "a getUpdates error response (401: Unauthorized)"),
    ("", "empty"),
])
def test_a_file_that_is_no_getupdates_dump_exits_2_naming_it(tmp_path: Path, monkeypatch, text: str,
                                                              says: str) -> None:
    # before: every line quarantined, a harvest logged as one that ran, exit 0
    monkeypatch.setenv("TRACEBRIDGE_FEEDBACK_SALT", "test-salt")
    dump = tmp_path / "not-a-dump.json"
    dump.write_text(text)
    memory = tmp_path / "memory"
    res = CliRunner().invoke(app, ["feedback", "harvest", "--updates", str(dump), f"ledger={memory}/l.jsonl",
                                   f"harvest_log={memory}/log.jsonl", f"quarantine={memory}/q.jsonl", "--json"])
    assert res.exit_code == 2, res.output
    error = json.loads(res.stdout)["error"]
    assert error.startswith(f"not a getUpdates dump: {dump}: {says.format(dump=dump)}"), error
    assert 'expected a getUpdates response {"ok": true, "result": [...]}' in error
    assert not memory.exists()


@pytest.mark.parametrize("text", ['{"ok": true, "result": []}\n', "[]\n"])
def test_a_dump_of_no_updates_is_a_harvest_of_nothing(tmp_path: Path, monkeypatch, text: str) -> None:
    monkeypatch.setenv("TRACEBRIDGE_FEEDBACK_SALT", "test-salt")
    dump = tmp_path / "getupdates.json"
    dump.write_text(text)
    memory = tmp_path / "memory"
    res = CliRunner().invoke(app, ["feedback", "harvest", "--updates", str(dump), f"ledger={memory}/l.jsonl",
                                   f"harvest_log={memory}/log.jsonl", f"quarantine={memory}/q.jsonl", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["harvests"][0]["read"] == 0
