"""Ray-head fixtures shared by tests/cluster and tests/jobs (imported by their conftest files):
a real local Ray head (127.0.0.1, token auth) for the session, shared through its state dir
(keyed by the pytest process), stopped at the end."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]  # tests/ray_fixtures.py: the repository is one level up
BUNDLE = ROOT / "tests" / "data" / "train_views"
STATE = Path(tempfile.gettempdir()) / f"tb-pytest-ray-{os.getpid()}"


@pytest.fixture(scope="session")
def ray_head():
    """``{"info": HeadInfo, "cfg": ClusterConfig, "yaml": cluster YAML path, "token": str}``."""
    from tracebridge.cluster.config import ClusterConfig
    from tracebridge.cluster.head import running_head, start_head, stop_head

    cfg = ClusterConfig(state_dir=str(STATE))
    info = start_head(cfg)
    yaml = STATE / "cluster.yaml"
    yaml.write_text(f"kind: local\nstate_dir: {STATE}\n")
    yield {"info": info, "cfg": cfg, "yaml": str(yaml), "token": Path(info.token_file).read_text().strip()}
    head = running_head(cfg)
    if head is not None:
        stop_head(head)


@pytest.fixture(scope="session")
def smoke_storage():
    """Storage + work dir of the session's smoke sweep: tests submitting the same sweep share its
    job (same submission id) instead of training it again."""
    d = STATE / "smoke"
    d.mkdir(parents=True, exist_ok=True)
    return d
