"""Ray-head fixtures shared by tests/cluster and tests/jobs (imported by their conftest files):
a real local Ray head (127.0.0.1, token auth) for the session, shared through its state dir
(keyed by the pytest process), stopped after the last test of the session that uses it (an idle
head costs about 6% of a core; tests/conftest.py calls ``stop_after``) or else at the end."""

from __future__ import annotations

import functools
import os
import re
import tempfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]  # tests/ray_fixtures.py: the repository is one level up
BUNDLE = ROOT / "tests" / "data" / "train_views"
STATE = Path(tempfile.gettempdir()) / f"tb-pytest-ray-{os.getpid()}"
_HEAD: dict = {}  # this process's head while the ray_head fixture holds it: "value", then "stopping" (a thread)


def _start() -> dict:
    """Start this process's head (or reuse it) and write a cluster YAML naming its state dir."""
    from tracebridge.cluster.config import ClusterConfig
    from tracebridge.cluster.head import start_head

    cfg = ClusterConfig(state_dir=str(STATE))
    info = start_head(cfg)
    yaml = STATE / "cluster.yaml"
    # submit --wait polls every 0.2 s, not the default 2 (a finished sweep was seen ~1 s late on average)
    yaml.write_text(f"kind: local\nstate_dir: {STATE}\nwait_poll_s: 0.2\n")
    return {"info": info, "cfg": cfg, "yaml": str(yaml), "token": Path(info.token_file).read_text().strip()}


def _stop(head: dict) -> None:
    """Stop the head ``_start`` started, if it still runs."""
    from tracebridge.cluster.head import running_head, stop_head

    running = running_head(head["cfg"])
    if running is not None:
        stop_head(running)


RAY_HEAD_FILES = "files using ray_head"
_REQUESTS_HEAD = re.compile(r"def \w+\([^)]*\bray_head\b")  # a test or fixture taking it as an argument


@functools.cache
def xdist_scope(path: str) -> str:
    """The xdist work unit of the test file ``path`` (relative to the repository): its own, or
    ``RAY_HEAD_FILES`` for every file that uses ``ray_head``, so that one worker runs them all."""
    f = ROOT / path
    return RAY_HEAD_FILES if f.suffix == ".py" and f.is_file() and _REQUESTS_HEAD.search(f.read_text()) else path


def uses_ray_head(item: pytest.Item) -> bool:
    return "ray_head" in getattr(item, "fixturenames", ())


def stop_after(item: pytest.Item) -> None:
    """After ``item``: stop the head (in the background) when no later test of the session uses it.
    Only where the tests run in their collected order: in one process, or under ``--dist loadfile``
    (tests/conftest.py hands every file using the head to one worker); other xdist modes hand out
    single tests, and a worker could get one after the last."""
    if "value" not in _HEAD or "stopping" in _HEAD or not uses_ray_head(item):
        return
    if item.config.getoption("dist", "no") not in ("no", "loadfile"):
        return
    later = item.session.items[item.session.items.index(item) + 1:]
    if not any(uses_ray_head(x) for x in later):
        _HEAD["stopping"] = threading.Thread(target=_stop, args=(_HEAD["value"],), daemon=True)
        _HEAD["stopping"].start()


@pytest.fixture(scope="session")
def ray_head():
    """``{"info": HeadInfo, "cfg": ClusterConfig, "yaml": cluster YAML path, "token": str}``."""
    head = _HEAD["value"] = _start()
    yield head
    if "stopping" in _HEAD:  # stopped after the last test using it; wait for the stop to finish
        _HEAD["stopping"].join()
    else:
        _stop(head)
    _HEAD.clear()


@pytest.fixture(scope="session")
def smoke_storage():
    """Storage + work dir of the session's smoke sweep: tests submitting the same sweep share its
    job (same submission id) instead of training it again."""
    d = STATE / "smoke"
    d.mkdir(parents=True, exist_ok=True)
    return d
