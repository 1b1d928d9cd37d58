"""A bundle without a role's views (imported OpenClaw sessions hold worker turns only) is refused
with the roles it does hold, not just 'no valid rows (files: none)'."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tracebridge.train.data import BundleError, load_role_data

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "train_views"


def test_a_role_without_views_names_the_roles_the_bundle_holds(tmp_path):
    for name in ("worker_sft.jsonl", "worker_recovery_cases.jsonl"):
        shutil.copy(FIXTURE / name, tmp_path / name)
    for role in ("planner", "verifier"):
        with pytest.raises(BundleError) as err:
            load_role_data(tmp_path, role)
        msg = str(err.value)
        assert f"view {role}_sft has no valid rows (files: none" in msg
        assert f"holds no {role} view" in msg and "train role=worker" in msg, msg
    assert load_role_data(tmp_path, "worker").sft
