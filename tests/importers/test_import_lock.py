"""Two imports into one trace root: the second is refused naming the first (pid, host, start, command);
an import killed holding the lock is taken over by the next, which says so. Before, the refusal said
only that a lock was held ("lock .../openclaw.lock is held"), not by whom, and a takeover was silent."""

from __future__ import annotations

import json
import os
import signal
import time

from typer.testing import CliRunner

from tests.importers.test_openclaw_parallel import all_bytes, make_sources
from tracebridge.cli import app
from tracebridge.importers.lock import import_lock
from tracebridge.importers.openclaw import import_openclaw
from tracebridge.testing.procs import ROOT, cli, run_cli

AL_SPANS = ROOT / "tests/data/agentlightning/agentops_openai_spans.jsonl"


def test_a_second_import_names_the_running_one_and_a_killed_holder_is_taken_over(tmp_path):
    src, out = make_sources(tmp_path / "src", 300), tmp_path / "traces"
    first = cli("import", "openclaw", str(src), "--out", str(out), "--workers", "2")
    holder = out / ".import" / "openclaw.lock.holder"
    deadline = time.monotonic() + 30
    while not holder.is_file() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert first.poll() is None, "the first import ended before the second could start"
    r = CliRunner().invoke(app, ["import", "openclaw", str(src), "--out", str(out), "--json"])
    first.send_signal(signal.SIGKILL)  # it dies holding the lock: its holder note stays
    first.wait(10)
    assert r.exit_code == 3, r.output  # locked: try again later
    doc = json.loads(r.stdout)
    assert (
        "another import into" in doc["error"] and f"held by pid {first.pid} on " in doc["error"]
    ), doc
    assert "import openclaw" in doc["error"] and holder.is_file()  # its command line
    again = run_cli("import", "openclaw", str(src), "--out", str(out), "--json")
    assert again.returncode == 0, again.stderr
    assert f"took over the lock from pid {first.pid} on " in again.stderr, again.stderr
    assert not holder.exists()  # the holder's note goes with its lock
    one = tmp_path / "one"
    import_openclaw([src], one)
    runs = {k: v for k, v in all_bytes(out).items() if not k.startswith(".import")}
    assert runs == {k: v for k, v in all_bytes(one).items() if not k.startswith(".import")}


def test_a_second_agentlightning_import_names_the_running_one(tmp_path):
    out = tmp_path / "traces"
    with import_lock(out, "agentlightning", 0):
        r = CliRunner().invoke(app, ["import", "agentlightning", str(AL_SPANS), "--out", str(out)])
    assert r.exit_code == 3 and f"held by pid {os.getpid()} on " in r.output, r.output  # locked: try again later
    assert not list((out / ".import").glob("*.holder")) and not [
        d for d in out.iterdir() if d.name != ".import"
    ]
