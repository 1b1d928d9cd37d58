"""The suite's own scheduling (tests/conftest.py, tests/ray_fixtures.py): under `make test`'s
``--dist loadfile`` one xdist worker runs every file that uses the session's Ray head, so one head
is started (and stopped after the last test that uses it) instead of one per worker; the processes
the suite starts keep freed memory for reuse (glibc malloc settings, tests/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict

from tests.conftest import MALLOC_ENV
from tests.ray_fixtures import RAY_HEAD_FILES, xdist_scope


def test_files_using_the_ray_head_are_one_work_unit_and_the_others_their_own():
    assert xdist_scope("tests/cluster/test_submit.py") == xdist_scope("tests/jobs/test_jobs.py") == RAY_HEAD_FILES
    assert xdist_scope("tests/cluster/test_window.py") == RAY_HEAD_FILES  # one test of it uses the head
    for own in ("tests/cluster/test_chaos_ray.py", "tests/jobs/test_sweep_s3.py", "tests/cluster/test_config.py",
                "tests/test_suite_scheduling.py"):  # its own cluster, a job's own ray.init, no Ray, a mention
        assert xdist_scope(own) == own


def test_the_grouping_matches_what_the_collected_tests_request(request):
    """Over what this session collected: a file is in the group exactly when one of its tests
    requests the head (directly or through a fixture)."""
    uses: dict[str, bool] = defaultdict(bool)
    for item in request.session.items:
        path = item.nodeid.split("::")[0]
        uses[path] = uses[path] or "ray_head" in item.fixturenames
    assert uses
    assert {p for p, u in uses.items() if u} == {p for p in uses if xdist_scope(p) == RAY_HEAD_FILES}


def test_processes_the_suite_starts_get_the_malloc_settings():
    """Training subprocesses, jobs and the Ray head inherit them: a child sees every one, as glibc reads them
    at its start (they cut a tiny CPU training step's page faults and a fifth of its CPU)."""
    code = f"import json, os; print(json.dumps({{k: os.environ.get(k) for k in {sorted(MALLOC_ENV)!r}}}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    assert json.loads(out) == {k: os.environ[k] for k in MALLOC_ENV}  # ours, or what the caller set instead
    assert int(MALLOC_ENV["MALLOC_MMAP_THRESHOLD_"]) <= 32 << 20  # glibc refuses more on 64-bit: the default stays


def test_simulator_traces_are_collected_once_per_session_and_the_workers_share_them(tmp_path, monkeypatch):
    """tests/train's ``sim_bundle`` and test_learning's ``goal_split_bundle`` each collected the same ten seeds,
    mostly in two xdist workers; ``shared_traces`` collects once in the session's root (the parent of each
    worker's basetemp) and every later caller, in any worker, reuses that collection."""
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent / "train"))
    from sim_bundle import shared_traces

    class Worker:  # what shared_traces reads of pytest's tmp_path_factory: this worker's basetemp
        def __init__(self, name: str) -> None:
            self.base = tmp_path / name

        def getbasetemp(self) -> Path:
            self.base.mkdir(exist_ok=True)
            return self.base

    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    overrides = ["seeds.fixed=[0]", "seeds.random=0", "families=[calc]"]
    first = shared_traces(Worker("popen-gw0"), overrides)
    runs = sorted(p.name for p in first.iterdir() if p.is_dir())
    ledger = (first / ".collect.ledger.jsonl").read_bytes()
    assert runs and first.parent.parent == tmp_path  # in the session's root, not the worker's
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    again = shared_traces(Worker("popen-gw1"), overrides)
    assert again == first and sorted(p.name for p in again.iterdir() if p.is_dir()) == runs
    assert (again / ".collect.ledger.jsonl").read_bytes() == ledger  # not collected a second time
    other = shared_traces(Worker("popen-gw1"), ["seeds.fixed=[1]", "seeds.random=0", "families=[calc]"])
    assert other != first  # other overrides: a collection of their own
