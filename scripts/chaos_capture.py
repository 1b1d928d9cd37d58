"""Chaos test of capture: N agent processes record runs concurrently and are SIGKILLed at
random points, many times over.

    python scripts/chaos_capture.py [--procs 4] [--rounds 25] [--seed 0] [--smoke]

Promises checked after every kill (figures printed last; lost/interleaved/invalid must be 0):
every event acknowledged (emit returned) before the kill is readable; at most one torn tail
line per run; no interleaved lines (every line belongs to its run and sequence numbers are
contiguous); every complete run is 100% schema-valid; every run without session.json is
reported incomplete by the validator. Also: an injected ENOSPC never reaches the agent, and on a
real full disk (a small tmpfs, when run as root) every event is readable or counted as dropped,
with no torn or glued line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORKER = r"""
import sys, random
from tracebridge.capture.recorder import Recorder
root, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
stack = {r: {"model": "m"} for r in ("planner", "worker", "verifier")}
for r in range(10**6):
    run_id = f"w{seed}-r{r}"
    with Recorder(root, goal="chaos", model_stack=stack, runtime_config={"max_steps": 50},
                  run_id=run_id, strict=True, fsync_interval_s=None) as run:
        run.emit("planner_input", role="planner", payload={"goal": "chaos"})
        sys.stdout.write(f"{run_id} 0\n"); sys.stdout.flush()
        for i in range(1, rng.randint(5, 60)):
            run.emit("env_observation", role="env",
                     payload={"observation": {"i": i, "pad": "x" * rng.randint(1, 3000)}})
            sys.stdout.write(f"{run_id} {i}\n"); sys.stdout.flush()
        run.emit("episode_end", role="orchestrator", payload={"success": True})
    sys.stdout.write(f"{run_id} closed\n"); sys.stdout.flush()
