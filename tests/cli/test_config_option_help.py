"""Each ``--config`` of the curation and storage commands names the config folder it takes. Before,
one shared help text said "A YAML under configs/export/ (or storage/)" for all four: ``redact`` and
``export`` refuse a storage YAML (``update_latest: unknown key``) and ``push``/``fetch`` an export one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app

ROOT = Path(__file__).resolve().parents[2]


def _config_help(command: str) -> str:
    text = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).stdout
    (line,) = [ln for ln in text.splitlines() if "--config" in ln]
    return re.sub(r"\s+", " ", line)


@pytest.mark.parametrize("command, folder, other", [("redact", "export", "storage"), ("export", "export", "storage"),
                                                    ("push", "storage", "export"), ("fetch", "storage", "export")])
def test_the_help_names_the_folder_the_command_takes_and_it_is_taken(command: str, folder: str, other: str,
                                                                      tmp_path: Path) -> None:
    said = _config_help(command)
    assert f"configs/{folder}/" in said and other not in said, said
    if command == "redact":  # what the help says is what loads
        (tmp_path / "notes.txt").write_text("nothing here\n")
        for yaml, code in ((ROOT / "configs/export/smoke.yaml", 0), (ROOT / "configs/storage/local.yaml", 2)):
            res = CliRunner().invoke(app, ["redact", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "r"),
                                           "--config", str(yaml)])
            assert res.exit_code == code, (yaml, res.output)
