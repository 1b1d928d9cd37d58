"""A recorder the agent never closes, and one handed to another process: what the interpreter's exit and
``multiprocessing`` do to the run. Each case runs a real interpreter (``subprocess``) or process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tracebridge.capture.reader import iter_runs
from tracebridge.schema.validate import check_run

REPO = Path(__file__).resolve().parents[2]
_AGENT = """
import sys
from tracebridge.capture.recorder import Recorder
stack = {r: {"model": "m", "params": {}} for r in ("planner", "worker", "verifier")}
run = Recorder(sys.argv[1], goal="g", model_stack=stack, runtime_config={"max_steps": 2}, run_id="r")
run.open()
run.emit("planner_input", role="planner", payload={"goal": "g"})
"""


def _agent(tmp_path: Path, tail: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "agent.py"
    script.write_text(_AGENT + textwrap.dedent(tail))
    return subprocess.run([sys.executable, str(script), str(tmp_path / "traces")], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def _run(tmp_path: Path) -> tuple[dict, list[dict]]:
    run_dir = tmp_path / "traces" / "r"
    session = json.loads((run_dir / "session.json").read_text())
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return session, events


def test_run_left_open_at_a_normal_exit_is_closed_and_complete(tmp_path):
    proc = _agent(tmp_path, """
        run.emit("episode_end", role="orchestrator", payload={"success": True, "outcome": "done"})
        sys.exit(0)  # no close(), no with block
    """)
    assert proc.returncode == 0, proc.stderr
    assert "was still open at interpreter exit" in proc.stderr and "traces/r" in proc.stderr
    session, events = _run(tmp_path)
    assert session["summary"]["success"] is True and session["capture"]["events_written"] == 2
    assert [e["event_type"] for e in events] == ["planner_input", "episode_end"]
    (chk,) = [check_run(r) for r in iter_runs(tmp_path / "traces")]
    assert chk.complete and chk.schema_valid and chk.lineage_valid and chk.problems == []


def test_run_left_open_when_an_exception_ends_the_program_is_recorded_as_that_crash(tmp_path):
    proc = _agent(tmp_path, """
        raise RuntimeError("tool server gone")
    """)
    assert proc.returncode == 1 and "RuntimeError: tool server gone" in proc.stderr
    session, events = _run(tmp_path)
    assert [e["event_type"] for e in events] == ["planner_input", "episode_error", "episode_end"]
    assert events[1]["payload"] == {"kind": "RuntimeError", "message": "tool server gone", "recoverable": False}
    assert session["summary"]["success"] is False and session["summary"]["failure_class"] == "RuntimeError"
    (chk,) = [check_run(r) for r in iter_runs(tmp_path / "traces")]
    assert chk.schema_valid and chk.lineage_valid and chk.problems == []


def test_run_dropped_by_the_agent_without_close_is_still_closed_at_exit(tmp_path):
    proc = _agent(tmp_path, """
        import gc
        del run  # the agent kept no reference: the open run must not be lost with the object
        gc.collect()
    """)
    assert proc.returncode == 0, proc.stderr
    session, events = _run(tmp_path)
    assert session["summary"]["success"] is None and len(events) == 1


def _emit_in_child(run, out) -> None:
    event_id = run.emit("env_observation", role="env", payload={"observation": "child"})
    out.put((event_id, run.stats.events_dropped, run.stats.errors, run.run_id, run.step))


def test_recorder_handed_to_a_spawned_process_does_not_crash_the_agent_nor_write_there(tmp_path):
    import multiprocessing

    from tests.conftest import MODEL_STACK
    from tracebridge.capture.recorder import Recorder

    ctx = multiprocessing.get_context("spawn")  # also forkserver, Python 3.14's default on Linux, and macOS's
    out = ctx.Queue()
    with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 2}, run_id="r") as run:
        run.emit("planner_input", role="planner", payload={"goal": "g"})
        run.next_step()
        child = ctx.Process(target=_emit_in_child, args=(run, out))  # was TypeError: cannot pickle '_thread.RLock'
        child.start()
        child.join(60)
        assert child.exitcode == 0
        assert out.get(timeout=10) == ("r:000002", 1, 1, "r", 1)  # dropped and counted there, as in a forked child
        run.emit("episode_end", role="orchestrator", payload={"success": True, "outcome": "done"})
    events = [json.loads(line) for line in (tmp_path / "r" / "events.jsonl").read_text().splitlines()]
    assert [e["event_type"] for e in events] == ["planner_input", "episode_end"]
    assert json.loads((tmp_path / "r" / "session.json").read_text())["capture"]["events_dropped"] == 0
    (chk,) = [check_run(r) for r in iter_runs(tmp_path)]
    assert chk.schema_valid and chk.lineage_valid and chk.problems == []


def _open_in_child(run, out) -> None:
    import logging

    said = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    logging.getLogger("tracebridge").addHandler(handler)
    with run:  # the agent runs the episode in the worker, with the recorder its parent made
        run.emit("planner_input", role="planner", payload={"goal": "g"})
    out.put((run.stats.events_dropped, said))


def test_recorder_made_in_the_parent_and_opened_in_a_spawned_process_says_where_to_make_it(tmp_path):
    import multiprocessing

    from tests.conftest import MODEL_STACK
    from tracebridge.capture.recorder import Recorder

    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    run = Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 2}, run_id="r")
    child = ctx.Process(target=_open_in_child, args=(run, out))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    dropped, said = out.get(timeout=10)
    assert dropped == 1 and "cannot be opened here: the run belongs to process" in said[0], said
    assert "which made the recorder" in said[0] and "make a Recorder in this process" in said[0]
    assert list(tmp_path.iterdir()) == []


def test_a_copy_of_an_agent_holding_a_recorder_records_into_the_same_run(tmp_path):
    import copy

    from tests.conftest import MODEL_STACK
    from tracebridge.capture.recorder import Recorder

    with Recorder(tmp_path, goal="g", model_stack=MODEL_STACK, runtime_config={"max_steps": 2}) as run:
        agent = {"name": "worker", "run": run}
        clone = copy.deepcopy(agent)  # was TypeError: cannot pickle '_thread.RLock' object
        assert clone["run"] is run and copy.copy(run) is run


def test_an_error_shown_in_an_interactive_session_is_not_taken_for_the_programs_end(tmp_path):
    """The REPL (and IPython) sets sys.last_value for every error it shows; the session went on after it."""
    code = _AGENT.replace("sys.argv[1]", repr(str(tmp_path / "traces"))) + "1 / 0\n"
    proc = subprocess.run([sys.executable, "-i", "-q"], input=code, cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert "ZeroDivisionError" in proc.stderr and proc.returncode == 0, proc.stderr
    session, events = _run(tmp_path)
    assert [e["event_type"] for e in events] == ["planner_input"] and session["summary"]["failure_class"] is None
