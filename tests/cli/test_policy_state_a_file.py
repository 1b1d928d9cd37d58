"""``--state FILE`` (a file where the policy state folder goes) is a usage error in ``ops policy``,
``promote`` and ``rollback``: exit 2 naming the path, before anything is read or written. Before, it exited
1, the code of a promotion history that fails its check (or a promotion the gate refuses)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app


@pytest.mark.parametrize("cmd", [["ops", "policy"], ["rollback"], ["promote", "--report", "{tmp}/gate.json"]])
def test_a_state_path_that_is_a_file_exits_2(cmd: list[str], tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.write_text("not a folder\n")
    (tmp_path / "gate.json").write_text("{}")
    args = [a.replace("{tmp}", str(tmp_path)) for a in cmd]
    res = CliRunner().invoke(app, [*args, "--state", str(state), "--json"])
    assert res.exit_code == 2, (cmd, res.output)
    doc = json.loads(res.stdout)
    assert doc["exit_code"] == 2 and doc["error"] == f"{state}: policy state path is not a folder " \
        "(promotion.state_dir / --state)", doc
    assert state.read_text() == "not a folder\n" and sorted(p.name for p in tmp_path.iterdir()) == ["gate.json", "state"]


def test_a_state_folder_not_made_yet_is_an_empty_history(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["ops", "policy", "--state", str(tmp_path / "state"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert {k: doc[k] for k in ("active", "records", "problems", "ok", "torn")} == \
        {"active": None, "records": 0, "problems": [], "ok": True, "torn": None}
    assert doc["state_dir"] == str(tmp_path / "state") and "no policy state there" in doc["note"]  # said, not silent
