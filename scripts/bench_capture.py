"""Capture cost: µs per ``Recorder.emit`` (p50, p99) and events/s for realistic payloads,
against a bare ``json.dumps`` + ``os.write`` loop over the same records in the same run.

    python scripts/bench_capture.py [--events 20000] [--smoke] [--threads 4 [--fsync-interval 0]]

Prints the ratio (recorder / bare loop, per event at p50) last. ``--threads N`` also times N threads emitting
into one recorder that fsyncs every ``--fsync-interval`` seconds (0: after every line): how long an emit waits
for the others' durability work (an fsync under the recorder's lock made every thread wait for it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracebridge.capture.recorder import Recorder

STACK = {r: {"model": f"qwen2.5-0.5b-{r}", "params": {"temperature": 0.2}} for r in ("planner", "worker", "verifier")}


def payloads(n: int) -> list[tuple[str, str, dict]]:
    """A realistic mix: tool calls with args, tool results with output, verdicts, plans."""
    out = []
    for i in range(n):
        k = i % 4
        if k == 0:
            out.append(("worker_tool_call", "worker", {"call_id": f"c{i}", "tool": "sql_query",
                        "args": {"query": f"SELECT name, total FROM orders WHERE id = {i} LIMIT 10"}}))
        elif k == 1:
            out.append(("worker_tool_result", "worker", {"call_id": f"c{i-1}", "ok": True,
                        "output": [{"name": f"customer {j}", "total": j * 3.5} for j in range(6)],
                        "latency_ms": 1.7}))
        elif k == 2:
            out.append(("verifier_output", "verifier", {"verdict": "continue", "feedback": "step 2 of 4 done; "
                        "totals match the ledger so far", "risk_flags": [], "confidence": 0.74}))
        else:
            out.append(("planner_output", "planner", {"plan": [{"index": j, "description": f"step {j}: query and "
                        "aggregate the monthly totals", "tool": "sql_query"} for j in range(4)],
                        "rationale": "decompose by month", "confidence": 0.6}))
    return out


def bench_recorder(root: Path, items, redactor=None) -> list[float]:
    times = []
    with Recorder(root, goal="bench", model_stack=STACK, runtime_config={"max_steps": 100},
                  redactor=redactor) as run:
        run.emit("planner_input", role="planner", payload={"goal": "bench"})
        for et, role, p in items:
            t0 = time.perf_counter_ns()
            run.emit(et, role=role, payload=p)
            times.append((time.perf_counter_ns() - t0) / 1000)
    return times


def bench_threads(root: Path, items, threads: int, fsync_interval_s: float) -> tuple[list[float], float]:
    """Per-emit µs of ``threads`` threads emitting ``items`` (split between them) into one recorder, and the
    wall seconds from the first emit to the last."""
    times: list[float] = []
    start = threading.Barrier(threads + 1)
    with Recorder(root, goal="bench", model_stack=STACK, runtime_config={"max_steps": 100},
                  fsync_interval_s=fsync_interval_s) as run:
        run.emit("planner_input", role="planner", payload={"goal": "bench"})

        def work(mine) -> None:
            start.wait()
            out = []
            for et, role, p in mine:
                t0 = time.perf_counter_ns()
                run.emit(et, role=role, payload=p)
                out.append((time.perf_counter_ns() - t0) / 1000)
            times.extend(out)

        pool = [threading.Thread(target=work, args=(items[i::threads],)) for i in range(threads)]
        for t in pool:
            t.start()
        start.wait()
        t0 = time.perf_counter()
        for t in pool:
            t.join()
        wall = time.perf_counter() - t0
    return times, wall


def bench_bare(path: Path, items) -> list[float]:
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for i, (et, role, p) in enumerate(items):
        t0 = time.perf_counter_ns()
        os.write(fd, (json.dumps({"event_id": i, "event_type": et, "role": role, "payload": p}) + "\n").encode())
        times.append((time.perf_counter_ns() - t0) / 1000)
    os.close(fd)
    return times


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--smoke", action="store_true", help="few events, for the test suite")
    ap.add_argument("--threads", type=int, default=0, help="also time this many threads on one recorder (0: not)")
    ap.add_argument("--fsync-interval", type=float, default=0.0,
                    help="the threaded recorder's fsync_interval_s (0: after every line)")
    args = ap.parse_args()
    n = 500 if args.smoke else args.events
    items = payloads(n)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bench_bare(tmp / "warm.jsonl", items[:200])
        bench_recorder(tmp / "warm", items[:200])
        bare = bench_bare(tmp / "bare.jsonl", items)
        t0 = time.perf_counter()
        rec = bench_recorder(tmp / "rec", items)
        wall = time.perf_counter() - t0
        redactor = None
        try:
            from tracebridge.curate.redact import capture_redactor  # arrives with curation

            redactor = capture_redactor()
        except ImportError:
            pass
        red = bench_recorder(tmp / "red", items, redactor) if redactor else None
        threaded = bench_threads(tmp / "thr", items, args.threads, args.fsync_interval) if args.threads else None
    print(f"events: {n}")
    print(f"bare json.dumps+write: p50 {statistics.median(bare):.1f} µs  p99 {pct(bare, .99):.1f} µs")
    print(f"Recorder.emit:         p50 {statistics.median(rec):.1f} µs  p99 {pct(rec, .99):.1f} µs  "
          f"{n / wall:,.0f} events/s (wall, incl. open/close)")
    if red:
        from tracebridge.curate.prescan import describe

        print(f"Recorder.emit+redact:  p50 {statistics.median(red):.1f} µs  p99 {pct(red, .99):.1f} µs  "
              f"{1e6 / statistics.mean(red):,.0f} events/s (redaction prescan {describe()})")
    if threaded:
        times, wall = threaded
        print(f"Recorder.emit x{args.threads} threads (fsync every {args.fsync_interval:g} s): p50 "
              f"{statistics.median(times):.1f} µs  p99 {pct(times, .99):.1f} µs  {len(times) / wall:,.0f} events/s")
    print(f"ratio recorder/bare (p50): {statistics.median(rec) / statistics.median(bare):.2f}x")


if __name__ == "__main__":
    main()
