"""``tracebridge submit --attempt N`` takes attempts from 1 (``--resume`` counts from the last one): an
attempt 0 or below is refused as a bad flag (exit 2) before any head starts. Before, ``--attempt 0`` was
submitted as ``<sweep id>-a0``, a job `list` showed as attempt 0 beside the real first attempt."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracebridge.cli import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("attempt", ["0", "-1"])
def test_submit_refuses_an_attempt_below_1(attempt: str, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT)
    state = tmp_path / "ray"
    res = CliRunner().invoke(app, ["submit", "configs/sweep/smoke.yaml", "bundle=tests/data/train_views",
                                   f"storage={tmp_path}/storage", "--attempt", attempt,
                                   "--cluster-set", f"state_dir={state}", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2, res.output
    assert "Invalid value for '--attempt'" in res.output and "greater than or equal to 1" in res.output, res.output
    assert not state.exists() and not (tmp_path / "storage").exists()  # no head started, nothing written
