"""``tracebridge config show`` of a path that is not there, of a folder, and of a config kept outside
configs/<kind>/. The kind was guessed from the parent folder before the file was checked: a missing
configs/nope.yaml said "no schema for configs/configs/", and a copy kept elsewhere could not be shown at all."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app

ROOT = Path(__file__).resolve().parents[2]
KINDS = "cluster, collect, export, feedback, gates, import, model, ops, storage, sweep, train"


def _show(*args: str):
    return CliRunner().invoke(app, ["config", "show", *args])


@pytest.mark.parametrize("path, says", [("configs/nope.yaml", "configs/nope.yaml: no such config file"),
                                        ("configs", "configs: a folder, not a config file"),
                                        ("README.md", f"README.md: its folder {ROOT.name}/ names no kind of config")])
def test_a_path_that_is_no_config_file_says_what_it_is(path, says, monkeypatch):
    monkeypatch.chdir(ROOT)
    res = _show(path)
    assert res.exit_code == 2 and says in res.output and "no schema for" not in res.output, res.output


def test_kind_names_the_schema_of_a_config_kept_elsewhere(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    for name in ("smoke.yaml", "default.yaml"):  # smoke.yaml's _base_ comes with it
        shutil.copy(ROOT / "configs/export" / name, work / name)
    mine = work / "smoke.yaml"
    res = _show(str(mine))
    assert res.exit_code == 2 and f"say which it is with --kind, one of {KINDS}" in res.output, res.output
    res = _show(str(mine), "--kind", "exprt")
    assert res.exit_code == 2 and f"--kind exprt: no such kind of config; one of {KINDS}" in res.output
    got = json.loads(_show(str(mine), "--kind", "export", "--json").stdout)
    assert got == json.loads(_show(str(ROOT / "configs/export/smoke.yaml"), "--json").stdout)
    res = _show(str(ROOT / "configs/export/smoke.yaml"), "--kind", "train")  # the kind given wins over the folder
    assert res.exit_code == 2 and "invalid config" in res.output
