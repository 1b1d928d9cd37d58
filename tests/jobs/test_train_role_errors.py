"""jobs/train_role.py on a trial whose rows cannot train at its config (every SFT row cut at
``train.max_length=32``): one error line naming the fix and the job's summary line, exit 1, where it
printed a TrialInputError traceback (its docstring promised no such exit)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_train_role_says_why_a_trial_cannot_train_without_a_traceback(tmp_path):
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "jobs/train_role.py", "configs/sweep/smoke.yaml", "verifier-baseline-s0",
                          f"bundle={ROOT / 'tests/data/train_views'}", f"work_dir={tmp_path}",
                          "overrides.train.max_length=32"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert res.returncode == 1, res.stderr[-3000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    line = json.loads(res.stdout.strip().splitlines()[-1])
    assert line["ok"] is False and line["exit_code"] == 1 and line["sweep_id"].startswith("smoke-")
    assert line["error"].startswith("trial verifier-baseline-s0: TrialInputError: sft: all ")
    assert "raise train.max_length" in line["error"]
