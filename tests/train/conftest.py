"""Fixtures of the training tests: the hand-made view bundle and a real simulator bundle."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

FIXTURE_BUNDLE = Path(__file__).resolve().parents[1] / "data" / "train_views"


@pytest.fixture(scope="session", autouse=True)
def _quiet_datasets():
    import datasets

    datasets.disable_progress_bars()


@pytest.fixture(scope="session")
def sim_bundle(tmp_path_factory) -> Path:
    """Simulator traces (default matrix, fixed seeds 0-9, one process) exported as a bundle."""
    from sim_bundle import make_sim_bundle

    return make_sim_bundle(tmp_path_factory.mktemp("sim"), ["seeds.fixed=[0,1,2,3,4,5,6,7,8,9]"],
                           tmp_path_factory=tmp_path_factory)
