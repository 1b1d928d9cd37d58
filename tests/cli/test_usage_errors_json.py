"""Under ``--json``, click's own usage errors (an unknown option, a missing argument, a value of the
wrong type, an unknown command) print ``{"ok": false, "error", "exit_code": 2, "usage": true}`` on
stdout as every other error does: a script reading stdout always gets one JSON document. Before,
they went to stderr only and stdout was empty. Without ``--json`` stdout stays empty."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import record_sample_run
from tracebridge.cli import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("args, needle", [
    (["validate", "--bogus"], "--bogus"),                      # unknown option
    (["validate"], "path"),                                    # missing argument
    (["validate", ".", "--max-problems", "many"], "--max-problems"),  # not an int
    (["validate", ".", "--max-problems", "-3"], "--max-problems"),    # out of range
    (["config", "check"], "check"),                            # unknown command of a group
])
def test_a_usage_error_under_json_is_one_json_document(args: list[str], needle: str) -> None:
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 2, res.output
    doc = json.loads(res.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 2 and doc["usage"] is True
    assert needle in doc["error"]
    assert needle in res.stderr  # the usual message stays on stderr


def test_without_json_a_usage_error_prints_nothing_on_stdout() -> None:
    res = CliRunner().invoke(app, ["validate", "--bogus"])
    assert res.exit_code == 2
    assert res.stdout.strip() == ""
    assert "--bogus" in res.stderr


def test_under_json_the_command_still_runs_and_sets_its_exit_code(tmp_path: Path) -> None:
    root = tmp_path / "traces"
    record_sample_run(root)
    ok = CliRunner().invoke(app, ["validate", str(root), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["passed"] is True
    missing = CliRunner().invoke(app, ["validate", str(tmp_path / "nowhere"), "--json"])  # the command's own fail()
    assert missing.exit_code == 2
    assert json.loads(missing.stdout) == {"ok": False, "exit_code": 2,
                                          "error": f"{tmp_path / 'nowhere'}: no such trace root"}


def test_the_console_command_prints_it_too(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    res = subprocess.run([sys.executable, "-m", "tracebridge.cli", "export", "--nope", "--json"],
                         check=False, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert json.loads(res.stdout)["error"] == "No such option: --nope"