"""


def _reader(proc: subprocess.Popen, acks: dict[str, int]) -> None:
    for line in proc.stdout:  # type: ignore[union-attr]
        run_id, _, n = line.strip().partition(" ")
        if n.isdigit():
            acks[run_id] = max(acks.get(run_id, -1), int(n))


def check_root(root: Path, acks: dict[str, int]) -> dict[str, int]:
    """Check every promise over one trace root; return counts of violations and totals."""
    from tracebridge.capture.reader import iter_lines, iter_runs
    from tracebridge.schema.validate import check_run

    out = {"runs": 0, "complete": 0, "incomplete_reported": 0, "events": 0, "lost": 0,
           "torn_over_one": 0, "interleaved": 0, "complete_invalid": 0, "incomplete_unreported": 0}
    if not root.exists():  # every worker killed before it opened a run: only what it acknowledged is lost
        out["lost"] = sum(max(n, 0) for n in acks.values())
        return out
    for run in iter_runs(root):
        out["runs"] += 1
        lines = list(iter_lines(run.events_path))
        good = [ln.obj for ln in lines if ln.error is None]
        torn = sum(ln.torn for ln in lines)
        out["torn_over_one"] += torn > 1 or any(ln.error and not ln.torn for ln in lines)
        out["events"] += len(good)
        seq = [o["payload"]["observation"]["i"] for o in good if o["event_type"] == "env_observation"]
        if any(o["run_id"] != run.run_id for o in good) or seq != list(range(1, len(seq) + 1)):
            out["interleaved"] += 1
        readable = len(seq)  # index of the last env_observation (root is 0)
        if acks.get(run.run_id, -1) > readable:
            out["lost"] += acks[run.run_id] - readable
        chk = check_run(run)
        if run.complete:
            out["complete"] += 1
            out["complete_invalid"] += not (chk.schema_valid and chk.lineage_valid)
        elif any(p.kind == "incomplete" for p in chk.problems):
            out["incomplete_reported"] += 1
        else:
            out["incomplete_unreported"] += 1
    return out


def enospc_probe() -> dict[str, int]:
    """Record while every write fails with ENOSPC; the agent must never see an exception."""
    from tracebridge.capture import writer
    from tracebridge.capture.recorder import Recorder

    real = writer.os.write
    raised = 0
    with tempfile.TemporaryDirectory() as tmp:
        stack = {r: {"model": "m"} for r in ("planner", "worker", "verifier")}
        try:
            with Recorder(tmp, goal="g", model_stack=stack, runtime_config={"max_steps": 1}) as run:
                run.emit("planner_input", role="planner", payload={"goal": "g"})

                def full(fd: int, data: bytes) -> int:
                    raise OSError(28, "No space left on device")

                writer.os.write = full  # type: ignore[assignment]
                for i in range(1000):
                    run.emit("env_observation", role="env", payload={"observation": i})
        except Exception:  # noqa: BLE001 - this is exactly what must not happen
            raised += 1
        finally:
            writer.os.write = real  # type: ignore[assignment]
    return {"enospc_emits": 1000, "enospc_raised": raised, "enospc_counted": run.stats.events_dropped}


def tmpfs_probe(size_kib: int = 48) -> dict[str, int]:
    """A real full disk: record into a ``size_kib`` tmpfs until it fills (root only, else skipped).
    The agent never sees an exception, every event is either readable or counted as dropped, and
    no line is torn or glued to another (a short write is cut back)."""
    from tracebridge.capture.recorder import Recorder

    mnt = tempfile.mkdtemp(prefix="tb-full-")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tb-chaos", mnt],
                      capture_output=True, check=False).returncode != 0:
        os.rmdir(mnt)
        print("chaos_capture: cannot mount a tmpfs (not root?); real-disk-full probe skipped", file=sys.stderr)
        return {"full_disk_skipped": 1}
    raised = attempted = 0
    rng = random.Random(7)
    try:
        stack = {r: {"model": "m"} for r in ("planner", "worker", "verifier")}
        try:
            with Recorder(mnt, goal="g", model_stack=stack, runtime_config={"max_steps": 1}) as run:
                for i in range(3000):  # varied sizes: after the disk fills, small lines may still fit
                    attempted += 1
                    run.emit("env_observation", role="env", payload={"observation": "x" * rng.randint(10, 900)})
        except Exception:  # noqa: BLE001 - this is exactly what must not happen
            raised += 1
        lines = (Path(mnt) / run.run_id / "events.jsonl").read_bytes().split(b"\n")
        torn = int(lines[-1] != b"")
        good = 0
        for ln in lines[:-1]:
            try:
                json.loads(ln)
                good += 1
            except ValueError:
                torn += 1
        stats = run.stats
        unaccounted = stats.events_written - good  # written = readable; the rest is counted dropped
    finally:
        subprocess.run(["umount", mnt], capture_output=True, check=False)  # best effort: the finally must not mask
        os.rmdir(mnt)
    return {"full_disk_emits": attempted, "full_disk_raised": raised, "full_disk_dropped": stats.events_dropped,
            "full_disk_readable": good, "full_disk_torn": torn, "full_disk_unaccounted": abs(unaccounted)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="2 procs × 3 rounds")
    args = ap.parse_args()
    procs, rounds = (2, 3) if args.smoke else (args.procs, args.rounds)
    rng = random.Random(args.seed)
    totals: dict[str, int] = {}
    kills = 0
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "worker.py"
        script.write_text(WORKER)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        for rnd in range(rounds):
            root = Path(tmp) / f"round{rnd}"
            acks: dict[str, int] = {}
            ps = [subprocess.Popen([sys.executable, str(script), str(root), str(rnd * 100 + i)],
                                   stdout=subprocess.PIPE, text=True, env=env) for i in range(procs)]
            threads = [threading.Thread(target=_reader, args=(p, acks), daemon=True) for p in ps]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 60  # imports take ~0.5 s, far longer on a loaded machine: kill
            while len(acks) < procs and time.monotonic() < deadline:  # once every worker is writing a run
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.2))  # then at random points
            for p in ps:
                time.sleep(rng.uniform(0, 0.05))
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
                kills += 1
            for t in threads:
                t.join(timeout=5)
            for k, v in check_root(root, acks).items():
                totals[k] = totals.get(k, 0) + v
    totals.update(enospc_probe())
    totals.update(tmpfs_probe())
    totals["kills"] = kills
    print(json.dumps(totals, sort_keys=True))
    bad = (totals["lost"] + totals["torn_over_one"] + totals["interleaved"] + totals["complete_invalid"]
           + totals["incomplete_unreported"] + totals["enospc_raised"] + totals.get("full_disk_raised", 0)
           + totals.get("full_disk_torn", 0) + totals.get("full_disk_unaccounted", 0))
    print(f"chaos_capture: {kills} kills, {totals['runs']} runs, {totals['events']} events, "
          f"lost {totals['lost']}, interleaved {totals['interleaved']}, torn>1 {totals['torn_over_one']}, "
          f"invalid complete {totals['complete_invalid']}, violations {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
