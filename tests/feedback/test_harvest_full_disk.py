"""``feedback harvest`` stopped by a full disk (a file size limit stands in: ``ulimit -f``) exits 1 naming
the ledger and why, and harvesting the same dump again adds only the rest: the ledger then holds each
reaction once, as one uninterrupted harvest writes it. Before, it exited 2 ("usage error, nothing
written", though rows were appended) with "<ledger>: short write (59 of 299 bytes)"."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import orjson

from tests.feedback.conftest import reaction
from tracebridge.testing.procs import ROOT


def _harvest(dump, d, limit_kib: int | None = None) -> subprocess.CompletedProcess[str]:
    files = " ".join(
        f"{k}={d}/{k}.jsonl" for k in ("ledger", "registry", "harvest_log", "quarantine")
    )
    limit = f"ulimit -f {limit_kib}; " if limit_kib else ""
    cmd = f'{limit}exec "{sys.executable}" -m tracebridge.cli feedback harvest --updates "{dump}" {files} mapping={d}/m.json --json'
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRACEBRIDGE_FEEDBACK_SALT": "s3cr3t"}
    return subprocess.run(
        ["bash", "-c", cmd],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _rows(ledger) -> list[dict]:
    return sorted(
        (
            {k: v for k, v in json.loads(x).items() if k != "harvested_at"}
            for x in ledger.read_text().splitlines()
        ),
        key=lambda r: r["key"],
    )


def test_a_harvest_stopped_by_a_full_disk_exits_1_and_the_rerun_adds_the_rest(tmp_path):
    dump = tmp_path / "u.json"
    dump.write_bytes(
        orjson.dumps([reaction(i, 1000 + i, [], ["👍"], user=7 + i % 50) for i in range(1, 1001)])
    )
    a, b = tmp_path / "a", tmp_path / "b"
    res = _harvest(dump, a, limit_kib=64)
    assert res.returncode == 1, res.stderr
    err = json.loads(res.stdout)["error"]
    assert (
        err.startswith("harvest stopped: [Errno 27] File too large") and f"{a}/ledger.jsonl" in err
    ), err
    first = len((a / "ledger.jsonl").read_text().splitlines())
    again = _harvest(dump, a)
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert 0 < first < 1000 and doc["added"] == 1000 - first and doc["duplicates"] == first
    assert _harvest(dump, b).returncode == 0
    assert _rows(a / "ledger.jsonl") == _rows(b / "ledger.jsonl")  # each reaction once, none torn
