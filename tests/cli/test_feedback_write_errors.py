"""``feedback mapping init`` and ``feedback chunks record`` name the option (or config key) and the path
when the file cannot be written, and say why in words. Before, the error was Python's errno text alone
(``error: [Errno 17] File exists: '/x'``, ``registry: [Errno 21] Is a directory: '/x'``): no option, and not
the path the user gave."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app

RECORD = ["chunks", "record", "--chat", "1", "--message-ids", "1,2", "--run-id", "r", "--event-id", "r:e"]
COMMANDS = {"mapping init": (["mapping", "init"], "--mapping", "mapping"), "chunks record": (RECORD, "--registry", "registry")}


def _run(cmd: str, path: Path, by_key: bool = False) -> tuple[int, str]:
    args, flag, key = COMMANDS[cmd]
    given = [f"{key}={path}"] if by_key else [flag, str(path)]
    res = CliRunner().invoke(app, ["feedback", *args, *given, "--json"])
    return res.exit_code, json.loads(res.stdout)["error"]


@pytest.mark.parametrize("cmd", list(COMMANDS))
def test_a_file_in_the_way_is_named(cmd: str, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    target = tmp_path / "afile" / "x.json"
    code, error = _run(cmd, target)
    assert code == 2 and error == f"{COMMANDS[cmd][1]} {target}: {tmp_path / 'afile'} is a file, not a folder", error
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.parametrize("cmd", list(COMMANDS))
def test_a_folder_is_named_with_its_key_when_the_config_gave_it(cmd: str, tmp_path: Path) -> None:
    code, error = _run(cmd, tmp_path, by_key=True)
    assert code == 2 and error == f"{COMMANDS[cmd][2]}={tmp_path}: a folder; give the path of a file", error
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cmd", list(COMMANDS))
def test_a_name_the_filesystem_refuses_says_why(cmd: str, tmp_path: Path) -> None:
    target = tmp_path / ("x" * 300 + ".json")
    code, error = _run(cmd, target)
    assert code == 2 and error == f"{COMMANDS[cmd][1]} {target}: cannot be written (File name too long)", error


def test_mapping_set_names_the_option_when_a_file_is_in_the_way(tmp_path: Path) -> None:
    # before: "[Errno 17] File exists: '<tmp>/afile'"
    (tmp_path / "afile").write_text("x")
    target = tmp_path / "afile" / "m.json"
    res = CliRunner().invoke(app, ["feedback", "mapping", "set", "👍", "3", "--mapping", str(target), "--json"])
    assert res.exit_code == 2
    assert json.loads(res.stdout)["error"] == f"--mapping {target}: {tmp_path / 'afile'} is a file, not a folder"


@pytest.mark.parametrize("key", ["ledger", "harvest_log", "quarantine"])
def test_harvest_names_a_file_it_cannot_write_before_harvesting(tmp_path: Path, monkeypatch, key: str) -> None:
    # before: the bare errno text ("[Errno 17] File exists: '<tmp>/afile'") for the ledger and the harvest log,
    # found while writing; and a quarantine under a file was found only once an update had to go there
    monkeypatch.setenv("TRACEBRIDGE_FEEDBACK_SALT", "test-salt")
    (tmp_path / "afile").write_text("x")
    dump = tmp_path / "getupdates.json"
    dump.write_text('{"ok": true, "result": [{"update_id": 7, "message": {"message_id": 1, "date": 1764300000,'
                    ' "chat": {"id": 5, "type": "private"}, "text": "hi"}}]}\n')
    paths = {k: tmp_path / "memory" / f"{k}.jsonl" for k in ("ledger", "harvest_log", "quarantine")}
    paths[key] = tmp_path / "afile" / f"{key}.jsonl"
    res = CliRunner().invoke(app, ["feedback", "harvest", "--updates", str(dump), f"mapping={tmp_path / 'm.json'}",
                                   *(f"{k}={p}" for k, p in paths.items()), "--json"])
    assert res.exit_code == 2, res.output
    assert json.loads(res.stdout)["error"] == f"{key}={paths[key]}: {tmp_path / 'afile'} is a file, not a folder"
    assert not (tmp_path / "memory").exists()
