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
