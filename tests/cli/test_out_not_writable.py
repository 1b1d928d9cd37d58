"""An ``--out`` folder that cannot be created (a folder above it not writable, a read-only file system)
exits 2 naming the option, the folder and why, before any work: ``redact`` and ``collect`` ended in a
PermissionError traceback (``collect`` after its episodes had run), ``export`` in exit 1 after the whole
export ("nothing published")."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import record_sample_run
from tracebridge.cli import app

ROOT = Path(__file__).resolve().parents[2]
SMALL = [str(ROOT / "configs/collect/smoke.yaml"), "workers=1", "families=[calc]", "seeds.fixed=[0]"]
# /sys refuses new folders to every user, root included (chmod 555 does not stop root)
UNMAKEABLE = Path("/sys/tracebridge-test-out/out")
pytestmark = pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux /sys")


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_redact_into_a_folder_that_cannot_be_made_exits_2(tmp_path: Path, json_flag: list[str]) -> None:
    run = tmp_path / record_sample_run(tmp_path)
    res = CliRunner().invoke(app, ["redact", str(run / "events.jsonl"), "--out", str(UNMAKEABLE), *json_flag])
    assert res.exit_code == 2, res.output
    assert f"--out {UNMAKEABLE}: cannot create the folder: " in res.stderr
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_collect_into_a_folder_that_cannot_be_made_exits_2_before_any_episode() -> None:
    res = CliRunner().invoke(app, ["collect", *SMALL, "--out", str(UNMAKEABLE), "--json"])
    assert res.exit_code == 2, res.output
    assert f"--out {UNMAKEABLE}: cannot create the folder: " in res.stderr
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_export_into_a_folder_that_cannot_be_made_exits_2_before_reading_a_run(tmp_path: Path) -> None:
    record_sample_run(tmp_path / "traces")
    res = CliRunner().invoke(app, ["export", str(tmp_path / "traces"), "--out", str(UNMAKEABLE), "--json"])
    assert res.exit_code == 2, res.output
    assert f"--out {UNMAKEABLE}: cannot create the folder: " in res.stderr
    assert "nothing published" not in res.stderr and "runs" not in res.stdout  # no export ran
