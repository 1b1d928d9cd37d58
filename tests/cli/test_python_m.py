"""``python -m tracebridge`` runs the command line as the ``tracebridge`` script does (a venv whose ``bin`` is not on
PATH, ``pipx run``, a cron line naming the interpreter): it said "No module named tracebridge.__main__"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_python_m_tracebridge_runs_the_cli(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    res = subprocess.run([sys.executable, "-m", "tracebridge", "validate", str(tmp_path / "none"), "--json"],
                         check=False, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert res.returncode == 2, res.stderr  # a usage error of the real command, not python's "no module"
    assert json.loads(res.stdout)["ok"] is False and "none" in json.loads(res.stdout)["error"]
