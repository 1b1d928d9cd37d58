"""Shared fixtures: a recorder factory and a sample run writer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# a harvest refuses to hash Telegram user ids under the built-in (public) salt: tests harvest under this one
os.environ.setdefault("TRACEBRIDGE_FEEDBACK_SALT", "tracebridge-tests")
# with the variable unset (a test that removes it), the feedback code reads, and record_batch makes, the host's salt
# file: never the real ~/.config/tracebridge/feedback-salt (tests/feedback gives each test its own)
os.environ.setdefault("TRACEBRIDGE_FEEDBACK_SALT_FILE", str(Path(os.environ.get("TMPDIR", "/tmp"))
                                                         / f"tracebridge-tests-{os.getpid()}" / "feedback-salt"))
# glibc malloc keeps freed memory for reuse (buffers up to 32 MiB from the heap, no trim below 256 MiB free):
# with its defaults a tiny CPU training step maps and unmaps its activation buffers anew, ~50k page faults a
# step, and a fifth of a training process's CPU went to the kernel (a 40-step `tracebridge train`: 2.1M faults,
# sys 4.7 s of 23 s; 0.7M and 2.0 s with these). Child processes (CLI runs, jobs, the Ray head and its
# workers) read the variables when they start; this process gets them through mallopt below.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}
for _k, _v in MALLOC_ENV.items():
    os.environ.setdefault(_k, _v)


def _tune_malloc() -> None:
    """The same settings for this (already started) process; a no-op where libc has no mallopt."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # not glibc (macOS, musl)
        return
    mallopt(-1, int(os.environ["MALLOC_TRIM_THRESHOLD_"]))  # M_TRIM_THRESHOLD
    mallopt(-3, int(os.environ["MALLOC_MMAP_THRESHOLD_"]))  # M_MMAP_THRESHOLD


_tune_malloc()
# Child processes (`python -m tracebridge.cli`, `ray start`, job drivers) import this checkout's code,
# not whichever checkout an editable install points at (a git worktree sharing one venv).
ROOT = Path(__file__).resolve().parents[1]
if os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] != str(ROOT):
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)

MODEL_STACK = {
    "planner": {"model": "scripted-planner", "params": {"temperature": 0.0}},
    "worker": {"model": "scripted-worker", "params": {}},
    "verifier": {"model": "scripted-verifier", "params": {}},
}


def record_sample_run(root: Path, *, strict: bool = True, fail_tool: bool = True, **kw: Any) -> str:
    """Record one small but complete run touching every event type; return its run_id."""
    from tracebridge.capture.recorder import Recorder

    with Recorder(root, goal=kw.pop("goal", "count lines in notes.txt"), model_stack=MODEL_STACK,
                  runtime_config={"max_steps": 4, "seed": 1, "seed_kind": "fixed"},
                  source={"kind": "sim", "ref": "test"}, strict=strict, **kw) as run:
        pi = run.emit("planner_input", role="planner",
                      payload={"goal": "count lines", "observation": "cwd has notes.txt",
                               "tool_mask": ["read_file", "count"]})
        po = run.emit("planner_output", role="planner", parent=pi,
                      payload={"plan": [{"index": 0, "description": "read", "tool": "read_file",
                                         "args": {"path": "notes.txt"}}],
                               "rationale": "one step", "confidence": 0.9},
                      llm=run.llm_call("tiny", [{"role": "user", "content": "plan"}],
                                       params={"temperature": 0}, response="1. read",
                                       usage={"input_tokens": 10, "output_tokens": 4, "cost_usd": 0.001}))
        run.emit("orchestrator_transition", role="orchestrator",
                 payload={"from_state": "plan", "to_state": "work", "reason": "plan ready"})
        run.next_step()
        wi = run.emit("worker_input", role="worker", parent=po,
                      payload={"plan_step": {"index": 0, "description": "read"}, "allowed_tools": ["read_file"]})
        run.emit("worker_action", role="worker", payload={"action": "tool_call", "tool": "read_file",
                                                           "args": {"path": "notes.txt"}})
        run.emit("worker_tool_call", role="worker", payload={"call_id": "c1", "tool": "read_file",
                                                              "args": {"path": "notes.txt"}})
        if fail_tool:
            run.emit("worker_tool_result", role="worker",
                     payload={"call_id": "c1", "ok": False, "error": {"kind": "not_found", "message": "no file"}})
            run.emit("episode_error", role="worker", payload={"kind": "not_found", "message": "no file"})
            run.emit("worker_tool_call", role="worker", payload={"call_id": "c2", "tool": "read_file",
                                                                  "args": {"path": "./notes.txt"}})
            run.emit("worker_tool_result", role="worker",
                     payload={"call_id": "c2", "ok": True, "output": "a\nb", "retry_of": "c1"})
        run.emit("env_observation", role="env", payload={"observation": {"lines": 2}})
        run.emit("worker_output", role="worker", payload={"result": 2})
        vi = run.emit("verifier_input", role="verifier", parent=wi,
                      payload={"plan_progress": {"completed": 1, "total": 1}, "evidence": ["2 lines"]})
        run.emit("verifier_output", role="verifier", parent=vi,
                 payload={"verdict": "end", "feedback": "done", "confidence": 0.8})
        run.emit("episode_end", role="orchestrator", payload={"success": True, "outcome": "2"})
        return run.run_id


@pytest.fixture
def sample_run():
    return record_sample_run


# Files whose tests take minutes (real sweeps on a Ray head, the learning test): run first, so that
# with two xdist workers (`make test`) the long ones overlap instead of one ending the run alone. The files
# using the session Ray head are one work unit (pytest_xdist_make_scheduler below).
_SLOW_FIRST = ("tests/train/test_learning.py", "tests/cluster/", "tests/jobs/", "tests/ops/test_shadow_cycle.py",
               "tests/ops/test_phase2.py", "tests/eval/test_long_prompts.py", "tests/reliability/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return next((i for i, p in enumerate(_SLOW_FIRST) if path.startswith(p)), len(_SLOW_FIRST))

    items.sort(key=rank)  # stable: the order within a file and among the rest is kept


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``, except that one worker runs every file using the session's Ray head
    (``tests.ray_fixtures.xdist_scope``): one head started and stopped, not one per worker."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    from tests.ray_fixtures import xdist_scope

    class RayHeadFilesTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(super()._split_scope(nodeid))

    return RayHeadFilesTogether(config, log)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    from tests.ray_fixtures import stop_after

    stop_after(item)


def run_racing_threads(work: Any, n: int) -> None:
    """Run ``work(k)`` for k in 0..n-1 on n threads that switch as often as Python allows (races show at once)."""
    import sys
    import threading

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
