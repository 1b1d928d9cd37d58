"""A mapping or chunk registry path that is a folder is refused (exit 2 naming it). Before, a folder was
read as "no file": the mapping as the built-in defaults (every reaction scored by them, the monthly review
reporting mapping version 1) and the registry as empty (every reaction an orphan), each exit 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app

ROW = {"time": "2026-02-03T10:00:00Z", "chat": 1, "message_id": 5, "user": "u:1", "emoji": "👍", "change": "added",
       "update_id": 1, "key": "tg:1:added:👍"}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(json.dumps(ROW) + "\n")
    (tmp_path / "folder").mkdir()
    return {"ledger": ledger, "folder": tmp_path / "folder", "registry": tmp_path / "chunks.jsonl",
            "mapping": tmp_path / "mapping.json"}


@pytest.mark.parametrize("which", ["mapping", "registry"])
def test_labels_and_audit_refuse_a_folder(files: dict[str, Path], which: str, tmp_path: Path) -> None:
    paths = {"ledger": files["ledger"], "mapping": files["mapping"], "registry": files["registry"], which: files["folder"]}
    given = [f"--{k}={v}" for k, v in paths.items()]
    for cmd in (["labels"], ["audit", "--day", "2026-02-03", "--out", str(tmp_path / "audit")]):
        res = CliRunner().invoke(app, ["feedback", *cmd, *given, "--json"])
        assert res.exit_code == 2, (cmd, res.output)
        assert json.loads(res.stdout)["error"].startswith(f"{files['folder']}: a folder; give the "), res.stdout


def test_mapping_commands_harvest_and_the_monthly_review_refuse_a_folder(files: dict[str, Path], tmp_path: Path) -> None:
    folder = files["folder"]
    dump = tmp_path / "updates.json"
    dump.write_text(json.dumps({"ok": True, "result": []}))
    runs = [["feedback", "mapping", "show", "--mapping", str(folder)],
            ["feedback", "harvest", "--updates", str(dump), "--ledger", str(files["ledger"]), "--mapping", str(folder)],
            ["ops", "monthly-review", f"monthly.ledger={files['ledger']}", f"monthly.mapping={folder}", "agree_with=[]",
             "--month", "2026-02"]]
    for args in runs:
        res = CliRunner().invoke(app, [*args, "--json"])
        assert res.exit_code == 2, (args, res.output)
        assert json.loads(res.stdout)["error"] == f"{folder}: a folder; give the mapping's file " \
            f"(e.g. {folder / 'reaction-mapping.json'})", res.stdout
    res = CliRunner().invoke(app, ["feedback", "chunks", "record", "--chat", "1", "--message-ids", "5,6", "--run-id", "r",
                                   "--event-id", "e", "--registry", str(folder), "--json"])
    assert res.exit_code == 2 and json.loads(res.stdout)["error"] == f"--registry {folder}: a folder; give the path of a file"


def test_audit_of_a_ledger_given_by_its_option_that_is_not_there_exits_2(files: dict[str, Path], tmp_path: Path) -> None:
    """A mistyped --ledger was audited as a day the harvest never ran (exit 1, a report written)."""
    missing = tmp_path / "ledgr.jsonl"
    res = CliRunner().invoke(app, ["feedback", "audit", "--day", "2026-02-03", "--ledger", str(missing),
                                   "--out", str(tmp_path / "audit"), "--json"])
    assert res.exit_code == 2, res.output
    assert json.loads(res.stdout)["error"].startswith(f"--ledger {missing}: no such file")
    assert not (tmp_path / "audit").exists()
    res = CliRunner().invoke(app, ["feedback", "audit", "--day", "2026-02-03", "--ledger", str(files["ledger"]),
                                   "--out", str(tmp_path / "audit"), "--json"])
    assert res.exit_code in (0, 1) and json.loads(res.stdout)["ledger"]["read"] == 1, res.output


def test_a_harvest_that_found_nothing_leaves_a_ledger_the_audit_reads(tmp_path: Path) -> None:
    """A host's first harvest before any reaction wrote no ledger, and an audit naming it (as the shadow
    cycle's does, ``--ledger``) then exited 2: the cycle's feedback step failed on a quiet host."""
    dump = tmp_path / "updates.json"
    dump.write_text(json.dumps({"ok": True, "result": []}))
    ledger, log = tmp_path / "fb" / "ledger.jsonl", tmp_path / "fb" / "harvest-log.jsonl"
    ledger.parent.mkdir()
    res = CliRunner().invoke(app, ["feedback", "harvest", "--updates", str(dump), "--ledger", str(ledger),
                                   f"harvest_log={log}", f"quarantine={tmp_path / 'fb' / 'q.jsonl'}", "--json"])
    assert res.exit_code == 0, res.output
    assert ledger.is_file() and ledger.read_text() == ""
    day = json.loads(log.read_text().splitlines()[-1])["time"][:10]
    res = CliRunner().invoke(app, ["feedback", "audit", "--day", day, "--ledger", str(ledger), f"harvest_log={log}",
                                   "--out", str(tmp_path / "audit"), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["harvest_ran"] is True, res.output
