"""Chaos runs for the append-only ledgers: real OS processes append concurrently while the parent
SIGKILLs them at random moments and respawns them, and some kill themselves at chosen crash
points (mid-row, between history and pointer, before the pointer's rename).

Every write a worker sees acknowledged (the call returned) is recorded in its own ack file, so
the check afterwards is exact: every acknowledged write is in the ledger (lost = 0), no key or
record appears twice (duplicated = 0), torn tails are quarantined alone, and for promotion the
history is one valid promote/rollback chain whose last record is the active pointer. Used by
``tests/reliability/test_ledgers.py`` (small) and ``scripts/chaos_ledger.py`` (at scale).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

TORN = b'{"time": "2026-03-01T10:00:00Z", "chat": 1, "message_'  # what a row cut mid-write looks like


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _ack(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


def _acks(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


def _ledger_worker(root: Path, who: int, n: int, tear_p: float, seed: int) -> None:
    """Append rows ``w<who>:<i>`` one call each, acking each; sometimes tear a row and die."""
    from filelock import FileLock

    from tracebridge.feedback.ledger import append_locked

    ledger, ack = root / "ledger.jsonl", root / f"ack-{who}.txt"
    rng = random.Random(seed)
    for i in range(len(_acks(ack)), n):
        if rng.random() < tear_p:  # a writer cut mid-row (power loss, short write) while holding the lock
            with FileLock(str(ledger) + ".lock"):
                with open(ledger, "ab") as fh:
                    fh.write(TORN)
                    fh.flush()
                _die()
        row = {"time": "2026-03-01T10:00:00Z", "chat": who, "message_id": i, "user": f"u:{who}", "emoji": "👍",
               "change": "added", "count": 1, "key": f"w{who}:{i}", "pad": "x" * rng.randrange(0, 6000)}
        append_locked(ledger, [row])
        _ack(ack, f"w{who}:{i}")


def _promotion_worker(root: Path, who: int, n: int, tear_p: float, seed: int) -> None:
    """Promote (a random candidate) or roll back, acking each outcome; sometimes die at a crash point."""
    from tracebridge.capture import writer
    from tracebridge.ops import promotion
    from tracebridge.ops.promotion import PolicyState, PromotionError, promote, rollback

    st = PolicyState(root / "state", lock_timeout_s=120)
    ack = root / f"ack-{who}.txt"
    reports = sorted((root / "reports").glob("*.json"))
    rng = random.Random(seed)
    for _ in range(len(_acks(ack)), n):
        if rng.random() < tear_p:
            point = rng.choice(["torn_record", "after_history", "before_pointer_rename"])
            if point == "torn_record":
                with st.lock():
                    with open(st.history_path, "ab") as fh:
                        fh.write(b'{"action":"promote","active_policy":"c')
                        fh.flush()
                    _die()
            elif point == "after_history":
                promotion.write_atomic = lambda *_a, **_k: _die()  # type: ignore[assignment]
            else:
                writer.os.replace = lambda *_a, **_k: _die()  # type: ignore[assignment]
        try:
            if rng.random() < 0.6:
                rec = promote(st, rng.choice(reports), require_baseline_match=False, allow_reused_report=True)
            else:
                rec = rollback(st)
            _ack(ack, f"ok {rec['seq']} {rec['hash']}")
        except PromotionError as exc:
            if "already the active policy" not in str(exc) and "nothing to roll back" not in str(exc):
                raise
            _ack(ack, "refused")


def _run(target: Callable[..., None], root: Path, writers: int, writes: int, kills: int, tear_p: float,
         seed: int) -> dict[str, int]:
    """Run ``writers`` workers to ``writes`` each, SIGKILLing random ones ``kills`` times in all."""
    ctx = mp.get_context("fork")
    rng = random.Random(seed)
    attempt = {w: 0 for w in range(writers)}
    fig = {"kills_sent": 0, "killed": 0}

    def start(w: int) -> mp.Process:
        attempt[w] += 1
        p = ctx.Process(target=target, args=(root, w, writes, tear_p, seed * 1_000_003 + w * 10_007 + attempt[w]))
        p.start()
        return p

    procs = {w: start(w) for w in range(writers)}
    while procs:
        time.sleep(rng.uniform(0, 0.03))
        if fig["kills_sent"] < kills:
            w = rng.choice(sorted(procs))
            try:
                os.kill(procs[w].pid, signal.SIGKILL)  # type: ignore[arg-type]
                fig["kills_sent"] += 1
            except ProcessLookupError:
                pass
        for w, p in list(procs.items()):
            if p.exitcode is None:
                continue
            p.join()
            if p.exitcode == 0:
                del procs[w]
            elif p.exitcode == -signal.SIGKILL:
                fig["killed"] += 1  # by the parent or at a crash point; respawned to go on
                procs[w] = start(w)
            else:
                raise RuntimeError(f"worker {w} failed with exit code {p.exitcode}")
    return fig


def ledger_chaos(root: Path, writers: int = 4, writes: int = 50, kills: int = 10, tear_p: float = 0.02,
                 seed: int = 0) -> dict[str, Any]:
    """Feedback ledger (``append_locked``) under concurrent writers, kills and torn rows."""
    from tracebridge.feedback.ledger import read_ledger

    root.mkdir(parents=True, exist_ok=True)
    fig = _run(_ledger_worker, root, writers, writes, kills, tear_p, seed)
    acked = [k for w in range(writers) for k in _acks(root / f"ack-{w}.txt")]
    scan = read_ledger(root / "ledger.jsonl")
    keys = [r.key for r in scan.rows]
    found = set(keys)
    return {**fig, "acknowledged": len(acked), "found": len(found & set(acked)),
            "lost": len(set(acked) - found), "duplicated": len(keys) - len(found),
            "unacknowledged_found": len(found - set(acked)), "torn_quarantined": len(scan.skipped),
            "bad_quarantine": sum("invalid JSON" not in s for s in scan.skipped),
            "expected_keys_missing": writers * writes - len(found)}


def write_reports(folder: Path, candidates: int) -> list[Path]:
    """Passing gate reports for ``cand-0..n`` against ``base`` (content-addressed like real ones)."""
    from tracebridge.ops.gates import gate_report_id

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(candidates):
        rep: dict[str, Any] = {"passed": True, "checks": [{"name": "chaos", "status": "pass"}],
                               "policies": {"candidate": f"cand-{i}", "baseline": "base"}, "reasons": []}
        rep["report_id"] = gate_report_id(rep)
        (folder / f"g{i}.json").write_bytes(orjson.dumps(rep))
        out.append(folder / f"g{i}.json")
    return out


def chain_problems(hist: list[dict[str, Any]]) -> list[str]:
    """Records that do not follow from the one before (promote pushes, rollback pops the stack)."""
    probs = []
    prev = None
    for rec in hist:
        if prev is not None:
            if rec["previous_policy"] != prev["active_policy"]:
                probs.append(f"seq {rec['seq']}: previous_policy is not the policy active before it")
            want = prev["stack"] + [rec["active_policy"]] if rec["action"] == "promote" else prev["stack"][:-1]
            if rec["stack"] != want:
                probs.append(f"seq {rec['seq']}: {rec['action']} stack {rec['stack']} does not follow {prev['stack']}")
        prev = rec
    return probs


def promotion_chaos(root: Path, writers: int = 3, writes: int = 20, kills: int = 6, tear_p: float = 0.1,
                    seed: int = 0) -> dict[str, Any]:
    """Promotion history under concurrent promote/rollback, kills and crash points; the next
    command (one more promote) repairs what the crashes left."""
    from tracebridge.ops.promotion import (
        HISTORY,
        PolicyState,
        active_record,
        promote,
        read_history,
        verify_history,
    )

    root.mkdir(parents=True, exist_ok=True)
    reports = write_reports(root / "reports", 4)
    fig = _run(_promotion_worker, root, writers, writes, kills, tear_p, seed)
    st = PolicyState(root / "state")
    pointer_lagged = bool(read_history(st)) and active_record(st) != read_history(st)[-1]
    final = write_reports(root / "final", 5)[-1]  # cand-4: never active before
    promote(st, final, require_baseline_match=False, allow_reused_report=True)
    hist = read_history(st)
    acks = [a.split() for w in range(writers) for a in _acks(root / f"ack-{w}.txt")]
    acked = {(int(a[1]), a[2]) for a in acks if a[0] == "ok"}
    have = {(r["seq"], r["hash"]) for r in hist}
    torn = st.root / (HISTORY + ".torn")
    return {**fig, "acknowledged": len(acked), "refused": sum(a[0] == "refused" for a in acks),
            "records": len(hist), "found": len(acked & have), "lost": len(acked - have),
            "duplicated": len(hist) - len({r["hash"] for r in hist}),
            "history_problems": len(verify_history(hist)) + len(chain_problems(hist)),
            "pointer_lagged_before_repair": int(pointer_lagged),
            "pointer_matches_history": int(active_record(st) == hist[-1]),
            "torn_records_cut": len(torn.read_bytes().splitlines()) if torn.is_file() else 0,
            "reports": len(reports)}
