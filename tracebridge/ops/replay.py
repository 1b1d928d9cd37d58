"""The fixed replay set: chosen once from valid runs, frozen, then the same runs every day.

``<work_dir>/replay/replay-manifest.json`` lists each run with the sha256 of its ``session.json``
and ``events.jsonl``; the runs are copied to ``<work_dir>/replay/traces/`` and made read-only.
Every later cycle verifies the copies against the manifest before using them, so an uplift
measured on day 3 is measured on the same runs as on day 1. The choice is deterministic: the
valid runs ordered by sha256(salt:run_id), first ``size``. Deleting the manifest (or a new salt)
draws a new set.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
from pathlib import Path
from typing import Any

import orjson

from tracebridge.capture.reader import iter_runs
from tracebridge.capture.writer import write_atomic
from tracebridge.ops.artifacts import sha256_file
from tracebridge.schema.canonical import utc_now
from tracebridge.schema.validate import check_run

REPLAY_MANIFEST = "replay-manifest.json"


def replay_dir(work: Path) -> Path:
    """The replay folder, ``<work>/replay``."""
    return work / "replay"


def choose_runs(traces: Path, size: int, salt: str) -> list[str]:
    """Complete, schema- and lineage-valid runs ordered by sha256(salt:run_id); the first ``size``."""
    valid = []
    for run in iter_runs(traces):
        chk = check_run(run)
        if chk.complete and chk.schema_valid and chk.lineage_valid:
            valid.append(run.run_id)
    valid.sort(key=lambda r: hashlib.sha256(f"{salt}:{r}".encode()).hexdigest())
    return valid[:size]


def _entry(run_dir: Path) -> dict[str, Any]:
    return {"run_id": run_dir.name, "session_sha256": sha256_file(run_dir / "session.json"),
            "events_sha256": sha256_file(run_dir / "events.jsonl")}


def freeze_replay_set(traces: Path, work: Path, size: int, salt: str) -> dict[str, Any]:
    """Choose, copy (read-only) and record the replay set; return its manifest.

    Raises:
        ValueError: no valid run to choose from.
    """
    ids = choose_runs(traces, size, salt)
    if not ids:
        raise ValueError(f"{traces}: no complete, valid run to build a replay set from")
    dst = replay_dir(work) / "traces"
    if dst.exists():
        shutil.rmtree(dst)  # a half-made set without a manifest (a crash): start over
    entries = []
    for rid in ids:
        shutil.copytree(traces / rid, dst / rid)
        for p in (dst / rid).iterdir():
            p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        entries.append(_entry(dst / rid))
    man = {"created_at": utc_now(), "salt": salt, "size": size, "source": str(traces), "runs": entries,
           "first_bundle_id": None}
    write_replay_manifest(work, man)
    return man


def shortfall(man: dict[str, Any], work: Path) -> str | None:
    """What a replay set frozen with fewer runs than its ``size`` means (None when it is full): the set
    is chosen once, on the first cycle, from the valid runs there are; a host with few sessions that day
    measures every later day's uplift on those few, and only a new draw (not comparable) changes it."""
    n, size = len(man["runs"]), int(man.get("size") or 0)
    if n >= size:
        return None
    return (f"replay set holds {n} of shadow.replay.size={size} runs (frozen {man.get('created_at')}, when only {n} "
            f"valid runs existed): uplift is measured on them every day; delete {replay_dir(work) / REPLAY_MANIFEST} "
            "to draw a full set once there are more (uplift is then not comparable with earlier days)")


def write_replay_manifest(work: Path, man: dict[str, Any]) -> None:
    """Write ``man`` to ``replay/replay-manifest.json`` atomically."""
    write_atomic(replay_dir(work) / REPLAY_MANIFEST, orjson.dumps(man, option=orjson.OPT_INDENT_2))


def load_replay_manifest(work: Path) -> dict[str, Any] | None:
    """The replay manifest, or None when no replay set has been chosen yet.

    Raises:
        ValueError: the manifest is damaged (``path:field: why``); it is never redrawn silently,
            since the replay set is the fixed benchmark every day is compared on.
    """
    p = replay_dir(work) / REPLAY_MANIFEST
    if not p.is_file():
        return None
    fix = "restore it, or delete it to draw a new replay set (uplift is then not comparable to earlier days)"
    try:
        man = orjson.loads(p.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{p}: invalid JSON ({exc}); {fix}") from exc
    if not isinstance(man, dict):
        raise ValueError(f"{p}: not a JSON object; {fix}")  # noqa: TRY004 - bad input, one error type for callers
    runs = man.get("runs")
    if not isinstance(runs, list) or not all(isinstance(e, dict) and isinstance(e.get("run_id"), str) for e in runs):
        raise ValueError(f"{p}:runs: expected a list of {{run_id, session_sha256, events_sha256}}; {fix}")
    return man


def verify_replay_set(work: Path, man: dict[str, Any]) -> list[str]:
    """Problems: a run of the manifest missing from the copy, or its files changed."""
    problems = []
    root = replay_dir(work) / "traces"
    for e in man["runs"]:
        d = root / e["run_id"]
        if not (d / "session.json").is_file() or not (d / "events.jsonl").is_file():
            problems.append(f"{d}: missing from the replay set")
            continue
        got = _entry(d)
        for k in ("session_sha256", "events_sha256"):
            if got[k] != e[k]:
                problems.append(f"{d}: {k.split('_')[0]} file changed since the set was frozen")
    return problems
